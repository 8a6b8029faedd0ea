"""The client's hub: one connection to a server at a time, reported through one ``Callback``.

By default a client lives for one connection, as in LEADS. With ``reconnect=True`` it comes back by itself
after a lost link (Twisted's ``ClientService`` with exponential backoff), and with
``queue_while_disconnected`` set it holds what is sent meanwhile and delivers it, in order, on reconnect.
"""

from __future__ import annotations

import threading
from threading import get_ident
from typing import Self, Unpack

from twisted.application.internet import ClientService
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import HostnameEndpoint, clientFromString
from twisted.internet.interfaces import IProtocol, IProtocolFactory, IStreamClientEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure

from leads_twisted.comm.callback import Callback
from leads_twisted.comm.connection import Connection, ConnectionBase
from leads_twisted.comm.endpoints import ClientEndpointLike
from leads_twisted.comm.errors import describe_start_failure
from leads_twisted.comm.framing import DEFAULT_MAX_MESSAGE, DEFAULT_SEPARATOR
from leads_twisted.comm.handoff import Handoff
from leads_twisted.comm.hub import Hub, State
from leads_twisted.comm.link_policy import Backoff, LinkOptions
from leads_twisted.comm.protocol import LeadsClientFactory, LeadsProtocol
from leads_twisted.comm.reactor_types import IHubReactor
from leads_twisted.comm.tls import TLSOptions
from leads_twisted.comm.write_batch import WriteBatch

_log = Logger(namespace="leads_twisted.client")

#: Seconds a connection attempt may take before it fails with ``TimeoutError``.
DEFAULT_CONNECT_TIMEOUT: float = 10.0


class ClientHub(Hub):
    """Connects to one server and holds that connection until either side closes it.

    A hub: use it in the reactor thread (``start_in_reactor(server_address)``, ``close_in_reactor``);
    ``Client`` is the same with the thread facade on top.
    """

    def __init__(
        self,
        port: int = 16900,
        callback: Callback | None = None,
        separator: bytes = DEFAULT_SEPARATOR,
        max_message: int = DEFAULT_MAX_MESSAGE,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        endpoint: ClientEndpointLike | None = None,
        reconnect: bool = False,
        backoff: Backoff | None = None,
        queue_while_disconnected: int = 0,
        tls: TLSOptions | None = None,
        slow_callback: float | None = None,
        reactor: IHubReactor | None = None,
        handoff: Handoff | None = None,
        write_batch: WriteBatch | None = None,
        **link_options: Unpack[LinkOptions],
    ) -> None:
        super().__init__(
            port,
            callback,
            separator,
            max_message,
            reactor=reactor,
            handoff=handoff,
            write_batch=write_batch,
            slow_callback=slow_callback,
            **link_options,
        )
        if not isinstance(queue_while_disconnected, int) or queue_while_disconnected < 0:
            raise ValueError(f"queue_while_disconnected must be a number of bytes, not {queue_while_disconnected!r}")
        self._target = Target(connect_timeout, endpoint, reconnect, backoff if backoff is not None else Backoff(), tls)
        #: The bound of the disconnected-send queue in bytes (0: no queue); read by every ``send``.
        self._queue_limit: int = queue_while_disconnected
        self._held = HeldSends()
        self._connection: Connection | None = None
        self._connecting: Deferred[IProtocol] | None = None
        self._first_link: Deferred[ConnectionBase | None] | None = None
        self._retrying: ClientService | None = None
        #: What the server said when it ended the link with ``disconnect``; every later refusal names it.
        self._server_goodbye: str | None = None
        # Without a disconnected-send queue, the outbox itself refuses sends whenever there is no open link,
        # so ``send`` needs no check of its own on its common path.
        self._refuse_sends("the client is not connected; start it with start_client()")

    def link_buffer_bound(self) -> int:
        """Sends from other threads already wait while the link is full, but the outbox batch drained when the
        link filled (up to ``max_queued``) lands on top: the client's own link must not count it as a slow
        peer and cut itself."""
        return self._policy.max_buffered + self._handoff.max_queued

    def describe_target(self) -> str:
        """Where this client connects, for messages."""
        if self._target.endpoint is not None:
            return f"endpoint {self._target.endpoint!r}"
        return f"{self._target.address}:{self._port}"

    def start_in_reactor(self, server_address: str = "127.0.0.1") -> Deferred[Self]:
        """Connect to ``server_address`` (a host name or an IP address), in the reactor thread; fires with the
        hub once the first link is up. With ``reconnect=True`` a failed first attempt is reported to
        ``on_fail`` and retried in the background instead."""
        return super().start_in_reactor(check_address(server_address))

    def connection(self) -> Connection | None:
        """The open connection, or ``None`` while there is none."""
        return self._connection

    def held_messages(self) -> int:
        """How many messages wait for the next connection (with ``queue_while_disconnected``)."""
        return len(self._held.messages)

    def held_bytes(self) -> int:
        """How many bytes those messages hold."""
        return self._held.size

    def send(self, msg: bytes) -> None:
        """Send ``msg`` to the server, from any thread; each thread's messages keep their order.

        Raises ``ValueError`` if ``msg`` contains the separator. When not connected it raises ``IOError``,
        unless ``queue_while_disconnected`` is set: then the message waits for the next connection, and
        ``IOError`` says so if that queue is full.
        """
        separator = self._inline_separator
        if separator is None or type(msg) is not bytes or msg.find(separator) >= 0:
            self._encoder.check(msg)  # the full check, which raises for what the inline one could not pass
        if self._queue_limit or get_ident() == self._reactor_thread:
            connection = self._connection
            if connection is not None and not self._queue_limit and not connection.closed():
                connection.write_messages([msg])  # a reply from a callback, the common case there: no detour
                return
            self._send_or_queue(msg)
            return
        # The common case, kept short: another thread, no disconnected-send queue. The outbox raises
        # ``OSError`` while there is no open link (``_refuse_sends``).
        self._handoff.put(self, msg, self._connection)

    def _refuse_sends(self, reason: str) -> None:
        """From now until a link is up, sends raise ``OSError(reason)``; a client that holds sends for the next
        link (``queue_while_disconnected``) refuses only once closed."""
        if not self._queue_limit:
            self._handoff.refuse(reason)

    def _send_or_queue(self, msg: bytes) -> None:
        """``send`` from the reactor thread, or with a disconnected-send queue to keep within its bound."""
        if self.in_reactor_thread():
            self._check_connected_or_can_hold(msg)
            self._send_or_hold([msg])
            return
        with self._held.lock:
            self._check_connected_or_can_hold(msg)
            # Counted until the reactor takes it, so that sends running ahead of it cannot overfill the queue.
            self._held.in_transit += len(msg)
        self._handoff.put(self, msg)

    def _check_connected_or_can_hold(self, msg: bytes) -> None:
        connection = self._connection
        if connection is None or connection.closed():
            self._check_can_hold(msg)

    def _check_can_hold(self, msg: bytes) -> None:
        if self._state in (State.CLOSING, State.CLOSED):
            raise OSError(self._refusal_once_closed())
        if not self._queue_limit:
            raise OSError(f"the client is not connected to {self.describe_target()}; start it with start_client()")
        if self._held.size + self._held.in_transit + len(msg) > self._queue_limit:
            raise OSError(
                f"the client is not connected to {self.describe_target()} and its queue of "
                f"{self._queue_limit} bytes is full; the message was not accepted"
            )

    # Reactor thread from here on.

    def write_messages(self, messages: list[bytes]) -> None:
        """Messages sent from other threads, reaching the reactor through the outbox."""
        if self._queue_limit:
            with self._held.lock:
                self._held.in_transit -= sum(map(len, messages))
        self._send_or_hold(messages)

    def _send_or_hold(self, messages: list[bytes]) -> None:
        connection = self._connection
        if connection is not None and not connection.closed():
            connection.write_messages(messages)
        elif self._queue_limit and self._state not in (State.CLOSING, State.CLOSED):
            self._held.keep(messages)
        else:
            _log.debug("{count} messages dropped: not connected", count=len(messages))

    def _endpoint_for(self, server_address: str) -> IStreamClientEndpoint:
        endpoint = self._target.endpoint
        if isinstance(endpoint, str):
            described: IStreamClientEndpoint = clientFromString(self.reactor, endpoint)
            return described
        if endpoint is not None:
            return endpoint
        return HostnameEndpoint(self.reactor, server_address, self._port, timeout=self._target.connect_timeout)

    def _factory_for(self, server_address: str) -> IProtocolFactory:
        """Our factory, wrapped in TLS here rather than in the endpoint so the TLS layer sits right on our
        protocol and tells it when the handshake is done (also under ``ClientService``'s proxy)."""
        factory: IProtocolFactory = LeadsClientFactory(self)
        if self._target.tls is not None:
            from twisted.protocols.tls import TLSMemoryBIOFactory  # needs the tls extra (pyOpenSSL)

            factory = TLSMemoryBIOFactory(self._target.tls.client_options(server_address), True, factory)
        return factory

    def _start_in_reactor(self, server_address: str = "127.0.0.1") -> Deferred[ConnectionBase | None]:
        """Fires once the first link is up (connected and, over TLS, verified), or fails if it cannot be;
        with reconnect on, a failed first attempt fires it with ``None`` and the retries go on."""
        self._target.address = server_address
        self._invoke(self._callback.on_initialize, self)
        if self._state is not State.STARTING:
            return succeed(None)  # closed by on_initialize: connect nowhere
        endpoint = self._endpoint_for(server_address)
        factory = self._factory_for(server_address)
        # Kept here too: an endpoint that connects at once (a serial port) settles it before connect returns.
        first_link: Deferred[ConnectionBase | None] = Deferred()
        self._first_link = first_link
        if not self._target.reconnect:
            connecting = endpoint.connect(factory)
            # Any endpoint, not only ours, gets the connect timeout: one that never answers must not hang start.
            connecting.addTimeout(self._target.connect_timeout, self.reactor)
            self._connecting = connecting
            connecting.addCallbacks(self._attempt_connected, self._first_attempt_failed)
        else:
            self._retrying = ClientService(
                endpoint, factory, retryPolicy=self._target.backoff.policy(), clock=self.reactor
            )
            self._retrying.startService()
            self._retrying.whenConnected(failAfterFailures=1).addErrback(self._first_attempt_failed)
        return first_link

    def _attempt_connected(self, _: object) -> None:
        self._connecting = None

    def _first_attempt_failed(self, failure: Failure) -> None:
        self._connecting = None
        first, self._first_link = self._first_link, None
        if first is None:
            return
        if self._retrying is None:
            first.errback(failure)
            return
        error = describe_start_failure(self, failure)
        _log.warn("{service}: {error}; retrying in the background", service=self, error=error)
        self.report(error)
        first.callback(None)

    def waits_for_acceptance(self) -> bool:
        return True

    def link_failed(self, protocol: LeadsProtocol, reason: Failure) -> None:
        refusal = _certificate_refusal(reason.value, self.describe_target())
        if refusal is not None:
            reason = Failure(refusal)
        if self._first_link is not None:
            self._opening.discard(protocol)
            self._first_attempt_failed(reason)
        else:
            super().link_failed(protocol, reason)

    def _shut_down(self) -> None:
        connection = self._connection
        if connection is not None:
            connection.close_now()
        elif self._retrying is not None:
            self._stop_retrying()
        elif self._connecting is not None:
            self._connecting.cancel()
        else:
            self._finish()

    def _stop_retrying(self) -> None:
        retrying, self._retrying = self._retrying, None
        if retrying is None:
            self._finish()
            return
        # ClientService cannot be stopped from inside its own callbacks (on_fail for the first attempt, or the
        # start Deferred, run there): stop it on the reactor's next turn, before any retry could begin.
        self.reactor.callLater(0, lambda: retrying.stopService().addBoth(lambda _: self._finish()))

    def _links(self) -> list[ConnectionBase]:
        return [self._connection] if self._connection is not None else []

    def _refusal_once_closed(self) -> str:
        if self._server_goodbye is not None:
            return f"{self._server_goodbye}; the client is closed"  # why it closed, however late the send
        return f"the client for {self.describe_target()} is closed"

    def _refusal_on_link_close(self, connection: ConnectionBase) -> str | None:
        if connection is not self._connection or self._queue_limit or self._handoff.refusing():
            return None  # not ours, held for the next link, or already refused with a more precise reason
        return f"the connection to {self.describe_target()} is closed"

    def _peer_said_disconnect(self, connection: ConnectionBase) -> None:
        """The server said ``disconnect``: from now on ``send`` raises (or, with a disconnected-send queue and
        reconnecting, holds the message for the next link); everything accepted before goes out first."""
        if connection is self._connection:
            self._server_goodbye = f"the server at {self.describe_target()} said disconnect"
            reason = f"{self._server_goodbye}; the client is not connected any more"
            if not self._queue_limit or self._retrying is None:  # with a queue, only a next link holds sends
                self._handoff.refuse(reason)
        super()._peer_said_disconnect(connection)

    def _add_connection(self, connection: Connection) -> None:
        if self._state in (State.STARTING, State.RUNNING):
            self._handoff.accept()
        held = self._held.take()
        if held:
            # Before the link is published: a thread sending on it once it is must find these ahead of it.
            connection.write_messages(held)
        self._connection = connection

    def _after_link_up(self, connection: ConnectionBase) -> None:
        """The first link is up and ``on_connect`` has run: a waiting ``start`` may return."""
        first, self._first_link = self._first_link, None
        if first is not None:
            first.callback(connection)

    def _remove_connection(self, connection: Connection) -> None:
        if self._connection is connection:
            self._connection = None
            self._refuse_sends(f"the client is not connected to {self.describe_target()}")
            self._handoff.resume()

    def _after_connection_lost(self, connection: Connection) -> None:
        if self._retrying is None:
            self._finish()
        elif self._state in (State.CLOSING, State.CLOSED):
            self._stop_retrying()

    def link_fell_behind(self, connection: Connection) -> None:
        super().link_fell_behind(connection)
        self._handoff.pause()

    def link_caught_up(self, connection: Connection) -> None:
        super().link_caught_up(connection)
        self._handoff.resume()


#: What a TLS server's alert says when it refuses a client's certificate (OpenSSL's reason texts).
_REFUSAL_ALERTS = (
    "alert certificate required",
    "alert unknown ca",
    "alert bad certificate",
    "alert certificate unknown",
    "alert certificate expired",
    "alert certificate revoked",
    "alert unsupported certificate",
    "alert access denied",
)


def _certificate_refusal(error: BaseException | None, target: str) -> ConnectionRefusedError | None:
    """A ``ConnectionRefusedError`` saying the server refused this client's certificate, if ``error`` is the
    TLS alert a server sends for that; else None."""
    from leads_twisted.comm.tls import describe_tls_error

    if error is None:
        return None
    why = describe_tls_error(error)
    if not any(alert in why for alert in _REFUSAL_ALERTS):
        return None
    refused = ConnectionRefusedError(
        f"the server at {target} refused this client's TLS certificate ({why}): give the client a certificate "
        f"and key signed by a CA the server trusts (TLSOptions certificate=, private_key=)"
    )
    refused.__cause__ = error if isinstance(error, BaseException) else None
    return refused


class Target:
    """Where and how a client connects: read when it starts and reconnects, never per message."""

    __slots__ = ("address", "backoff", "connect_timeout", "endpoint", "reconnect", "tls")

    def __init__(
        self,
        connect_timeout: float,
        endpoint: ClientEndpointLike | None,
        reconnect: bool,
        backoff: Backoff,
        tls: TLSOptions | None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.endpoint = endpoint
        self.reconnect = reconnect
        self.backoff = backoff
        self.tls = tls
        #: The server address given to ``start``, once started.
        self.address: str | None = None


class HeldSends:
    """What a client with ``queue_while_disconnected`` holds for its next link, and the bytes of sends still on
    their way to the reactor thread, which count against the same bound. Any thread, under ``lock``."""

    __slots__ = ("in_transit", "lock", "messages", "size")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[bytes] = []
        #: Bytes of ``messages``.
        self.size = 0
        #: Bytes sent from other threads that the reactor has not taken yet.
        self.in_transit = 0

    def keep(self, messages: list[bytes]) -> None:
        """Hold ``messages`` for the next link (reactor thread)."""
        with self.lock:
            self.messages.extend(messages)
            self.size += sum(map(len, messages))

    def take(self) -> list[bytes]:
        """Everything held, oldest first, and hold nothing more."""
        with self.lock:
            held, self.messages, self.size = self.messages, [], 0
        return held


def check_address(server_address: str) -> str:
    """Return ``server_address`` if it can name a server, or raise ``ValueError``."""
    if not isinstance(server_address, str) or not server_address:
        raise ValueError(f"the server address must be a host name or an IP address, not {server_address!r}")
    return server_address
