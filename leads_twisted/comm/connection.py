"""The handle of one link, given to callbacks: send to that peer alone, or close it, from any thread."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import partial
from threading import get_ident
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.interfaces import IReactorTime, ISSLTransport
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from leads_twisted.comm.direct_write import DirectWriter, transport_buffered
from leads_twisted.comm.drain import DrainWatch, pending_bytes, unsent
from leads_twisted.comm.errors import porting_error
from leads_twisted.comm.framing import DEFAULT_SEPARATOR, DISCONNECT, Decoder, Encoder
from leads_twisted.comm.handoff import Handoff
from leads_twisted.comm.length_framing import LengthDecoder, LengthEncoder
from leads_twisted.comm.link_policy import HEARTBEAT, LinkPolicy
from leads_twisted.comm.link_state import CLOSE_ASKED, CLOSING, LOST, OPEN, StatefulLink
from leads_twisted.comm.log_guard import about_peer, escape
from leads_twisted.comm.memory_budget import MemoryBudget, MemoryBudgetExceeded
from leads_twisted.comm.observer import LinkEnd, Observers
from leads_twisted.comm.views import ServiceView
from leads_twisted.comm.write_batch import WriteBatch

if TYPE_CHECKING:
    from twisted.internet.interfaces import ITransport

_log = Logger(namespace="leads_twisted.connection")

#: The observers of a link not attached yet: a stand-in nothing is ever added to.
_NO_OBSERVERS = Observers()


def _describe_peer(peer: object, transport: object) -> str:
    """A name for a peer without host and port: a unix socket path, a serial device, the transport's kind;
    escaped, since a peer chooses its unix socket name."""
    name = getattr(peer, "name", None)
    if name:
        return escape(name.decode(errors="backslashreplace") if isinstance(name, bytes) else name)
    return type(peer if peer is not None else transport).__name__


def describe_peer(transport: object) -> str:
    """``host:port`` of a transport's peer, or another name for it (see ``_describe_peer``), safe to log."""
    peer = transport.getPeer() if hasattr(transport, "getPeer") else None
    host, port = getattr(peer, "host", None), getattr(peer, "port", None)
    if host is not None and port is not None:
        return f"{escape(host)}:{port}"
    return _describe_peer(peer, transport)


def _transport_kind(peer: object, transport: object) -> str:
    """``tls``, ``tcp``, ``unix`` or the peer address's kind, for people reading ``/connz``."""
    if ISSLTransport.providedBy(transport):
        return "tls"
    if isinstance(peer, IPv4Address | IPv6Address):
        return "tcp"
    if isinstance(peer, UNIXAddress):
        return "unix"
    return type(peer if peer is not None else transport).__name__


class LinkHost(ServiceView, Protocol):
    """What a link needs from the hub that owns it: the hub's side of the link seam (``Hub`` provides it)."""

    #: What bounds the bytes held for all peers together; None: no bound.
    memory_budget: MemoryBudget | None

    @property
    def policy(self) -> LinkPolicy:
        """What every link of the hub obeys."""

    @property
    def observers(self) -> Observers:
        """Who hears of the link's events."""

    @property
    def reactor(self) -> IReactorTime:
        """The clock for heartbeats and the closing drain."""

    @property
    def write_batch(self) -> WriteBatch:
        """The reactor's write batch, which the link's writes join while it is open."""

    @property
    def reactor_thread(self) -> int | None:
        """The reactor thread's id, once the hub has begun."""

    @property
    def handoff(self) -> Handoff:
        """What carries a send from another thread to the reactor thread."""

    def in_reactor_thread(self) -> bool:
        """True in the reactor thread."""

    def call_from_thread(self, function: Callable[[], None]) -> None:
        """Run ``function`` in the reactor thread soon."""

    def link_buffer_bound(self) -> int:
        """Bytes a link may hold for a peer that stopped reading before ``slow_policy`` acts."""

    def link_closing(self, connection: ConnectionBase) -> None:
        """``connection`` began closing (reactor thread)."""

    def close_later(self, connection: ConnectionBase) -> None:
        """From another thread: close ``connection`` after what was handed over for it."""

    def report(self, error: Exception) -> None:
        """Tell ``on_fail`` and the observers of ``error``."""


class ConnectionBase(StatefulLink, ABC):
    """One link between a service and a peer: callbacks get it to send to that peer alone, or to close it.

    ``Connection`` carries a link over a Twisted transport. A link over anything else is a subclass that keeps
    this contract, and then works with the same ``Server`` and ``Client`` (callbacks, framing, ``broadcast``,
    ``sender()``, closing):

    - ``__init__`` calls ``super().__init__(separator)``;
    - ``send(msg)`` puts ``self.frame(msg)`` on the wire (``frame`` raises ``ValueError`` for a message that
      would not arrive as one), in order, from any thread; it raises ``OSError`` once ``closed()``;
    - ``close()`` makes ``closed()`` true at once, then, after everything sent before, puts
      ``self.frame(DISCONNECT)`` on the wire and ends the link; from any thread; a second call does nothing;
    - the transport reports the link to its service, in the reactor thread: ``service.attach(link)`` once it
      is up (``on_connect``), ``service.feed(link, data)`` with each chunk of bytes from the peer (the
      messages go to ``on_receive``, ``sender()`` being the link), and ``service.detach(link)`` once it has
      ended, whichever side ended it (``on_disconnect``, once).

    The service uses nothing else of such a link (see the defaults at the end of the class). Idle timeouts,
    heartbeats, TLS, ``max_connections`` and reconnecting come with Twisted transports and endpoints only.
    """

    def __init__(self, separator: bytes = DEFAULT_SEPARATOR, encoder: Encoder | LengthEncoder | None = None) -> None:
        self._encoder: Encoder | LengthEncoder = encoder if encoder is not None else Encoder(separator)
        self.state = OPEN
        #: Told of this link's traffic: its service's observers, once attached (see ``StatefulLink`` on why this
        #: is set here rather than as a class attribute).
        self._observers: Observers = _NO_OBSERVERS

    @property
    def separator(self) -> bytes:
        """The bytes that end every message on this link."""
        return self._encoder.separator

    @abstractmethod
    def closed(self) -> bool:
        """True once the link is closing or closed: ``send`` would raise ``IOError``."""

    @abstractmethod
    def send(self, msg: bytes) -> None:
        """Send one message to this peer alone.

        Raises ``ValueError`` if ``msg`` contains the separator and ``IOError`` if the link is closed.
        """

    @abstractmethod
    def close(self) -> None:
        """Tell the peer ``disconnect``, then end the link; calling it again does nothing."""

    def disconnect(self) -> None:
        """Ask the peer to close, without closing this side; nothing happens if the link is already closed."""
        try:
            self.send(DISCONNECT)
        except OSError:
            return

    def drop_remainder(self) -> None:
        """Forget the bytes of an unfinished message received so far: the rest of it, when it comes, arrives
        as a message of its own (``leads.comm`` 0.9's remainder; whole messages are never held here).

        In a callback it acts at once; from another thread, on the reactor's next turn. Raises ``ValueError``
        with length framing, where what follows would be misread as a length.
        """
        decoder, owner = self.decoder, self._owner
        if decoder is None or owner is None:
            return
        if not isinstance(decoder, Decoder):
            raise ValueError("drop_remainder() needs separator framing: with length framing the stream would desync")

        def drop() -> None:
            decoder.drop_pending()

        if owner.in_reactor_thread():
            drop()
        else:
            owner.call_from_thread(drop)

    def receive(self) -> bytes | None:
        """Not here: see ``porting_error``."""
        raise porting_error("ConnectionBase.receive()", "messages arrive whole, in order, in Callback.on_receive")

    def use_remainder(self) -> bytes:
        """Not here: see ``porting_error``."""
        raise porting_error("ConnectionBase.use_remainder()", "the library frames messages; use Callback.on_receive")

    def with_remainder(self, msg: bytes) -> bytes:
        """Not here: see ``porting_error``."""
        raise porting_error("ConnectionBase.with_remainder()", "the library frames messages; use Callback.on_receive")

    def attached_to(self, host: LinkHost) -> None:
        """``host`` keeps this link now (``Hub.attach``): frame and decode as it does, and tell its observers."""
        self._encoder = host.policy.encoder
        self.decoder = host.policy.decoder()
        self._owner = host
        self._observers = host.observers

    def frame(self, msg: bytes) -> bytes:
        """The wire bytes of ``msg`` in this link's framing (its service's, once attached).

        Raises ``ValueError`` (or ``TypeError``) if ``msg`` cannot be sent as one message.
        """
        return self._encoder.encode(msg)

    @property
    def transport_kind(self) -> str:
        """What carries the link, in a word for people (``tcp``, ``tls``, ``unix``...): a custom link's class."""
        return type(self).__name__

    def buffered(self) -> int:
        """Bytes accepted for the peer and not yet written to it; 0 where the link cannot tell."""
        return 0

    # What the service does to a link, in the reactor thread. ``Connection`` does it on its transport; these
    # defaults do it through the public methods, so that a subclass for another transport needs nothing more.

    #: What splits the peer's bytes into messages, once the link is attached (``drop_remainder`` uses it).
    decoder: Decoder | LengthDecoder | None = None
    #: Why the service ended the link, when it ended it for a reason (else the transport's end says).
    end_reason: LinkEnd | None = None
    #: The service that owns the link and its observers, once attached (``Service.attach``).
    _owner: LinkHost | None = None
    #: True for a ``Connection``: a broadcast hands it the bytes framed once for all such links. A class
    #: attribute, so that a broadcast tells the kinds of link apart without an ``isinstance`` per delivery.
    takes_framed: bool = False
    #: Framing bytes around one message on this link (set when it is attached).
    frame_overhead: int = 0

    # The link's traffic, counted in the reactor thread while its service has observers (``Stats`` reads
    # them): messages and bytes (framing included) from the peer and delivered to it; controls not counted.
    messages_in: int = 0
    bytes_in: int = 0
    messages_out: int = 0
    bytes_out: int = 0

    def write_messages(self, messages: list[bytes]) -> None:
        owner, observers = self._owner, self._observers
        try:
            for msg in messages:
                if self.closed():
                    return
                self.send(msg)
                if observers.active and owner is not None:
                    observers.message_out(owner, self, 1, len(msg) + len(self.separator))
        except OSError:
            return

    def close_now(self) -> None:
        """Close the link, after what was written before (reactor thread); nothing happens once it is closing."""
        if self.move_to(CLOSING):
            self.close()

    def abort(self, reason: LinkEnd) -> None:
        """End the link now for ``reason`` (a rule broken, a peer too slow), writing nothing more to it."""
        self.end_reason = reason
        self.close_now()

    def mark_lost(self) -> None:
        """The link has ended, whichever side ended it (reactor thread)."""
        self.move_to(LOST)

    def heard_from_peer(self) -> None:
        """Bytes came from the peer while this side is closing (a Twisted link counts it as progress)."""

    def send_from_thread(self, msg: bytes) -> bool:
        """Only a ``Connection`` writes from a sending thread; other links always queue."""
        return False


class SlowPeer(OSError):
    """A peer stopped reading while messages for it piled up past ``max_buffered`` bytes."""


class CloseCut(OSError):
    """A closing link was cut: its peer took nothing for ``close_timeout`` seconds. ``unsent`` says how many
    bytes (and, where they can be counted, messages) it still held for the peer."""

    def __init__(self, message: str, unsent_bytes: int, unsent_messages: int | None) -> None:
        super().__init__(message)
        self.unsent_bytes: int = unsent_bytes
        self.unsent_messages: int | None = unsent_messages


class Connection(ConnectionBase):
    """A link carried by a Twisted transport; ``str()`` gives ``"host:port"`` of the peer.

    Closing is graceful: ``disconnect`` is sent after everything before it, the write side is shut, and the
    peer's last messages are still delivered until it closes too. Everything written before the close is
    delivered while the peer keeps reading, however slowly; the link is cut only once the peer has taken no
    bytes (and sent none) for ``close_timeout`` seconds, and that is reported to ``on_fail`` (``CloseCut``).
    """

    takes_framed = True

    def __init__(self, service: LinkHost, transport: ITransport) -> None:
        policy = service.policy
        super().__init__(policy.separator, policy.encoder)  # the service's encoder, shared by its links
        self._frame = policy.encoder.frame
        self._max_buffered: int = service.link_buffer_bound()
        self._drop_when_slow: bool = policy.slow_policy == "drop"
        self._service: LinkHost = service
        self._owner = service
        self._observers = service.observers
        self._in_reactor_thread = service.in_reactor_thread
        #: The reactor thread's id (links are made there): a send compares it with ``get_ident()``, cheaper than
        #: calling ``_in_reactor_thread`` on every message.
        self._reactor_thread: int | None = get_ident() if self._in_reactor_thread() else service.reactor_thread
        #: Hands a send from another thread to the reactor thread (the hub's ``Handoff``), bound once.
        self._hand_over = service.handoff.put
        self._transport: Any = transport
        #: Every write of this link goes through it; it alone writes the socket from sending threads.
        self._writer = DirectWriter(transport, service.call_from_thread, policy.direct_writes)
        self._batch = service.write_batch
        #: What this link wrote during the batch under way, written out when the batch ends.
        self._batch_writes: list[bytes] | None = None
        #: What the batch's writes do not tell by their number and length, for the count of deliveries made
        #: when it ends: messages beyond one per write, and bytes of controls (rare).
        self._batch_uneven: tuple[int, int] | None = None
        self._timers: list[LoopingCall] = []
        self._drain: DrainWatch | None = None
        self._close_timeout: float = policy.close_timeout
        #: Bytes written while the transport's buffer is over its limit (the peer is not reading); None while
        #: it is under.
        self._bytes_past_limit: int | None = None
        #: Told of what is held for this peer while it is not reading (the server's ``max_memory``).
        self._budget = service.memory_budget
        self.dropped_messages: int = 0
        peer = transport.getPeer() if hasattr(transport, "getPeer") else None
        host, port = getattr(peer, "host", None), getattr(peer, "port", None)
        self._address: tuple[str, int] | None = (host, port) if host is not None and port is not None else None
        self._description: str = f"{host}:{port}" if self._address is not None else _describe_peer(peer, transport)
        self._kind: str = _transport_kind(peer, transport)
        if policy.heartbeat is not None:
            beat = LoopingCall(self.write_framed, self._frame(HEARTBEAT), 0)
            beat.clock = service.reactor
            beat.start(policy.heartbeat, now=False)
            self._timers.append(beat)

    def __str__(self) -> str:
        return self._description

    def __repr__(self) -> str:
        return f"<Connection {self._description}{' closed' if self.closed() else ''}>"

    @property
    def transport(self) -> ITransport:
        """The Twisted transport that carries the link."""
        transport: ITransport = self._transport
        return transport

    @property
    def address(self) -> tuple[str, int] | None:
        """``(host, port)`` of the peer, or ``None`` for a link that has no such address (a unix socket)."""
        return self._address

    @property
    def service(self) -> LinkHost:
        """The server or client this link belongs to."""
        return self._service

    @property
    def transport_kind(self) -> str:
        return self._kind

    def buffered(self) -> int:
        """Bytes Twisted holds for the peer, plus those written past the buffer limit; reactor thread (or a
        moment's view from another)."""
        return transport_buffered(self._transport) + (self._bytes_past_limit or 0)

    @property
    def direct(self) -> bool:
        """Whether this link's socket is written directly, by the reactor and by sending threads (see
        ``DirectWriter``); else every byte goes through ``transport.write``."""
        return self._writer.direct

    def closed(self) -> bool:
        return self.state is not OPEN

    def send(self, msg: bytes) -> None:
        encoder = self._encoder
        encoder.check(msg)
        if self.state is not OPEN:
            raise OSError(f"the connection to {self._description} is closed")
        # Bound methods kept as attributes (``_frame``, ``_hand_over``) are read first and then called: on 3.11,
        # ``self._hand_over(...)`` would look the name up as a method and never be specialised.
        if get_ident() == self._reactor_thread:
            self.write_framed(encoder.frame(msg), 1)
        else:
            hand_over = self._hand_over
            hand_over(self, msg, self)

    def close(self) -> None:
        if self.closed():
            return
        if self._in_reactor_thread():
            self.close_now()
            return
        self.ask_close(partial(self._service.close_later, self))

    def send_from_thread(self, msg: bytes) -> bool:
        """Write ``msg`` from the sending thread, if nothing written before it is still waiting; else False.

        The outbox calls it under its lock, with nothing queued and the queue quiet. It spares the reactor's
        wake-up, which is most of a message's latency when messages are not sent in bursts; the writer
        (``DirectWriter.write_from_thread``) leaves what the socket does not take to the reactor thread.
        """
        writer = self._writer
        if not writer.threads_may_write or self._observers.active:
            return False  # not a plain socket, or observers must hear of it: queue
        with writer.lock:
            if self.state is not OPEN or self._bytes_past_limit is not None or self._batch_writes is not None:
                return False
            return writer.write_from_thread(msg, self._frame)

    # The reactor-thread side, used by the service and the outbox.

    def write_messages(self, messages: list[bytes]) -> None:
        self.write_framed(self._encoder.encode_all(messages), len(messages))

    def write_framed(self, data: bytes, count: int) -> None:
        """Write ``count`` framed messages (0 for a control), unless the link is closing or the peer is too slow
        for them."""
        state = self.state
        if state is not OPEN and state is not CLOSE_ASKED:
            return
        if self._bytes_past_limit is not None:
            self._bytes_past_limit += len(data)
            if self._bytes_past_limit > self._max_buffered:
                self._too_slow(count)
                return
            if self._budget is not None:
                self._budget.add(self, len(data))
        if not self._batch.open:
            if count and self._observers.active:
                self._observers.message_out(self._service, self, count, len(data))
            self._writer.write(data, at_once=False)
            return
        if count != 1 and self._observers.active:
            # A batch's deliveries to this link are counted when it ends (``write_batched``), one per write by
            # default: this write is not one message.
            more, control = self._batch_uneven or (0, 0)
            self._batch_uneven = (more + count - 1, control + (0 if count else len(data)))
        if self._batch_writes is None:
            self._batch_writes = [data]
            self._batch.join(self)
        else:
            self._batch_writes.append(data)

    def write_batched(self) -> None:
        """The batch has ended: write what it held for this link, straight to the socket if it can be."""
        writer = self._writer
        # Under the lock from taking the batch's writes to writing them: a sending thread that finds none held
        # must also find them written.
        with writer.lock:
            writes, self._batch_writes = self._batch_writes, None
            if not writes:
                return
            data = writes[0] if len(writes) == 1 else b"".join(writes)
            state = self.state
            if state is OPEN or state is CLOSE_ASKED:
                writer.write_locked(data, at_once=True)
        if self._observers.active:
            self._count_batch(len(writes), len(data))

    def _count_batch(self, count: int, size: int) -> None:
        """Count the deliveries of a batch's writes (``count`` writes, ``size`` bytes in all), and tell the
        observers that want them."""
        uneven = self._batch_uneven
        if uneven is not None:
            self._batch_uneven = None
            count += uneven[0]
            size -= uneven[1]
        if not count:
            return
        observers = self._observers
        if observers.sending:
            observers.message_out(self._service, self, count, size)  # counts them too
        else:
            self.messages_out += count
            self.bytes_out += size

    def peer_fell_behind(self) -> None:
        """The transport's buffer went over its limit: count what is written from now on against
        ``max_buffered``. Twisted says so again on every write while the buffer stays full: the count goes on."""
        if self._bytes_past_limit is None:
            self._bytes_past_limit = 0

    def peer_caught_up(self) -> None:
        """The transport's buffer drained under its limit: the peer reads again."""
        self._bytes_past_limit = None
        if self._budget is not None:
            self._budget.release(self)

    def _too_slow(self, count: int) -> None:
        if self._drop_when_slow:
            if not self.dropped_messages:
                error = SlowPeer(f"{self} is not reading; dropping messages for it")
                self._service.report(about_peer(error, self._description, logged=False))
            self.dropped_messages += count
            if count and self._observers.active:
                self._observers.dropped(self._service, self, count)
            return
        error = SlowPeer(f"{self} stopped reading with over {self._max_buffered} bytes waiting; disconnecting it")
        self._service.report(about_peer(error, self._description, logged=False))
        self.abort(LinkEnd.SLOW)

    def abort(self, reason: LinkEnd) -> None:
        """Cut the transport now for ``reason``: what is not written yet is dropped."""
        self.end_reason = reason
        self.move_to(CLOSING)
        self._batch_writes = None
        self._batch_uneven = None
        self._transport.abortConnection()

    def drop_for_memory(self, held: int, total: int, limit: int) -> None:
        """The server's memory budget is over and this peer, not reading, is among those holding the most."""
        error = MemoryBudgetExceeded(
            f"{self} stopped reading with {held} bytes waiting while all peers held {total}, over max_memory "
            f"({limit}); disconnecting it"
        )
        _log.warn("{error}", error=str(error))
        self._service.report(about_peer(error, self._description, logged=True))
        self.abort(LinkEnd.SLOW)

    def close_now(self) -> None:
        """Send ``disconnect`` after everything before it, shut our side, and let the peer finish; cut the link
        only once the peer has taken nothing for ``close_timeout`` seconds."""
        if not self.state.writing():
            return
        goodbye = self._frame(DISCONNECT)
        writer = self._writer
        with writer.lock:
            writes, self._batch_writes = self._batch_writes, None
            self.move_to(CLOSING)
            writer.write_locked(b"".join([*writes, goodbye]) if writes else goodbye, at_once=True)
        if writes and self._observers.active:
            self._count_batch(len(writes), sum(map(len, writes)))
        self._service.link_closing(self)
        transport = self._transport
        if getattr(transport, "producer", None) is not None:
            transport.unregisterProducer()
        if hasattr(transport, "loseWriteConnection"):
            transport.loseWriteConnection()
        else:
            transport.loseConnection()
        self._drain = DrainWatch(self._service.reactor, self._close_timeout, lambda: pending_bytes(transport), self.cut)

    def heard_from_peer(self) -> None:
        if self._drain is not None:
            self._drain.progress()

    def cut(self) -> None:
        """End a closing link now (its peer took nothing for ``close_timeout`` seconds, or its service's close
        ran out of time), and say what the peer did not get."""
        self._drain = None
        separator = self.separator if self._service.policy.framing == "separator" else None
        left = unsent(self._transport, separator)
        if left.bytes:
            text = (
                f"{self} took nothing for {self._close_timeout:g} s while closing; cutting it with "
                f"{left.describe()} not delivered"
            )
        else:
            text = (
                f"{self} did not close within {self._close_timeout:g} s of taking everything sent to it "
                f"(disconnect included); cutting it"
            )
        _log.warn("{text}", text=text)
        self.end_reason = LinkEnd.CUT
        self._transport.abortConnection()
        self._service.report(about_peer(CloseCut(text, left.bytes, left.messages), self._description, logged=True))

    def mark_lost(self) -> None:
        self.move_to(LOST)
        self._batch_writes = None
        self._batch_uneven = None
        if self._budget is not None:
            self._budget.release(self)
        self._writer.stop()
        if self._drain is not None:
            self._drain.stop()
            self._drain = None
        for timer in self._timers:
            if timer.running:
                timer.stop()
        self._timers.clear()
