"""One browser (or any WebSocket peer) as a link of a ``Server``: each WebSocket message is one LEADS message.

The link is a ``ConnectionBase`` attached to its server, so the server's rules hold for it as for a TCP link:
its messages go to ``on_receive`` (the relay, the daemon's ``--callback``), broadcasts reach it, ``max_message``
closes it with code 1009, and a browser that stops reading is dropped or has messages dropped past
``max_buffered``, as ``slow_policy`` says.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers
from zope.interface import implementer

from leads_twisted.comm import ConnectionBase, LinkEnd, SlowPeer
from leads_twisted.comm.direct_write import direct_socket, write_out
from leads_twisted.comm.hub import State
from leads_twisted.comm.link_state import CLOSE_ASKED, CLOSING, LOST, OPEN
from leads_twisted.comm.memory_budget import MemoryBudget, MemoryBudgetExceeded

if TYPE_CHECKING:
    from twisted.web.server import Request
    from twisted.web.websocket import WebSocketTransport

    from leads_twisted.comm import ServerHub
    from leads_twisted.comm.write_batch import WriteBatch
    from leads_twisted.websocket.channel import MeteredChannel
    from leads_twisted.websocket.frames import FrameCache

_log = Logger(namespace="leads_twisted.websocket")

#: How long a closing WebSocket link may take to finish its closing handshake before it is cut. (TCP links drain
#: instead, under ``close_timeout``: docs/reliability.md; WebSocket links keep this fixed grace.)
CLOSE_GRACE_SECONDS: float = 1.0

#: Close codes of RFC 6455 §7.4.1.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009


@implementer(IPushProducer)
class WebSocketLink(ConnectionBase):
    """A WebSocket peer of ``server``; ``str()`` gives ``ws:host:port``.

    It is the ``WebSocketProtocol`` Twisted's WebSocket resource drives, and the producer of its request, so
    the transport says when the browser has stopped reading. Goodbye is a close frame (1000, 1001 when the
    server is closing, 1009 for a message over ``max_message``), not a ``disconnect`` message.
    """

    def __init__(
        self,
        server: ServerHub,
        request: Request,
        channel: MeteredChannel,
        cache: FrameCache,
        batch: WriteBatch,
        in_reactor_thread: Callable[[], bool],
    ) -> None:
        super().__init__(server.separator, server.policy.encoder)
        self._in_reactor_thread = in_reactor_thread
        self._server = server
        self._request = request
        self._channel = channel
        self._cache = cache
        self._batch = batch
        self._budget: MemoryBudget | None = server.memory_budget
        self._max_buffered = server.policy.max_buffered
        self._drop_when_slow = server.policy.slow_policy == "drop"
        self._ws: WebSocketTransport | None = None
        self._attached = False
        #: Bytes given while the browser is not reading (past the transport's limit); None while it reads.
        self._bytes_past_limit: int | None = None
        self._grace: Any = None
        #: The connection under the HTTP channel (TCP or TLS) and its socket when it can be written directly;
        #: set once the link is up.
        self._wire: Any = None
        self._socket: socket.socket | None = None
        #: Frames given during the write batch under way, written once at its end; with what observers hear.
        self._pending: list[bytes] | None = None
        self._out_count = 0
        self._out_size = 0
        self._warned_separator = False
        self.dropped_messages: int = 0
        peer = channel.getPeer()
        self._description = f"ws:{getattr(peer, 'host', '?')}:{getattr(peer, 'port', '?')}"

    def __str__(self) -> str:
        return self._description

    def __repr__(self) -> str:
        return f"<WebSocketLink {self._description}{' closed' if self.closed() else ''}>"

    # ConnectionBase: what callbacks and the service use.

    def closed(self) -> bool:
        return self.state is not OPEN

    def send(self, msg: bytes) -> None:
        self._encoder.check(msg)
        if self.closed() or not self._attached:
            raise OSError(f"the connection to {self._description} is {'closed' if self.closed() else 'not open yet'}")
        if self._in_reactor_thread():
            self.write_messages([msg])
        else:
            self._channel.reactor.callFromThread(self.write_messages, [msg])

    def close(self) -> None:
        if self.closed():
            return
        if self._in_reactor_thread():
            self.close_now()
            return
        self.ask_close(partial(self._channel.reactor.callFromThread, self.close_now))

    def write_messages(self, messages: list[bytes]) -> None:
        """Frame ``messages`` (once per broadcast, shared with the other browsers) and hold them for one write
        at the end of the batch under way (at once outside a batch), unless the browser has stopped reading
        past ``max_buffered``.

        This runs once per browser per message a relay passes on: it does what ``Connection.write_framed``
        does for a TCP peer and no more.
        """
        state = self.state
        if state is not OPEN and state is not CLOSE_ASKED:
            return
        cache = self._cache
        data = cache.data if messages == cache.messages else cache.frames(messages)
        if self._bytes_past_limit is not None:
            past = self._bytes_past_limit = self._bytes_past_limit + len(data)
            if past > self._max_buffered:
                self._too_slow(len(messages))
                return
        if self._observers.active:
            self._out_count += len(messages)
            self._out_size += len(data)
        pending = self._pending
        if pending is not None:
            pending.append(data)
            return
        self._pending = [data]
        if self._batch.open:
            self._batch.join(self)
        else:
            self.write_batched()

    def write_batched(self) -> None:
        """Write what the batch held for this link, in one write: straight to its socket when Twisted holds
        nothing for it (as a TCP link does), else into the transport. The memory budget hears of it once per
        write, while the browser is not reading."""
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        if self._out_count:
            count, size = self._out_count, self._out_size
            self._out_count = self._out_size = 0
            self._observers.message_out(self._server, self, count, size)
        if self._bytes_past_limit is not None and self._budget is not None:
            self._budget.add(self, len(data))  # past the budget this may drop the link
        state = self.state
        if state is OPEN or state is CLOSE_ASKED:
            write_out(self._wire, self._socket, data)

    def close_now(self) -> None:
        if not self.state.writing():
            return
        if self.end_reason is LinkEnd.SLOW or self._ws is None:
            self.move_to(CLOSING)
            self._pending = None
            self._channel.abortConnection()
            return
        self.write_batched()  # what was sent before the close goes first
        if not self.state.writing():
            return  # that write went over the memory budget, and the link was dropped for it
        self.move_to(CLOSING)
        if self.end_reason is LinkEnd.OVERSIZE:
            code = CLOSE_TOO_BIG
        elif self._server.state in (State.CLOSING, State.CLOSED):
            code = CLOSE_GOING_AWAY
        else:
            code = CLOSE_NORMAL
        self._ws.loseConnection(code)
        self._grace = self._channel.reactor.callLater(CLOSE_GRACE_SECONDS, self._cut)

    def _cut(self) -> None:
        self._grace = None
        _log.info("{link} did not close within {grace} s; cutting it", link=self, grace=CLOSE_GRACE_SECONDS)
        self._channel.abortConnection()

    def _too_slow(self, count: int) -> None:
        limit = self._max_buffered
        if self._drop_when_slow:
            if not self.dropped_messages:
                _log.warn("{link} is not reading; dropping messages for it", link=self)
            self.dropped_messages += count
            if self._observers.active:
                self._observers.dropped(self._server, self, count)
            return
        error = SlowPeer(f"{self} stopped reading with over {limit} bytes waiting; disconnecting it")
        self._server.drop(self, error, LinkEnd.SLOW)

    # WebSocketProtocol: what Twisted's WebSocket resource tells the link.

    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        self._ws = transport

    def negotiationFinished(self) -> None:
        """The handshake is done: join the server (``on_connect`` may already send), and meter the peer."""
        wire = self._channel.transport
        assert wire is not None, "a channel upgraded to WebSocket is connected"
        self._wire = wire  # past the wrapper, which would only pass writes on
        self._socket = direct_socket(wire) if self._server.policy.direct_writes else None
        self._attached = True
        try:
            self._server.attach(self)
        except RuntimeError:  # the server is closing or closed
            self._attached = False
            self.move_to(CLOSING)
            if self._ws is not None:
                self._ws.loseConnection(CLOSE_GOING_AWAY)
            return
        self._request.registerProducer(self, True)
        # The upgrade's headers are read (origin, handshake) and answered: the link never looks at them again,
        # and letting them go is about a sixth of what each browser costs the relay.
        self._request.requestHeaders = Headers()
        self._request.responseHeaders = Headers()
        self._channel.meter(self._server.max_message, self._broke_rules, self._budget)

    def textMessageReceived(self, message: str) -> None:
        self._received(message.encode())

    def bytesMessageReceived(self, data: bytes | bytearray) -> None:
        self._received(bytes(data))

    def pongReceived(self, payload: bytes) -> None:
        """Pongs carry nothing for the relay."""

    def connectionLost(self, reason: Failure) -> None:
        self._pending = None
        if self._budget is not None:
            self._budget.release(self)
        if self._grace is not None and self._grace.active():
            self._grace.cancel()
        self._grace = None
        if self._attached:
            self._server.detach(self)
        self.move_to(LOST)

    def _received(self, msg: bytes) -> None:
        if not self._attached or self.state is LOST:
            return
        try:
            data = self.frame(msg)
        except ValueError as error:
            self.dropped_messages += 1
            if not self._warned_separator:
                self._warned_separator = True
                _log.warn("{link}: message dropped, {error}", link=self, error=error)
            return
        self._server.feed(self, data)

    def _broke_rules(self, error: Exception) -> None:
        """A message grew past ``max_message``, or past what the memory budget holds: end the link with 1009."""
        self._server.drop(self, error, LinkEnd.OVERSIZE)

    def drop_for_memory(self, held: int, total: int, limit: int) -> None:
        """The server's memory budget is over, and this browser, not reading, is among those holding the most."""
        error = MemoryBudgetExceeded(
            f"{self} stopped reading with {held} bytes waiting while all peers held {total}, over max_memory "
            f"({limit}); disconnecting it"
        )
        self._server.drop(self, error, LinkEnd.SLOW)

    # IPushProducer: the request's transport says when the browser stops reading, and when it reads again.

    def pauseProducing(self) -> None:
        if self._bytes_past_limit is None:
            self._bytes_past_limit = 0

    def resumeProducing(self) -> None:
        self._bytes_past_limit = None
        if self._budget is not None:
            self._budget.release(self)

    def stopProducing(self) -> None:
        """The transport is going away; ``connectionLost`` reports it."""
