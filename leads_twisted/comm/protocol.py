"""The Twisted protocol and factories: bytes in, messages and link events out, to the owning service."""

from __future__ import annotations

from typing import Any
from typing import Protocol as Interface

from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IHalfCloseableProtocol,
    IHandshakeListener,
    IPushProducer,
    IReactorTime,
    ISSLTransport,
    ITransport,
)
from twisted.internet.protocol import ClientFactory, Factory, Protocol, connectionDone
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import alsoProvides, implementer

from leads_twisted.comm.connection import Connection
from leads_twisted.comm.framing import DISCONNECT, Decoder
from leads_twisted.comm.length_framing import LengthDecoder
from leads_twisted.comm.link_policy import LinkPolicy
from leads_twisted.comm.memory_budget import MemoryBudget, MemoryBudgetExceeded
from leads_twisted.comm.rate_limit import ReadRateLimit


class ProtocolHost(Interface):
    """What a ``LeadsProtocol`` needs from the hub that owns its link: the hub's side of the seam."""

    @property
    def policy(self) -> LinkPolicy:
        """What the link obeys (framing, timeouts, ``max_rate``)."""

    @property
    def reactor(self) -> IReactorTime:
        """The clock for timeouts and the rate limit."""

    #: Told what each link holds of an unfinished incoming message; None: no bound.
    memory_budget: MemoryBudget | None

    def link_opening(self, protocol: LeadsProtocol) -> None:
        """The transport connected; the link waits for its TLS handshake."""

    def waits_for_acceptance(self) -> bool:
        """Whether a TLS 1.3 link waits for the server's first record before it is up (a client)."""

    def link_made(self, protocol: LeadsProtocol) -> Connection:
        """The link is up: return its ``Connection``."""

    def link_failed(self, protocol: LeadsProtocol, reason: Failure) -> None:
        """The transport ended before the link was up."""

    def link_received(self, connection: Connection, decoder: Decoder | LengthDecoder, data: bytes) -> int:
        """Bytes from the peer: return how many messages they completed."""

    def link_broke_rules(self, connection: Connection, error: Exception) -> None:
        """Drop the link for breaking a rule (here: the memory budget)."""

    def peer_done_sending(self, connection: Connection) -> None:
        """The peer shut its side."""

    def link_idle(self, connection: Connection, seconds: float) -> None:
        """Nothing came from the peer for ``seconds``."""

    def link_lost(self, connection: Connection, reason: Failure) -> None:
        """The link has ended."""

    def link_fell_behind(self, connection: Connection) -> None:
        """The transport's buffer for the peer is over its limit."""

    def link_caught_up(self, connection: Connection) -> None:
        """The transport's buffer for the peer is back under its limit."""


class AdmissionHost(ProtocolHost, Interface):
    """What a server's factory needs besides: whether a new peer may join."""

    def admission(self, address: IAddress | None) -> str | None:
        """Why a peer at ``address`` may not join (``"allow"``, ``"closing"``, ``"max_connections"``), or None."""


@implementer(IPushProducer, IHandshakeListener, IHalfCloseableProtocol)
class LeadsProtocol(Protocol, TimeoutMixin):
    """Frames one link and hands its messages and events to the service; it holds no policy of its own.

    The link is up, and reported to the service, once the transport is connected and, over TLS, once the
    handshake has verified the peer. The protocol registers itself as the transport's producer so the
    service hears when the peer falls behind, and times the link out after ``idle_timeout`` seconds without
    a byte from the peer, if that is set. Over TLS the handshake must end within ``handshake_timeout``.

    When the peer shuts its side (after its ``disconnect``), what this side still has to write is written
    first: the link ends once both sides are shut, not at the peer's end of data.

    Per chunk of bytes it tells the server's memory budget what it holds of an unfinished message, and, with
    ``max_rate``, pauses reading from a peer that sends more messages per second than that.
    """

    def __init__(self, service: ProtocolHost) -> None:
        self.service: ProtocolHost = service
        policy = service.policy
        self.decoder = policy.decoder()
        self.connection: Connection | None = None
        reactor = service.reactor
        # TimeoutMixin's clock, given the way Twisted documents: an attribute in place of its method.
        self.callLater = reactor.callLater  # type: ignore[method-assign, assignment]  # TimeoutMixin leaves it untyped
        self._idle_timeout: float | None = policy.idle_timeout
        self._handshake_timeout: float = policy.handshake_timeout
        #: When the transport connected (reactor seconds): the oldest unfinished handshake is dropped first.
        self.opened_at: float = 0.0
        #: The server's memory budget, told of this link's unfinished incoming message once per chunk.
        self._budget: MemoryBudget | None = service.memory_budget
        self._partial_in: int = 0
        #: Why the link ended before it was up, when this side ended it.
        self.failure_note: str | None = None
        self._rate: ReadRateLimit | None = None
        if policy.max_rate is not None:
            self._rate = ReadRateLimit(policy.max_rate, reactor, self._pause_reading, self._resume_reading)
        self._read_shut = False
        self._write_shut = False
        #: While a TLS 1.3 client waits to hear that the server accepted it (``_await_acceptance``).
        self._acceptance: IDelayedCall | None = None

    def connectionMade(self) -> None:
        transport: Any = self.transport
        over_tls = ISSLTransport.providedBy(transport)
        socket_transport = getattr(transport, "transport", transport) if over_tls else transport
        if hasattr(socket_transport, "setTcpKeepAlive"):
            # Keepalive finds dead peers; no Nagle delay, since writes are already batched per reactor turn.
            socket_transport.setTcpKeepAlive(1)
            socket_transport.setTcpNoDelay(1)
        transport.registerProducer(self, True)
        _pass_half_closes_through(transport, self)
        if over_tls:
            self.opened_at = self.service.reactor.seconds()
            self.service.link_opening(self)
            self.setTimeout(self._handshake_timeout)
            return
        self._link_up()

    #: Seconds a TLS 1.3 client waits, after its handshake, for the server's first record before it takes the
    #: link as accepted: what a server that sends nothing after the handshake costs at connect.
    acceptance_wait: float = 1.0

    def handshakeCompleted(self) -> None:
        if self.service.waits_for_acceptance() and _tls13(self.transport):
            self._await_acceptance()
            return
        self._link_up()

    def _await_acceptance(self) -> None:
        """TLS 1.3: the client's handshake ends before the server has checked the client's certificate. The
        server then sends either its session tickets (accepted) or an alert (refused): the link is up only
        once its first record has come and was not an alert. A server that sends nothing is taken as
        accepting after ``acceptance_wait`` seconds. No OpenSSL callback is needed: the TLS layer's own
        ``dataReceived`` is wrapped for that one record."""
        tls: Any = self.transport
        deliver = tls.dataReceived

        def first_record(data: bytes) -> None:
            tls.dataReceived = deliver
            deliver(data)
            self._accepted()

        tls.dataReceived = first_record
        self._acceptance = self.callLater(self.acceptance_wait, self._accepted)

    def _accepted(self) -> None:
        """The server's first record came (or none came in time): link up, unless it was a refusal."""
        timer, self._acceptance = self._acceptance, None
        if timer is not None and timer.active():
            timer.cancel()
        if self.connection is not None or self._refused_by_server():
            return  # up already (application data came with the record), or refused: connectionLost follows
        self._link_up()

    def _refused_by_server(self) -> bool:
        from OpenSSL import SSL

        handle = self.transport.getHandle()  # type: ignore[union-attr]
        return bool(handle.get_shutdown() & SSL.RECEIVED_SHUTDOWN) or bool(
            getattr(self.transport, "disconnecting", False)
        )

    def _link_up(self) -> None:
        self.setTimeout(self._idle_timeout)
        self.connection = self.service.link_made(self)

    def dataReceived(self, data: bytes) -> None:
        if self.connection is None and self._acceptance is not None:
            self._accepted()  # application data from the server: it accepted this client
        if self._idle_timeout is not None:
            self.resetTimeout()
        connection = self.connection
        if connection is None:
            return  # a TLS 1.3 client refused by its server: the link is ending and was never up
        count = self.service.link_received(connection, self.decoder, data)
        budget = self._budget
        if budget is not None:
            held = self.decoder.buffered
            if held != self._partial_in:
                self._partial_in = held
                budget.set(self, held)
        if self._rate is not None and count:
            self._rate.spend(count)

    def drop_for_memory(self, held: int, total: int, limit: int) -> None:
        """The budget is over: this link's unfinished message is among the biggest; drop the link."""
        error = MemoryBudgetExceeded(
            f"{self.connection} held {held} bytes of an unfinished message while all peers held {total}, "
            f"over max_memory ({limit}); dropping it"
        )
        self._partial_in = 0
        if self.connection is not None:
            self.service.link_broke_rules(self.connection, error)
        else:
            self.transport.abortConnection()  # type: ignore[union-attr]

    def _pause_reading(self) -> None:
        self.transport.pauseProducing()  # type: ignore[union-attr]

    def _resume_reading(self) -> None:
        # Also on a closing link: the peer's last messages and its close must still be read.
        self.transport.resumeProducing()  # type: ignore[union-attr]

    # IHalfCloseableProtocol: each side of a plain TCP or unix link is shut on its own.

    def readConnectionLost(self) -> None:
        """The peer will send nothing more: close our side gracefully, then end the link once it is shut."""
        self._read_shut = True
        if self.connection is not None:
            self.service.peer_done_sending(self.connection)
        if self._write_shut or self.connection is None:
            self.transport.loseConnection()  # type: ignore[union-attr]

    def writeConnectionLost(self) -> None:
        """Everything of ours has been written and our side shut."""
        self._write_shut = True
        if self._read_shut:
            self.transport.loseConnection()  # type: ignore[union-attr]

    def timeoutConnection(self) -> None:
        if self.connection is not None:
            self.service.link_idle(self.connection, self._idle_timeout or 0.0)
        else:
            self.failure_note = f"no finished handshake within {self._handshake_timeout} s (handshake_timeout)"
            self.transport.abortConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.setTimeout(None)
        if self._acceptance is not None and self._acceptance.active():
            self._acceptance.cancel()
        self._acceptance = None
        if self._budget is not None:
            self._budget.release(self)
        if self._rate is not None:
            self._rate.stop()
        if self.connection is not None:
            self.service.link_lost(self.connection, reason)
        else:
            self.service.link_failed(self, reason)

    # IPushProducer: the transport says when its buffer is over or back under its limit.

    def pauseProducing(self) -> None:
        if self.connection is not None:
            self.service.link_fell_behind(self.connection)

    def resumeProducing(self) -> None:
        if self.connection is not None:
            self.service.link_caught_up(self.connection)

    def stopProducing(self) -> None:
        """The transport is going away; ``connectionLost`` reports it."""


def _tls13(transport: ITransport | None) -> bool:
    """Whether a TLS transport's connection negotiated TLS 1.3."""
    handle = getattr(transport, "getHandle", None)
    connection = handle() if handle is not None else None
    version = getattr(connection, "get_protocol_version_name", None)
    return version is not None and version() == "TLSv1.3"


def _pass_half_closes_through(transport: ITransport, protocol: LeadsProtocol) -> None:
    """Make sure the transport tells ``protocol`` of half-closes, also through an endpoint's wrapper.

    Twisted's client endpoints put a wrapper between the transport and our protocol that forwards
    ``readConnectionLost``, but it declares only the last of the optional interfaces it copies (each
    ``directlyProvides`` replaces the one before), so the transport thinks the link cannot be half-closed and
    ends it, unsent bytes and all, at the peer's end of data. Declaring it again on the wrapper fixes that.
    """
    wrapper = getattr(transport, "protocol", None)
    if (
        wrapper is not None
        and wrapper is not protocol
        and getattr(wrapper, "_wrappedProtocol", None) is protocol
        and not IHalfCloseableProtocol.providedBy(wrapper)
    ):
        alsoProvides(wrapper, IHalfCloseableProtocol)


class RefusingProtocol(Protocol):
    """Tells a refused peer ``disconnect`` and closes the link."""

    def __init__(self, goodbye: bytes) -> None:
        self._goodbye = goodbye

    def connectionMade(self) -> None:
        self.transport.write(self._goodbye)  # type: ignore[union-attr]
        self.transport.loseConnection()  # type: ignore[union-attr]


class LeadsServerFactory(Factory):
    """Builds one ``LeadsProtocol`` per accepted link of a server."""

    noisy = False

    def __init__(self, service: AdmissionHost) -> None:
        self.service: AdmissionHost = service

    def buildProtocol(self, addr: IAddress | None) -> Protocol | None:
        """A protocol for the new link; none for a peer outside ``allow`` (the socket is closed at once); or,
        if the server is full or closing, one that says ``disconnect`` and closes: a LEADS 0.9.x peer needs the
        word, as it takes a bare close for more data to come."""
        refusal = self.service.admission(addr)
        if refusal is None:
            return LeadsProtocol(self.service)
        if refusal == "allow":
            return None
        return RefusingProtocol(self.service.policy.encoder.frame(DISCONNECT))


class LeadsClientFactory(ClientFactory):
    """Builds the ``LeadsProtocol`` of a client's link."""

    noisy = False

    def __init__(self, service: ProtocolHost) -> None:
        self.service: ProtocolHost = service

    def buildProtocol(self, addr: IAddress | None) -> LeadsProtocol:
        return LeadsProtocol(self.service)
