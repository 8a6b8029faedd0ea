"""Bug 3: ``close()`` racing ``start()``.

(a) A client closed inside ``on_initialize`` ends CLOSED and never connects, even with ``reconnect=True``
    when a server appears later on its port (a control client with the same backoff shows such a late
    connect would be seen within the window).
(b) A server closed before its listen completed ends with no port listening behind it.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from support import free_port
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, connectProtocol
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.protocol import Factory

from leads_twisted.comm import Server
from leads_twisted.comm.link_policy import Backoff

from .conftest import LOOPBACK, RawPeer, Recorder, bounded, seen, settle, until, window

#: A retry every 50 ms, so a late connect shows up many times over within the observation window.
QUICK = Backoff(initial=0.05, factor=1.0, maximum=0.05, jitter=0.0)
#: How long the closed client is watched after the server appears (10 retry periods of a live client).
WATCH_SECONDS = 0.5


class ClosesOnInitialize(Recorder):
    def on_initialize(self, service):
        super().on_initialize(service)
        service.close()


class Accepting(Factory):
    """A raw server that keeps every peer it accepts (and hands them to the test's cleanup)."""

    def __init__(self, net: Any) -> None:
        self.net = net
        self.peers: list[RawPeer] = []

    def buildProtocol(self, addr: Any) -> RawPeer:
        peer = RawPeer()
        self.peers.append(peer)
        self.net.peers.append(peer)
        return peer


@pytest_twisted.ensureDeferred
async def test_a_client_closed_in_on_initialize_never_connects(net):
    port = free_port()

    closed_seen = ClosesOnInitialize()
    closed = net.client(port, closed_seen, reconnect=True, backoff=QUICK)
    await settle(closed.start_in_reactor(LOOPBACK), "the start of the client closed in on_initialize")
    await until(lambda: closed.state.value == "closed", "the client closed in on_initialize to be CLOSED", 5)

    # The control: the same backoff, not closed; nothing listens yet, so it retries in the background.
    control_seen = Recorder()
    control = net.client(port, control_seen, reconnect=True, backoff=QUICK)
    await settle(control.start_in_reactor(LOOPBACK), "the control client's first attempt")

    server = Accepting(net)
    net.keep_port(reactor.listenTCP(port, server, interface=LOOPBACK))
    await seen(control_seen, lambda s: len(s.connections) == 1, 5)
    await window(WATCH_SECONDS)

    assert closed_seen.connections == [], f"the closed client connected: {closed_seen.events}"
    assert len(server.peers) == 1, f"{len(server.peers)} links reached the server; only the control's may"
    assert closed.state.value == "closed"
    assert closed_seen.kinds()[0] == "initialize" and "connect" not in closed_seen.kinds()


class ListenEndpoint:
    """A TCP endpoint on loopback, port 0, that keeps the port it opened; with ``delay``, the listen completes
    on a later turn of the reactor, as a real endpoint's may."""

    def __init__(self, delay: bool) -> None:
        self.delay = delay
        self.port: Any = None
        self.number = 0
        self.inner = TCP4ServerEndpoint(reactor, 0, interface=LOOPBACK)

    def listen(self, factory: Any) -> Deferred[Any]:
        if not self.delay:
            return self.inner.listen(factory).addCallback(self._opened)
        listening: Deferred[Any] = Deferred()

        def open_now() -> None:
            self.inner.listen(factory).addCallback(self._opened).chainDeferred(listening)

        reactor.callLater(0.01, open_now)
        return listening

    def _opened(self, port: Any) -> Any:
        self.port = port
        self.number = port.getHost().port
        return port


@pytest.mark.parametrize("delay", [True, False], ids=["listen-completes-later", "listen-completes-at-once"])
@pytest_twisted.ensureDeferred
async def test_a_server_closed_before_its_listen_completed_leaves_no_port(net, delay):
    endpoint = ListenEndpoint(delay)
    server_seen = Recorder()
    server = Server(callback=server_seen, endpoint=endpoint)
    net.services.append(server)

    starting = server.start_in_reactor()
    closing = server.close_in_reactor()  # the same reactor turn
    await settle(closing, "close_in_reactor")
    await settle(starting, "start_in_reactor")
    await until(lambda: endpoint.port is not None, "the endpoint's listen to complete", 5)
    port, number = endpoint.port, endpoint.number
    try:
        assert server.state.value == "closed"
        await until(lambda: not port.connected, f"port {number} to stop listening after the server closed", 2)
        assert not [p for p in server.listening_ports() if p.connected], server.listening_ports()
        peer = RawPeer()
        with pytest.raises(ConnectionRefusedError):
            await bounded(connectProtocol(TCP4ClientEndpoint(reactor, LOOPBACK, number, timeout=2), peer), 5)
        assert server_seen.connections == []
    finally:
        if port.connected:
            net.keep_port(port)  # the bug left it open: close it for the next tests
