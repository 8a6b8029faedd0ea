"""The hub: a Twisted-native set of links with one callback chain, the core that servers and clients share.

A hub lives in the reactor thread: it is started once (``start_in_reactor``) and closed once
(``close_in_reactor``), keeps its links, hands their messages to its ``Callback`` and observers, and applies its
``LinkPolicy``. It never blocks and starts no thread. A send or close of its ``Connection`` links, or of the
hub itself, made in another thread crosses over through its ``Handoff`` (``comm/handoff.py``): by default a
queue woken with ``callFromThread``; the thread facade (``service.py``) gives it the bounded ``Outbox``
instead. (A custom link crosses threads its own way, as ``WebSocketLink`` does with ``callFromThread``.)
The daemon and ``leads_twisted.testing`` use hubs as they are; ``Server`` and ``Client`` are hubs with the
facade on top.
"""

from __future__ import annotations

import enum
import functools
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from threading import get_ident
from typing import Any, Self, Unpack

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python import threadable
from twisted.python.failure import Failure

from leads_twisted.comm.callback import Callback
from leads_twisted.comm.connection import Connection, ConnectionBase, describe_peer
from leads_twisted.comm.errors import ReactorThreadError, describe_start_failure
from leads_twisted.comm.framing import DEFAULT_MAX_MESSAGE, DEFAULT_SEPARATOR, DISCONNECT, Decoder, MessageTooLong
from leads_twisted.comm.handoff import Handoff, ReactorHandoff
from leads_twisted.comm.length_framing import LengthDecoder
from leads_twisted.comm.link_policy import HEARTBEAT, LinkOptions, LinkPolicy
from leads_twisted.comm.link_state import CLOSING, LOST
from leads_twisted.comm.log_guard import RateLimitedWarnings, about_peer, escape
from leads_twisted.comm.memory_budget import MemoryBudget
from leads_twisted.comm.observer import LinkEnd, Observer, Observers
from leads_twisted.comm.protocol import LeadsProtocol
from leads_twisted.comm.reactor_types import IHubReactor, global_reactor
from leads_twisted.comm.slow import SlowCallbacks, check_threshold
from leads_twisted.comm.stats import ServiceStats, Stats
from leads_twisted.comm.tls import describe_tls_error
from leads_twisted.comm.write_batch import WriteBatch, shared_write_batch

_log = Logger(namespace="leads_twisted.service")


class State(enum.Enum):
    """Where a service is in its one life."""

    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    CLOSING = "closing"
    CLOSED = "closed"


def check_port(port: int) -> int:
    """Return ``port`` if it is a TCP port number (0 picks a free one), or raise ``ValueError``."""
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ValueError(f"the port must be a number from 0 to 65535, not {port!r}")
    return port


class Life:
    """What a hub keeps of its one life besides its state: used when it starts, closes or is asked for stats,
    never per message (kept apart so that the hub's per-message attributes stay few and fast to read)."""

    __slots__ = ("caller_gets_start_failure", "cut_timer", "finish_waiters", "lock", "on_global_reactor", "stats")

    def __init__(self) -> None:
        #: Guards the moves out of NEW, and the first ``stats()``, which any thread may make.
        self.lock = threading.Lock()
        #: Cuts the links still draining once ``close_in_reactor(within=...)`` runs out.
        self.cut_timer: IDelayedCall | None = None
        #: ``close_in_reactor`` Deferreds, fired when the hub has ended.
        self.finish_waiters: list[Deferred[None]] = []
        #: The counting observer, once ``stats()`` has been asked for.
        self.stats: Stats | None = None
        #: True when a blocking ``start`` raises the start's failure to its caller, who then needs no log line.
        self.caller_gets_start_failure: bool = False
        #: True when the hub runs on Twisted's global reactor, whose thread Twisted knows.
        self.on_global_reactor: bool = True


class Hub(ABC):
    """The reactor-thread core of a server or a client: its links, its callback chain, its policy.

    Every method runs in the reactor thread unless it says otherwise. ``reactor`` defaults to the global one;
    ``handoff`` carries sends and closes from other threads (default: ``ReactorHandoff``); ``write_batch`` is
    the reactor's batch of writes waiting for the end of the work under way: by default one for the process's
    reactor; a ``Server`` or ``Client`` uses its runner's.
    """

    #: What bounds the bytes held for all peers together (a server's ``max_memory``); None: no bound.
    memory_budget: MemoryBudget | None = None

    def __init__(
        self,
        port: int,
        callback: Callback | None = None,
        separator: bytes = DEFAULT_SEPARATOR,
        max_message: int = DEFAULT_MAX_MESSAGE,
        *,
        reactor: IHubReactor | None = None,
        handoff: Handoff | None = None,
        write_batch: WriteBatch | None = None,
        slow_callback: float | None = None,
        **link_options: Unpack[LinkOptions],
    ) -> None:
        self._port: int = check_port(port)
        if callback is not None and not isinstance(callback, Callback):
            raise TypeError(f"the callback must be a leads_twisted.comm.Callback, not {type(callback).__name__}")
        self._callback: Callback = callback if callback is not None else Callback()
        self._policy: LinkPolicy = LinkPolicy(separator=separator, max_message=max_message, **link_options)
        self._encoder = self._policy.encoder
        #: The one-byte separator when plain bytes can be checked inline on the send path (``find`` alone).
        self._inline_separator: bytes | None = None
        if self._policy.framing == "separator" and len(self._policy.separator) == 1:
            self._inline_separator = self._policy.separator
        self._given_reactor = reactor
        self._write_batch: WriteBatch = write_batch if write_batch is not None else shared_write_batch
        #: The reactor thread's id once the hub has begun (``_begin`` runs there): a send compares it with
        #: ``get_ident()``, the cheapest test of which thread it is in.
        self._reactor_thread: int | None = None
        self._handoff: Handoff = handoff if handoff is not None else ReactorHandoff(self.call_from_thread)
        self._state: State = State.NEW
        self._life = Life()
        self._life.on_global_reactor = reactor is None
        self._sender: ConnectionBase | None = None
        self._opening: set[LeadsProtocol] = set()
        self._observers: Observers = Observers()
        threshold = check_threshold(slow_callback)
        #: Times callbacks when ``slow_callback`` is set; None costs one test per chunk received.
        self._slow: SlowCallbacks | None = SlowCallbacks(threshold) if threshold is not None else None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} port={self._port} {self._state.value}>"

    @property
    def separator(self) -> bytes:
        """The bytes that end every message."""
        return self._policy.separator

    @property
    def max_message(self) -> int:
        """The most bytes one received message may have; a peer sending more is dropped."""
        return self._policy.max_message

    @property
    def state(self) -> State:
        """Where the service is in its life."""
        return self._state

    @property
    def reactor(self) -> IHubReactor:
        """The reactor the hub runs on (the one given, else Twisted's global reactor)."""
        reactor = self._given_reactor
        if reactor is None:
            # Importing Twisted's reactor installs it for good: found once, it is kept (no import per read).
            reactor = self._given_reactor = global_reactor()
        return reactor

    @property
    def write_batch(self) -> WriteBatch:
        """The reactor's write batch: writes made while it is open leave together when it ends."""
        return self._write_batch

    @property
    def reactor_thread(self) -> int | None:
        """The id of the thread the hub runs in, once started; None before."""
        return self._reactor_thread

    def in_reactor_thread(self) -> bool:
        """True in the thread the hub runs in (from any thread)."""
        return get_ident() == self._reactor_thread

    @property
    def handoff(self) -> Handoff:
        """What carries sends and closes from other threads to this hub's reactor thread."""
        return self._handoff

    def port(self) -> int:
        """The port served or connected to; once a server listens, the real one (also for port 0)."""
        return self._port

    def describe_target(self) -> str:
        """Where this service listens or connects, for messages."""
        return f"port {self._port}"

    def set_callback(self, callback: Callback) -> None:
        """Put ``callback`` in front of the current one; it can hand calls on with ``self.super(...)``."""
        callback.bind_chain(self._callback)
        self._callback = callback

    @property
    def observers(self) -> Observers:
        """The observers told of this service's link events (see ``Observer``)."""
        return self._observers

    def add_observer(self, observer: Observer) -> None:
        """Tell ``observer`` of every link event from now on, in the reactor thread; from any thread."""
        self._observers.add(observer)

    def remove_observer(self, observer: Observer) -> None:
        """Stop telling ``observer``; from any thread."""
        self._observers.remove(observer)

    def stats(self) -> ServiceStats:
        """This service's counters and each link's (see ``ServiceStats``); from any thread.

        Counting begins with the first call, which adds a ``Stats`` observer: call it once before ``start`` to
        count everything. Counting costs a few additions per message.
        """
        with self._life.lock:
            if self._life.stats is None:
                self._life.stats = Stats()
                self._observers.add(self._life.stats)
            stats = self._life.stats
        return stats.snapshot()

    def sender(self) -> ConnectionBase:
        """The connection whose message is being delivered: valid inside ``on_receive`` only.

        Keep it (or the connection from ``on_connect``) to answer that peer alone later, from any thread.
        """
        sender = self._sender
        if sender is None or get_ident() != self._reactor_thread:
            raise RuntimeError(
                "sender() is only known inside on_receive; keep the connection given to on_connect instead"
            )
        return sender

    def reply(self, msg: bytes) -> None:
        """Send ``msg`` to the peer whose message is being delivered (inside ``on_receive`` only)."""
        self.sender().send(msg)

    def start_in_reactor(self, *args: Any, **kwargs: Any) -> Deferred[Self]:
        """Start, in the reactor thread, and fire with the hub once it is up (listening, or first link up).

        The Deferred fails with the ``OSError`` that says why it could not start (after ``on_fail``). Raises
        ``ReactorThreadError`` outside the thread running Twisted's global reactor, when that is the hub's.
        """
        self._check_start_thread()
        self._claim_start()
        return self._begin(*args, **kwargs).addCallback(lambda _: self)

    def _check_start_thread(self) -> None:
        """Raise ``ReactorThreadError`` if this is not the reactor's thread, where Twisted knows which that is."""
        running = threadable.ioThread
        if self._life.on_global_reactor and running is not None and running != get_ident():
            raise ReactorThreadError(
                "start_in_reactor() belongs in the reactor thread; hand it over with callFromThread"
            )

    def close(self) -> None:
        """Tell every peer ``disconnect`` after what was sent before, and end the hub; safe to repeat, from any
        thread. It only begins the closing: ``close_in_reactor`` says when it is done."""
        if self._close_unstarted() or self._state is State.CLOSED:
            return
        if self.in_reactor_thread():
            self.close_now()
        else:
            self._handoff.put_close(self, self._refusal_once_closed())

    def close_in_reactor(self, within: float | None = None) -> Deferred[None]:
        """For Twisted programs, in the reactor thread: close, and fire once every link has ended.

        With ``within``, links still draining that many seconds later are cut (each reported like any cut),
        so the Deferred fires within about that time whatever the peers do.
        """
        if not self._close_unstarted():
            self.close_now()
            if within is not None and self._state is State.CLOSING and self._life.cut_timer is None:
                self._life.cut_timer = self.reactor.callLater(within, self._cut_links)
        return self._when_finished()

    def _refusal_once_closed(self) -> str | None:
        """What a send raises once ``close()`` has been asked for, or None if sends just go nowhere."""
        return None

    def _refusal_on_link_close(self, connection: ConnectionBase) -> str | None:
        """What a send through the service raises once ``connection`` is closing, or None if nothing changes."""
        return None

    def close_later(self, connection: ConnectionBase) -> None:
        """From another thread: close ``connection`` after everything handed over for it before."""
        self._handoff.put_close(connection, self._refusal_on_link_close(connection))

    def link_closing(self, connection: ConnectionBase) -> None:
        """``connection`` began closing, whichever side began it (reactor thread)."""
        refusal = self._refusal_on_link_close(connection)
        if refusal is not None:
            self._handoff.refuse(refusal)

    def _cut_links(self) -> None:
        """Cut every link still draining (``close_in_reactor(within=...)`` ran out)."""
        self._life.cut_timer = None
        for connection in self._links():
            if isinstance(connection, Connection) and connection.state is not LOST:
                connection.cut()

    def _claim_start(self) -> None:
        """NEW → STARTING, once: a service runs once."""
        with self._life.lock:
            if self._state is not State.NEW:
                raise RuntimeError(f"{self!r} has been started before; a service runs once, create a new one")
            self._state = State.STARTING

    def _close_unstarted(self) -> bool:
        """NEW → CLOSED for a service never started; True if that is what happened."""
        with self._life.lock:
            if self._state is not State.NEW:
                return False
            self._state = State.CLOSED
        self._ended()
        return True

    def link_buffer_bound(self) -> int:
        """Bytes a link may hold for a peer that stopped reading before ``slow_policy`` acts."""
        return self._policy.max_buffered

    # Reactor thread from here on.

    def call_from_thread(self, function: Callable[[], None]) -> None:
        """Run ``function`` in the reactor thread soon (from any thread)."""
        self.reactor.callFromThread(function)

    def _begin(self, *args: Any, **kwargs: Any) -> Deferred[None]:
        self._reactor_thread = threading.get_ident()
        if self._state is not State.STARTING:
            return succeed(None)  # closed before the reactor got to the start: nothing to begin
        self._began()
        started = maybeDeferred(self._start_in_reactor, *args, **kwargs)
        started.addCallbacks(self._started, self._failed_to_start)
        return started

    def _began(self) -> None:  # noqa: B027 - a hook, empty by default
        """The hub has begun starting, in the reactor thread."""

    def _ended(self) -> None:  # noqa: B027 - a hook, empty by default
        """The hub has ended (closed, or never started and closed); every link is gone."""

    def _started(self, _: object) -> None:
        if self._state is State.STARTING:
            self._state = State.RUNNING

    def _failed_to_start(self, failure: Failure) -> Failure:
        error = describe_start_failure(self, failure)
        if not self._life.caller_gets_start_failure:
            _log.error("{service} could not start: {error}", service=self, error=error)
        self.report(error)
        self._finish()
        return Failure(error)

    def close_now(self) -> None:
        if self._state in (State.CLOSING, State.CLOSED):
            return
        self._state = State.CLOSING
        refusal = self._refusal_once_closed()
        if refusal is not None:
            self._handoff.refuse(refusal)
        self._abort_opening_links()
        self._shut_down()

    def _when_finished(self) -> Deferred[None]:
        waiter: Deferred[None] = Deferred()
        if self._state is State.CLOSED:
            waiter.callback(None)
        else:
            self._life.finish_waiters.append(waiter)
        return waiter

    def _finish(self) -> None:
        """The service has ended: release every waiter."""
        if self._state is State.CLOSED:
            return
        self._state = State.CLOSED
        if self._life.cut_timer is not None and self._life.cut_timer.active():
            self._life.cut_timer.cancel()
        self._life.cut_timer = None
        refusal = self._refusal_once_closed()
        if refusal is not None:
            self._handoff.refuse(refusal)
        self._handoff.resume()
        self._ended()
        waiters, self._life.finish_waiters = self._life.finish_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def link_opening(self, protocol: LeadsProtocol) -> None:
        """A transport connected but the link is not up yet (a TLS handshake is under way)."""
        self._opening.add(protocol)

    def waits_for_acceptance(self) -> bool:
        """Whether this side's TLS 1.3 links wait for the peer's first record before they are up (a client)."""
        return False

    def link_failed(self, protocol: LeadsProtocol, reason: Failure) -> None:
        """A transport ended before its link was up: over TLS, the handshake failed or timed out.

        Logged with the peer, at most one line per interval in a flood; ``on_fail`` hears of every one.
        """
        self._opening.discard(protocol)
        peer = describe_peer(protocol.transport)
        why = protocol.failure_note or describe_tls_error(reason.value or ConnectionError(reason.getErrorMessage()))
        self._warnings.warn("handshake", "TLS handshake with {peer} failed: {why}", peer=peer, why=escape(why))
        self.report(about_peer(ConnectionError(f"the TLS handshake with {peer} failed: {why}"), peer, logged=True))

    @functools.cached_property
    def _warnings(self) -> RateLimitedWarnings:
        """This service's warnings that a flood could repeat: one summary line per interval."""
        return RateLimitedWarnings(_log, self.reactor)

    def _abort_opening_links(self) -> None:
        for protocol in list(self._opening):
            protocol.transport.abortConnection()  # type: ignore[union-attr]

    def link_made(self, protocol: LeadsProtocol) -> Connection:
        self._opening.discard(protocol)
        assert protocol.transport is not None  # connectionMade has run
        connection = Connection(self, protocol.transport)
        connection.decoder = protocol.decoder  # for drop_remainder
        self._link_up(connection)
        return connection

    def _link_up(self, connection: ConnectionBase) -> None:
        """A link is up, whatever carries it: keep it and report it; a closing service closes it at once."""
        connection.frame_overhead = len(connection.frame(b""))
        self._add_connection(connection)  # type: ignore[arg-type]
        self._invoke(self._callback.on_connect, self, connection)
        if self._observers.active:
            self._observers.link_up(self, connection)
        if self._state in (State.CLOSING, State.CLOSED):
            connection.close_now()
        self._after_link_up(connection)

    def _after_link_up(self, connection: ConnectionBase) -> None:  # noqa: B027 - a hook, empty by default
        """A link is up and ``on_connect`` has run."""

    # A custom transport's side (see ``ConnectionBase``): in the reactor thread, like everything below.

    def attach(self, connection: ConnectionBase) -> None:
        """A link carried by ``connection`` (a custom ``ConnectionBase``) is up: keep it, call ``on_connect``.

        Then hand each chunk of bytes from its peer to ``feed``, and say when it has ended with ``detach``.
        Raises ``RuntimeError`` unless the service has been started and is not closed.
        """
        if self._state in (State.NEW, State.CLOSED):
            raise RuntimeError(f"{self!r} takes links only once started and until closed")
        connection.attached_to(self)
        self._link_up(connection)

    def feed(self, connection: ConnectionBase, data: bytes) -> None:
        """Bytes from the peer of an attached link: each complete message goes to ``on_receive``, in order.

        A peer that breaks the framing (a message over ``max_message``) is reported to ``on_fail``, its link
        closed and at once forgotten, as if detached. Bytes that come after ``detach`` are ignored.
        """
        decoder = connection.decoder
        if decoder is None:
            raise RuntimeError(f"{connection!r} was never attached; call attach(connection) when its link is up")
        if connection.state is not LOST:
            self.link_received(connection, decoder, data)

    def detach(self, connection: ConnectionBase) -> None:
        """An attached link has ended, whichever side ended it: forget it and call ``on_disconnect``, once."""
        if connection.decoder is not None and connection.state is not LOST:
            self.link_lost(connection, connectionDone)  # type: ignore[arg-type]

    def drop(self, connection: ConnectionBase, error: Exception, reason: LinkEnd = LinkEnd.OVERSIZE) -> None:
        """End an attached link for breaking a rule its transport enforces itself (a WebSocket message over
        ``max_message``, a peer too slow): ``error`` goes to ``on_fail``, the link is closed and forgotten at
        once, and observers hear ``reason``. In the reactor thread; a link already ended is left alone."""
        self.link_broke_rules(connection, error, reason)

    @property
    def policy(self) -> LinkPolicy:
        """What every link of this service obeys (framing, ``max_message``, ``max_buffered``, slow-peer policy);
        read-only, for transports attached through ``attach``."""
        return self._policy

    def _deliver(self, connection: ConnectionBase, messages: list[bytes]) -> None:
        """Hand messages to ``on_receive`` in order, with ``sender()`` set.

        A peer's ``disconnect`` is answered with ours and closes the link; what the peer sent before it
        closed is still delivered, also while our side is closing.
        """
        self._sender = connection
        on_receive = self._callback.on_receive
        observers = self._observers
        skip_heartbeats = self._policy.heartbeat is not None
        # Control messages are rare: one scan of the batch spares every message its comparisons.
        with_controls = DISCONNECT in messages or (skip_heartbeats and HEARTBEAT in messages)
        each = observers.each_message  # a tuple, empty without observers: cheaper to test than the set itself
        if observers.active:
            chunk = messages
            if with_controls:
                chunk = [m for m in messages if m != DISCONNECT and not (skip_heartbeats and m == HEARTBEAT)]
            count = len(chunk)
            connection.messages_in += count
            connection.bytes_in += sum(map(len, chunk)) + count * connection.frame_overhead
            if observers.per_chunk:
                observers.messages_in(self, connection, chunk)
        try:
            for msg in messages:
                if with_controls:
                    if msg == DISCONNECT:
                        self._peer_said_disconnect(connection)
                        continue
                    if skip_heartbeats and msg == HEARTBEAT:
                        continue
                if each:
                    observers.message_in(self, connection, msg)
                try:
                    on_receive(self, msg)
                except Exception as error:
                    self._callback_raised("on_receive", error)
        finally:
            self._sender = None

    def _peer_said_disconnect(self, connection: ConnectionBase) -> None:
        """The peer said ``disconnect``: what threads handed over before it goes out first, then ours."""
        self._handoff.flush()
        connection.close_now()

    def peer_done_sending(self, connection: ConnectionBase) -> None:
        """The peer shut its side of the link: as after its ``disconnect``, if that did not come first. The peer
        ended the link, so it ends as closed, even if our ``disconnect`` can no longer reach it."""
        if connection.end_reason is None:
            connection.end_reason = LinkEnd.CLOSED
        if connection.state.writing():
            self._peer_said_disconnect(connection)

    def link_lost(self, connection: Connection, reason: Failure) -> None:
        connection.mark_lost()
        self._remove_connection(connection)
        self._invoke(self._callback.on_disconnect, self, connection)
        if self._observers.active:
            ending = connection.end_reason
            if ending is None:
                ending = LinkEnd.CLOSED if reason.check(ConnectionDone) else LinkEnd.LOST
            self._observers.link_down(self, connection, ending)
        self._after_connection_lost(connection)

    def link_idle(self, connection: Connection, seconds: float) -> None:
        """Nothing came from the peer for ``idle_timeout`` seconds: report it and close the link."""
        error = TimeoutError(f"{connection} sent nothing for {seconds} s; closing it")
        self.report(about_peer(error, str(connection), logged=False))
        connection.end_reason = LinkEnd.IDLE
        connection.close_now()

    def link_received(self, connection: ConnectionBase, decoder: Decoder | LengthDecoder, data: bytes) -> int:
        """Bytes from a link's peer: deliver the messages they complete, or drop a peer breaking the framing
        after delivering what it sent whole before. Returns how many messages the bytes completed.

        What the callbacks send meanwhile is held and written once per link when they are done. With
        ``slow_callback`` set, the whole chunk is timed, writes included.
        """
        if connection.state is CLOSING:
            connection.heard_from_peer()
        slow = self._slow
        started = slow.clock() if slow is not None else 0.0
        batch = self._write_batch
        batch.begin()
        try:
            try:
                messages = decoder.feed(data)
            except MessageTooLong as error:
                if error.complete:
                    self._deliver(connection, error.complete)
                self.link_broke_rules(connection, error)
                return len(error.complete)
            if messages:
                self._deliver(connection, messages)
            return len(messages)
        finally:
            batch.end()
            if slow is not None:
                slow.finished(started, self._callback, "on_receive", f"a chunk of {len(data)} bytes from {connection}")

    def link_broke_rules(
        self, connection: ConnectionBase, error: Exception, reason: LinkEnd = LinkEnd.OVERSIZE
    ) -> None:
        """A peer sent what the framing refuses (or what the memory budget cannot hold): drop that link alone
        and say why, naming the peer (one line per interval in a flood)."""
        peer, text = str(connection), escape(error)
        line = text if peer in text else f"dropping {peer}: {text}"
        self._warnings.warn(type(error).__name__, "{line}", line=line)
        self.report(about_peer(error, peer, logged=True))
        if connection.state is LOST:
            return
        connection.abort(reason)
        if not isinstance(connection, Connection):
            self.detach(connection)  # its transport need not say it has ended

    def _invoke(self, method: Callable[..., None], *args: Any) -> None:
        slow = self._slow
        started = slow.clock() if slow is not None else 0.0
        try:
            method(*args)
        except Exception as error:
            self._callback_raised(method.__name__, error)
        if slow is not None:
            slow.finished(started, self._callback, method.__name__, method.__name__)

    def _callback_raised(self, name: str, error: Exception) -> None:
        _log.failure("callback {name} raised; the service carries on", Failure(error), name=name)
        self.report(error)

    def report(self, error: Exception) -> None:
        if self._observers.active:
            self._observers.failure(self, error)
        try:
            self._callback.on_fail(self, error)
        except Exception:
            _log.failure("callback on_fail raised while reporting {error!r}", error=error)

    # What a server and a client each do their own way.

    @abstractmethod
    def _start_in_reactor(self, *args: Any, **kwargs: Any) -> Deferred[Any]:
        """Begin listening or connecting; the Deferred fires once up, or fails."""

    @abstractmethod
    def _shut_down(self) -> None:
        """Stop accepting or connecting and close every link; call ``_finish`` once all is gone."""

    @abstractmethod
    def _links(self) -> list[ConnectionBase]:
        """The links open now."""

    @abstractmethod
    def _add_connection(self, connection: Connection) -> None:
        """Keep a new link."""

    @abstractmethod
    def _remove_connection(self, connection: Connection) -> None:
        """Forget a lost link."""

    @abstractmethod
    def _after_connection_lost(self, connection: Connection) -> None:
        """React to a lost link (a client ends; a closing server may be done)."""

    @abstractmethod
    def write_messages(self, messages: list[bytes]) -> None:
        """Deliver checked messages queued for the service itself (a client's sends, a server's broadcasts)."""

    def link_fell_behind(self, connection: Connection) -> None:
        """The transport of ``connection`` holds more than its buffer limit for the peer."""
        connection.peer_fell_behind()

    def link_caught_up(self, connection: Connection) -> None:
        """The transport of ``connection`` is back under its buffer limit."""
        connection.peer_caught_up()
