"""Helpers for the transport tests, which run inside pytest-twisted's reactor on loopback only.

Every wait is on a Deferred fired by an event, bounded by ``TIMEOUT``; every service a test starts is closed
by the ``services`` fixture when the test ends, whatever happened.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest_twisted
from twisted.internet import abstract, fdesc, reactor
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from leads_twisted.comm import DISCONNECT, Client, Server, create_client, create_server
from leads_twisted.comm.framing import Decoder, Encoder
from leads_twisted.testing import Recorder

#: Seconds any one wait may take.
TIMEOUT = 15.0

#: Messages sent each way in a round trip; long enough that TCP and the pty split them across reads.
COUNT = 1000
TO_SERVER = [b"c%04d:" % i + b"x" * 64 for i in range(COUNT)]
TO_CLIENT = [b"s%04d:" % i + b"y" * 64 for i in range(COUNT)]


def bounded(waiting: Deferred[Any], seconds: float = TIMEOUT) -> Deferred[Any]:
    """``waiting``, failed with ``TimeoutError`` if it has not fired within ``seconds``."""
    return waiting.addTimeout(seconds, reactor)


class Services:
    """Starts servers and clients in the test reactor and closes them all when the test is over."""

    def __init__(self) -> None:
        self.started: list[Server | Client] = []

    async def server(self, recorder: Recorder, **options: Any) -> Server:
        server = create_server(0, recorder, **options)
        self.started.append(server)
        await bounded(server.start_in_reactor())
        return server

    async def client(self, recorder: Recorder, address: str = "127.0.0.1", **options: Any) -> Client:
        client = create_client(options.pop("port", 16900), recorder, **options)
        self.started.append(client)
        await bounded(client.start_in_reactor(address))
        return client

    async def close_all(self) -> None:
        closing = [bounded(service.close_in_reactor()) for service in reversed(self.started)]
        await DeferredList(closing, consumeErrors=True)


@pytest_twisted.async_yield_fixture
async def services():
    started = Services()
    yield started
    await started.close_all()


async def round_trip(server: Server, server_seen: Recorder, client: Client, client_seen: Recorder) -> None:
    """Send ``COUNT`` messages each way over a started link, check them in order, close from the client and
    check that both sides saw that one link end."""
    await bounded(server_seen.when(lambda seen: len(seen.connections) == 1))
    await bounded(client_seen.when(lambda seen: len(seen.connections) == 1))
    [server_link] = server_seen.connections
    [client_link] = client_seen.connections
    for msg in TO_SERVER:
        client.send(msg)
    for msg in TO_CLIENT:
        server_link.send(msg)
    await bounded(server_seen.when(lambda seen: len(seen.received) >= COUNT))
    await bounded(client_seen.when(lambda seen: len(seen.received) >= COUNT))
    assert server_seen.received == TO_SERVER
    assert client_seen.received == TO_CLIENT
    assert set(map(id, server_seen.senders)) == {id(server_link)}

    await bounded(client.close_in_reactor())
    await bounded(server_seen.when(lambda seen: len(seen.disconnections) == 1))
    assert client_seen.kinds() == ["initialize", "connect"] + ["receive"] * COUNT + ["disconnect"]
    assert server_seen.kinds() == ["initialize", "connect"] + ["receive"] * COUNT + ["disconnect"]
    assert client_seen.disconnections == [client_link]
    assert server_seen.disconnections == [server_link]
    assert server.num_connections() == 0
    assert not client_seen.failures and not server_seen.failures


class FramedPeer(Protocol):
    """The other end of a serial line: frames with the LEADS separator, answers ``disconnect`` by closing."""

    def __init__(self) -> None:
        self.decoder = Decoder()
        self.encoder = Encoder()
        self.received: list[bytes] = []
        #: Fires with the exception that ended the link (reading a pty whose other side closed fails: EIO).
        self.lost: Deferred[BaseException] = Deferred()
        self._waiters: list[tuple[Callable[[], bool], Deferred[None]]] = []

    def send(self, msg: bytes) -> None:
        self.transport.write(self.encoder.encode(msg))

    def dataReceived(self, data: bytes) -> None:
        for msg in self.decoder.feed(data):
            self.received.append(msg)
            if msg == DISCONNECT:
                self.transport.loseConnection()
        for entry in list(self._waiters):
            if entry[0]():
                self._waiters.remove(entry)
                entry[1].callback(None)

    def connectionLost(self, reason: Failure) -> None:
        self.lost.callback(reason.value)

    def when_received(self, count: int) -> Deferred[None]:
        waiter: Deferred[None] = Deferred()
        if len(self.received) >= count:
            waiter.callback(None)
        else:
            self._waiters.append((lambda: len(self.received) >= count, waiter))
        return bounded(waiter)


class PtyMaster(abstract.FileDescriptor):
    """Runs a protocol over the master side of a pty, where the device under test is the slave side."""

    def __init__(self, fd: int, protocol: Protocol) -> None:
        super().__init__(reactor)
        self.connected = 1
        self._fd = fd
        fdesc.setNonBlocking(fd)
        self.protocol = protocol
        protocol.makeConnection(self)
        self.startReading()

    def fileno(self) -> int:
        return self._fd

    def writeSomeData(self, data: bytes) -> Any:
        return fdesc.writeToFD(self._fd, data)

    def doRead(self) -> Any:
        return fdesc.readFromFD(self._fd, self.protocol.dataReceived)

    def connectionLost(self, reason: Failure) -> None:
        super().connectionLost(reason)
        os.close(self._fd)
        self.protocol.connectionLost(reason)

    def end(self) -> None:
        """Close the master side now, if it is still open (a test's cleanup)."""
        if not self.disconnected:
            self.stopReading()
            self.stopWriting()
            self.connectionLost(Failure(ConnectionDone()))
