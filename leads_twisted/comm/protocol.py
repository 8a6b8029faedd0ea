"""The Twisted protocol and factories: bytes in, messages and link events out, to the owning service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import ClientFactory, Factory, Protocol, connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from leads_twisted.comm.framing import Decoder, MessageTooLong

if TYPE_CHECKING:
    from leads_twisted.comm.connection import Connection
    from leads_twisted.comm.service import Service


@implementer(IPushProducer)
class LeadsProtocol(Protocol):
    """Frames one link and hands its messages and events to the service; it holds no policy of its own.

    It registers itself as the transport's producer so the service hears when the peer falls behind.
    """

    def __init__(self, service: Service) -> None:
        self.service: Service = service
        self.decoder: Decoder = Decoder(service.separator, service.max_message)
        self.connection: Connection | None = None

    def connectionMade(self) -> None:
        transport: Any = self.transport
        if hasattr(transport, "setTcpKeepAlive"):
            transport.setTcpKeepAlive(1)
        transport.registerProducer(self, True)
        self.connection = self.service._connection_made(self)

    def dataReceived(self, data: bytes) -> None:
        try:
            messages = self.decoder.feed(data)
        except MessageTooLong as error:
            self.service._connection_broke_rules(self.connection, error)
            return
        if messages:
            self.service._deliver(self.connection, messages)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.connection is not None:
            self.service._connection_lost(self.connection, reason)

    # IPushProducer: the transport says when its buffer is over or back under its limit.

    def pauseProducing(self) -> None:
        if self.connection is not None:
            self.service._peer_is_slow(self.connection, True)

    def resumeProducing(self) -> None:
        if self.connection is not None:
            self.service._peer_is_slow(self.connection, False)

    def stopProducing(self) -> None:
        """The transport is going away; ``connectionLost`` reports it."""


class LeadsServerFactory(Factory):
    """Builds one ``LeadsProtocol`` per accepted link of a server."""

    noisy = False

    def __init__(self, service: Service) -> None:
        self.service: Service = service

    def buildProtocol(self, addr: Any) -> LeadsProtocol:
        return LeadsProtocol(self.service)


class LeadsClientFactory(ClientFactory):
    """Builds the ``LeadsProtocol`` of a client's link."""

    noisy = False

    def __init__(self, service: Service) -> None:
        self.service: Service = service

    def buildProtocol(self, addr: Any) -> LeadsProtocol:
        return LeadsProtocol(self.service)
