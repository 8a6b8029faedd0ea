"""Helpers for tests that run inside pytest-twisted's reactor: recording callbacks, raw peers, cleanup.

Every wait is on an event (a Deferred fired by a callback or by data arriving) and has a timeout; waits,
raw peers and connecting come from ``support_net``, bounded here by this package's ``TIMEOUT``.
"""

from __future__ import annotations

from typing import Any

import pytest_twisted
from support_net import LOOPBACK, RawPeer, RawServerFactory, Waitable, close_and_check, connect
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from leads_twisted.comm import Callback, Client, Server

TIMEOUT = 10.0


class Recorder(Callback, Waitable):
    """A callback that records every call as ``(kind, detail)`` in order."""

    default_timeout = TIMEOUT

    def __init__(self) -> None:
        Callback.__init__(self)
        Waitable.__init__(self)
        self.events: list[tuple[str, Any]] = []
        self.services: list[Any] = []
        #: ``service.sender()`` at each ``on_receive``, in order.
        self.senders_seen: list[Any] = []

    def add(self, kind: str, detail: Any = None) -> None:
        self.events.append((kind, detail))
        self.changed()

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
        peer = RawPeer(default_timeout=TIMEOUT)
        self.peers.append(peer)
        await connect(peer, port, TIMEOUT)
        return peer

    async def linked_peer(self, callback: Recorder, **options: Any) -> tuple[Any, RawPeer]:
        """A server with ``callback``, a raw peer linked to it, and the server's connection to that peer."""
        server = await self.server(callback, **options)
        peer = await self.raw_peer(server.port())
        await callback.when_kind("connect")
        return callback.of("connect")[-1], peer

    def raw_server(self) -> tuple[RawServerFactory, int]:
        factory = RawServerFactory(TIMEOUT)
        port = reactor.listenTCP(0, factory, interface=LOOPBACK)
        self.ports.append((port, factory))
        return factory, port.getHost().port

    async def close_all(self) -> None:
        closing = [service.close_in_reactor() for service in self.services]
        for port, factory in self.ports:
            closing.append(port.stopListening())
            self.peers.extend(factory.peers)
        await close_and_check(closing, self.services, self.peers, TIMEOUT)


@pytest_twisted.async_yield_fixture
async def net():
    helper = Net()
    yield helper
    await helper.close_all()
