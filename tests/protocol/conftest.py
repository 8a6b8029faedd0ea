"""Helpers for tests that run inside pytest-twisted's reactor: recording callbacks, raw peers, cleanup.

Every wait is on an event (a Deferred fired by a callback or by data arriving) and has a timeout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList, DeferredQueue
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Factory, Protocol

from leads_twisted.comm import Callback, Client, Server

LOOPBACK = "127.0.0.1"
TIMEOUT = 10.0


class Waitable:
    """Something that changes on events; ``when(predicate)`` fires once the predicate holds."""

    def __init__(self) -> None:
        self._waiters: list[tuple[Callable[[], bool], Deferred[None]]] = []

    def _changed(self) -> None:
        for entry in list(self._waiters):
            predicate, waiter = entry
            if predicate():
                self._waiters.remove(entry)
                waiter.callback(None)

    def when(self, predicate: Callable[[], bool], what: str = "", timeout: float = TIMEOUT) -> Deferred[None]:
        waiter: Deferred[None] = Deferred()
        if predicate():
            waiter.callback(None)
            return waiter
        entry = (predicate, waiter)
        self._waiters.append(entry)

        def timed_out(result: Any, _timeout: float) -> Any:
            if entry in self._waiters:
                self._waiters.remove(entry)
            raise TimeoutError(f"waited {timeout}s for {what or predicate}; state: {self.describe()}")

        waiter.addTimeout(timeout, reactor, onTimeoutCancel=timed_out)
        return waiter

    def describe(self) -> str:
        return repr(self)


class Recorder(Callback, Waitable):
    """A callback that records every call as ``(kind, detail)`` in order."""

    def __init__(self) -> None:
        Callback.__init__(self)
        Waitable.__init__(self)
        self.events: list[tuple[str, Any]] = []
        self.services: list[Any] = []
        #: ``service.sender()`` at each ``on_receive``, in order.
        self.senders_seen: list[Any] = []

    def add(self, kind: str, detail: Any = None) -> None:
        self.events.append((kind, detail))
        self._changed()

    def on_initialize(self, service):
        self.services.append(service)
        self.add("initialize")

    def on_connect(self, service, connection):
        self.add("connect", connection)

    def on_receive(self, service, msg):
        self.senders_seen.append(service.sender())
        self.add("receive", msg)

    def on_fail(self, service, error):
        self.add("fail", error)

    def on_disconnect(self, service, connection):
        self.add("disconnect", connection)

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]

    def of(self, kind: str) -> list[Any]:
        return [detail for k, detail in self.events if k == kind]

    def received(self) -> list[bytes]:
        return self.of("receive")

    def when_received(self, count: int, timeout: float = TIMEOUT) -> Deferred[None]:
        return self.when(lambda: len(self.received()) >= count, f"{count} messages", timeout)

    def when_kind(self, kind: str, count: int = 1, timeout: float = TIMEOUT) -> Deferred[None]:
        return self.when(lambda: len(self.of(kind)) >= count, f"{count} x {kind}", timeout)

    def describe(self) -> str:
        shown = [(k, d if not isinstance(d, bytes) or len(d) < 40 else d[:40] + b"...") for k, d in self.events]
        return f"{len(self.events)} events: {shown[:30]}{' ...' if len(shown) > 30 else ''}"


class RawPeer(Protocol, Waitable):
    """A plain TCP peer that keeps every byte it gets and can write anything."""

    def __init__(self) -> None:
        Waitable.__init__(self)
        self.data = b""
        self.connected_d: Deferred[RawPeer] = Deferred()
        self.lost_d: Deferred[Any] = Deferred()
        self.lost_reason: Any = None

    def connectionMade(self) -> None:
        self.connected_d.callback(self)

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        self._changed()

    def connectionLost(self, reason: Any = None) -> None:
        self.lost_reason = reason
        self.lost_d.callback(None)  # the reason is kept above; a Failure here would go unhandled
        self._changed()

    @property
    def is_lost(self) -> bool:
        return self.lost_d.called

    def when_data(self, expected: bytes, timeout: float = TIMEOUT) -> Deferred[None]:
        """Fire once ``data`` is at least as long as ``expected`` (compare it yourself)."""
        return self.when(lambda: len(self.data) >= len(expected) or self.is_lost, f"{expected[:60]!r}", timeout)

    def when_lost(self, timeout: float = TIMEOUT) -> Deferred[None]:
        return self.when(lambda: self.is_lost, "the link to end", timeout)

    def describe(self) -> str:
        return f"RawPeer(data={self.data[:200]!r}, lost={self.is_lost})"


class RawServerFactory(Factory):
    """Accepts links with ``RawPeer``s and hands each one out, in order, through ``accepted``."""

    def __init__(self) -> None:
        self.peers: list[RawPeer] = []
        self._accepted: DeferredQueue[RawPeer] = DeferredQueue()

    def buildProtocol(self, addr: Any) -> RawPeer:
        peer = RawPeer()
        self.peers.append(peer)
        peer.connected_d.addCallback(self._accepted.put)
        return peer

    def accepted(self, timeout: float = TIMEOUT) -> Deferred[RawPeer]:
        return self._accepted.get().addTimeout(timeout, reactor)


class Net:
    """Starts servers, clients and raw peers on loopback and ends them all when the test is over."""

    def __init__(self) -> None:
        self.services: list[Server | Client] = []
        self.peers: list[RawPeer] = []
        self.ports: list[Any] = []

    async def server(self, callback: Callback | None = None, **options: Any) -> Server:
        options.setdefault("interface", LOOPBACK)
        server = Server(0, callback, **options)
        self.services.append(server)
        await server.start_in_reactor().addTimeout(TIMEOUT, reactor)
        assert server.port() != 0
        return server

    async def client(self, port: int, callback: Callback | None = None, **options: Any) -> Client:
        client = Client(port, callback, **options)
        self.services.append(client)
        await client.start_in_reactor(LOOPBACK).addTimeout(TIMEOUT, reactor)
        return client

    async def raw_peer(self, port: int) -> RawPeer:
        peer = RawPeer()
        self.peers.append(peer)
        await connectProtocol(TCP4ClientEndpoint(reactor, LOOPBACK, port, timeout=5), peer).addTimeout(TIMEOUT, reactor)
        return peer

    def raw_server(self) -> tuple[RawServerFactory, int]:
        factory = RawServerFactory()
        port = reactor.listenTCP(0, factory, interface=LOOPBACK)
        self.ports.append((port, factory))
        return factory, port.getHost().port

    async def close_all(self) -> None:
        closing = [service.close_in_reactor() for service in self.services]
        for port, factory in self.ports:
            closing.append(port.stopListening())
            self.peers.extend(factory.peers)
        for peer in self.peers:
            if peer.transport is not None and not peer.is_lost:
                peer.transport.abortConnection()
            closing.append(peer.when_lost(5))
        await DeferredList(closing, consumeErrors=True).addTimeout(TIMEOUT, reactor)
        unfinished = [service for service in self.services if service.state.value != "closed"]
        assert not unfinished, f"services still open after close_in_reactor: {unfinished}"


@pytest_twisted.async_yield_fixture
async def net():
    helper = Net()
    yield helper
    await helper.close_all()
