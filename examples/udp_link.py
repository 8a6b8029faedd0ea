"""A custom transport: LEADS messages over UDP datagrams, with the same Server, Client and callbacks.

Each peer address is one connection, and a datagram carries framed messages. UDP may lose or reorder
datagrams on a real network; this is a worked example of the ``ConnectionBase`` contract, meant for loopback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import DatagramProtocol
from twisted.python.threadable import isInIOThread

from leads_twisted.comm import DISCONNECT, ConnectionBase, Hub

Address = tuple[str, int]


class DatagramConnection(ConnectionBase):
    """One peer reached by datagrams; ``send`` and ``close`` work from any thread."""

    def __init__(self, port: DatagramPort, peer: Address) -> None:
        super().__init__(port.service.separator)
        self.port, self.peer = port, peer
        self._closed = False

    def __str__(self) -> str:
        return f"udp:{self.peer[0]}:{self.peer[1]}"

    def closed(self) -> bool:
        return self._closed

    def send(self, msg: bytes) -> None:
        data = self.frame(msg)  # ValueError if msg holds the separator
        if self._closed:
            raise OSError(f"{self} is closed")
        self.port.in_reactor(self.port.transport.write, data, self.peer)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.port.in_reactor(self.port.end, self)


class DatagramPort(DatagramProtocol):
    """The UDP port of a service: it makes a connection per peer and reports each to the service."""

    def __init__(self, service: Hub, reactor: Any, only_peer: Address | None = None) -> None:
        self.service, self.reactor, self.only_peer = service, reactor, only_peer
        self.links: dict[Address, DatagramConnection] = {}

    def in_reactor(self, function: Callable[..., object], *args: Any) -> None:
        """Run ``function`` in the reactor thread: now if this is it, else as soon as the reactor can."""
        if isInIOThread():
            function(*args)
        else:
            self.reactor.callFromThread(function, *args)

    def open(self, peer: Address) -> DatagramConnection:
        connection = self.links[peer] = DatagramConnection(self, peer)
        self.service.attach(connection)
        return connection

    def datagramReceived(self, data: bytes, peer: Address) -> None:
        connection = self.links.get(peer)
        if connection is None:
            if self.only_peer is not None or data == DISCONNECT + self.service.separator:
                return  # a stranger, or the goodbye of a peer already forgotten
            connection = self.open(peer)
        self.service.feed(connection, data)

    def end(self, connection: DatagramConnection) -> None:
        """Say goodbye and forget the peer; a client's port closes with its one link."""
        self.transport.write(connection.frame(DISCONNECT), connection.peer)
        del self.links[connection.peer]
        self.service.detach(connection)
        if self.only_peer is not None:
            self.transport.stopListening()


class UDPServerEndpoint:
    """``create_server(endpoint=UDPServerEndpoint(reactor, 9000))``: serve datagram peers on a UDP port."""

    def __init__(self, reactor: Any, port: int, interface: str = "127.0.0.1") -> None:
        self.reactor, self.port, self.interface = reactor, port, interface

    def listen(self, factory: Any) -> Deferred[Any]:
        datagrams = DatagramPort(factory.service, self.reactor)
        return succeed(self.reactor.listenUDP(self.port, datagrams, self.interface))


class UDPClientEndpoint:
    """``create_client(endpoint=UDPClientEndpoint(reactor, "127.0.0.1", 9000))``: talk to one UDP server."""

    def __init__(self, reactor: Any, host: str, port: int) -> None:
        self.reactor, self.server = reactor, (host, port)

    def connect(self, factory: Any) -> Deferred[Any]:
        datagrams = DatagramPort(factory.service, self.reactor, only_peer=self.server)
        self.reactor.listenUDP(0, datagrams, self.server[0])
        return succeed(datagrams.open(self.server))
