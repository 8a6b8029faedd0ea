"""The Twisted protocol and factories: bytes in, messages and link events out, to the owning service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IHandshakeListener, IPushProducer, ISSLTransport
from twisted.internet.protocol import ClientFactory, Factory, Protocol, connectionDone
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import implementer

from leads_twisted.comm.framing import DISCONNECT

if TYPE_CHECKING:
    from leads_twisted.comm.connection import Connection
    from leads_twisted.comm.service import Service


@implementer(IPushProducer, IHandshakeListener)
class LeadsProtocol(Protocol, TimeoutMixin):
    """Frames one link and hands its messages and events to the service; it holds no policy of its own.

    The link is up, and reported to the service, once the transport is connected and, over TLS, once the
    handshake has verified the peer. The protocol registers itself as the transport's producer so the
    service hears when the peer falls behind, and times the link out after ``idle_timeout`` seconds without
    a byte from the peer, if that is set (over TLS, also a handshake that takes longer than that or 10 s).
    """

    #: Seconds a TLS handshake may take when no idle timeout is set.
    handshake_timeout: float = 10.0

    def __init__(self, service: Service) -> None:
        self.service: Service = service
        self.decoder = service._policy.decoder()
        self.connection: Connection | None = None
        self.callLater = service._reactor.callLater
        self._idle_timeout: float | None = service._policy.idle_timeout

    def connectionMade(self) -> None:
        transport: Any = self.transport
        over_tls = ISSLTransport.providedBy(transport)
        socket_transport = getattr(transport, "transport", transport) if over_tls else transport
        if hasattr(socket_transport, "setTcpKeepAlive"):
            # Keepalive finds dead peers; no Nagle delay, since writes are already batched per reactor turn.
            socket_transport.setTcpKeepAlive(1)
            socket_transport.setTcpNoDelay(1)
        transport.registerProducer(self, True)
        if over_tls:
            self.service._link_opening(self)
            self.setTimeout(self._idle_timeout or self.handshake_timeout)
            return
        self._link_up()

    def handshakeCompleted(self) -> None:
        self._link_up()

    def _link_up(self) -> None:
        self.setTimeout(self._idle_timeout)
        self.connection = self.service._connection_made(self)

    def dataReceived(self, data: bytes) -> None:
        if self._idle_timeout is not None:
            self.resetTimeout()
        self.service._receive(self.connection, self.decoder, data)

    def timeoutConnection(self) -> None:
        if self.connection is not None:
            self.service._connection_idle(self.connection, self._idle_timeout or 0.0)
        else:
            self.transport.abortConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.setTimeout(None)
        if self.connection is not None:
            self.service._connection_lost(self.connection, reason)
        else:
            self.service._link_failed(self, reason)

    # IPushProducer: the transport says when its buffer is over or back under its limit.

    def pauseProducing(self) -> None:
        if self.connection is not None:
            self.service._peer_is_slow(self.connection, True)

    def resumeProducing(self) -> None:
        if self.connection is not None:
            self.service._peer_is_slow(self.connection, False)

    def stopProducing(self) -> None:
        """The transport is going away; ``connectionLost`` reports it."""


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

    def __init__(self, service: Service) -> None:
        self.service: Service = service

    def buildProtocol(self, addr: Any) -> Protocol:
        """A protocol for the new link, or, if the server is full or closing, one that says ``disconnect``
        and closes: a LEADS 0.9.x peer needs the word, as it takes a bare close for more data to come."""
        if not self.service._admits(addr):
            return RefusingProtocol(self.service._encoder.frame(DISCONNECT))
        return LeadsProtocol(self.service)


class LeadsClientFactory(ClientFactory):
    """Builds the ``LeadsProtocol`` of a client's link."""

    noisy = False

    def __init__(self, service: Service) -> None:
        self.service: Service = service

    def buildProtocol(self, addr: Any) -> LeadsProtocol:
        return LeadsProtocol(self.service)
