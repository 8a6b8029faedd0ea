"""Strangers and floods, on loopback: ``allow`` refuses peers outside it at accept; unfinished TLS handshakes
cannot lock real clients out; the memory budget drops the peers holding the most while others are served;
``max_rate`` slows a fast sender down without losing anything; peer names are escaped in what is logged."""

from __future__ import annotations

import os
import socket
import tempfile

import pytest
import pytest_twisted
from support_net import client_tls, make_pki, server_tls
from twisted.internet import reactor, threads
from twisted.logger import formatEvent, globalLogPublisher

from leads_twisted.comm import LinkEnd, Observer, Server
from leads_twisted.comm.memory_budget import MemoryBudgetExceeded

from .conftest import TIMEOUT, Recorder


class Echo(Recorder):
    def on_receive(self, service, msg):
        super().on_receive(service, msg)
        service.reply(b"echo " + msg)


class Refusals(Observer):
    def __init__(self) -> None:
        self.refusals: list[tuple[object, str]] = []
        self.ended: list[LinkEnd] = []

    def refused(self, service, address, reason):
        self.refusals.append((address, reason))

    def link_down(self, service, connection, reason):
        self.ended.append(reason)


@pytest.fixture
def warnings_logged():
    """Warnings the library logs while the test runs, formatted."""
    lines: list[str] = []

    def observe(event):
        if event.get("log_namespace", "").startswith("leads_twisted") and event["log_level"].name == "warn":
            lines.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    yield lines
    globalLogPublisher.removeObserver(observe)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    pytest.importorskip("OpenSSL", reason="TLS needs the tls extra (pyOpenSSL)")
    return make_pki(tmp_path_factory.mktemp("pki"), "security")


@pytest_twisted.ensureDeferred
async def test_allow_refuses_peers_outside_it_at_accept_counts_them_and_logs_once(net, warnings_logged):
    seen = Recorder()
    observer = Refusals()
    server = await net.server(seen, allow=["10.0.0.0/8", "192.168.0.0/16"])
    server.add_observer(observer)
    strangers = [await net.raw_peer(server.port()) for _ in range(5)]
    for stranger in strangers:
        await stranger.when_lost(TIMEOUT)
        assert stranger.data == b"", "a stranger is told nothing"
    assert seen.of("connect") == []
    assert server.refused_connections == 5
    assert [reason for _, reason in observer.refusals] == ["allow"] * 5
    refusals = [line for line in warnings_logged if "not in allow" in line]
    assert len(refusals) == 1 and refusals[0].startswith("refused 127.0.0.1:"), warnings_logged


@pytest_twisted.ensureDeferred
async def test_allow_lets_peers_inside_it_in(net):
    seen = Echo()
    server = await net.server(seen, allow=["127.0.0.0/8"])
    peer = await net.raw_peer(server.port())
    peer.transport.write(b"hi;")
    await peer.when_messages(1)
    assert peer.messages == [b"echo hi"] and server.refused_connections == 0


@pytest_twisted.ensureDeferred
async def test_silent_connections_cannot_lock_a_tls_client_out(net, pki, warnings_logged):
    seen = Echo()
    server = await net.server(seen, tls=server_tls(pki), max_connections=20, handshake_timeout=60)
    observer = Refusals()
    server.add_observer(observer)
    silent = [await net.raw_peer(server.port()) for _ in range(20)]
    client_seen = Recorder()
    client = await net.client(server.port(), client_seen, tls=client_tls(pki))
    client.send(b"let me in")
    await client_seen.when_received(1)
    assert client_seen.received() == [b"echo let me in"]
    # The silent ones were held to half of max_connections: the oldest made room.
    assert sum(peer.is_lost for peer in silent) >= 10
    assert [reason for _, reason in observer.refusals].count("handshakes") >= 10
    assert all(not peer.is_lost for peer in silent[-9:]), "the newest silent links are still waiting"


@pytest_twisted.ensureDeferred
async def test_an_unfinished_handshake_is_dropped_after_handshake_timeout_naming_the_peer(net, pki, warnings_logged):
    seen = Recorder()
    server = await net.server(seen, tls=server_tls(pki), handshake_timeout=0.3)
    silent = await net.raw_peer(server.port())
    started = reactor.seconds()
    await silent.when_lost(TIMEOUT)
    assert 0.25 <= reactor.seconds() - started < 5
    await seen.when_kind("fail")
    [error] = seen.of("fail")
    assert isinstance(error, ConnectionError) and "127.0.0.1:" in str(error) and "handshake_timeout" in str(error)
    assert any("TLS handshake with 127.0.0.1:" in line for line in warnings_logged), warnings_logged


@pytest_twisted.ensureDeferred
async def test_the_memory_budget_drops_the_peers_holding_the_most_while_others_are_answered(net):
    budget = 1024 * 1024
    seen = Echo()
    observer = Refusals()
    server = await net.server(seen, max_memory=budget, max_message=4 * budget)
    server.add_observer(observer)
    good = await net.raw_peer(server.port())
    hogs = [await net.raw_peer(server.port()) for _ in range(3)]
    chunk = b"x" * (64 * 1024)
    # Each hog sends 600 KiB of one unfinished message: together 1.8 MiB, past the 1 MiB budget.
    for size_step in range(10):
        for index, hog in enumerate(hogs):
            if not hog.is_lost:
                hog.transport.write(chunk if index != 2 or size_step < 9 else chunk + chunk)
        good.transport.write(b"ping %d;" % size_step)
        await good.when_messages(size_step + 1)
    assert good.messages == [b"echo ping %d" % n for n in range(10)], "the good peer was answered throughout"
    for hog in hogs:
        if not hog.is_lost:
            hog.transport.write(b";")
    await seen.when(lambda: len([e for e in seen.of("fail") if isinstance(e, MemoryBudgetExceeded)]) >= 1)
    errors = [error for error in seen.of("fail") if isinstance(error, MemoryBudgetExceeded)]
    assert errors and "over max_memory" in str(errors[0]) and "127.0.0.1:" in str(errors[0])
    assert server.memory_budget is not None and server.memory_budget.total <= budget
    assert LinkEnd.OVERSIZE in observer.ended
    good.transport.write(b"after;")
    await good.when_messages(11)
    assert good.messages[-1] == b"echo after"


@pytest_twisted.ensureDeferred
async def test_max_rate_slows_a_fast_sender_without_losing_messages(net):
    seen = Recorder()
    server = await net.server(seen, max_rate=2000)
    peer = await net.raw_peer(server.port())
    await seen.when_kind("connect")
    peer.transport.write(b"m;" * 4000)  # twice a second's allowance, in one go
    await seen.when_received(4000)
    sent_last = reactor.seconds()
    peer.transport.write(b"last;")
    await seen.when_received(4001)
    waited = reactor.seconds() - sent_last
    assert seen.received()[-1] == b"last" and len(seen.received()) == 4001
    assert waited >= 0.8, f"the peer was {2000} messages over its allowance, yet waited only {waited:.2f} s"


def connect_unix_from(name: str, path: str) -> socket.socket:
    peer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    peer.bind(name)
    peer.connect(path)
    return peer


@pytest_twisted.ensureDeferred
async def test_a_unix_peer_cannot_forge_log_lines_with_its_socket_name(net):
    seen = Recorder()
    directory = tempfile.mkdtemp(prefix="leads-sec-")
    path = os.path.join(directory, "s")
    server = Server(0, seen, endpoint=f"unix:{path}")
    net.services.append(server)
    await server.start_in_reactor().addTimeout(TIMEOUT, reactor)
    evil = os.path.join(directory, "c\n2026-01-01T00:00:00+0000 [leads_twisted.server#warn] forged")
    peer = await threads.deferToThread(connect_unix_from, evil, path)
    try:
        await seen.when_kind("connect")
        [connection] = seen.of("connect")
        assert "\n" not in str(connection) and "\\n2026" in str(connection), str(connection)
    finally:
        peer.close()
        os.unlink(evil)
    assert server.num_connections() <= 1


class ListeningEverywhere:
    """An endpoint standing in for one bound to all interfaces (tests bind loopback only)."""

    def listen(self, factory):
        from twisted.internet.address import IPv4Address
        from twisted.internet.defer import succeed

        class Port:
            def getHost(self):
                return IPv4Address("TCP", "0.0.0.0", 16900)

            def stopListening(self):
                return succeed(None)

        return succeed(Port())


@pytest_twisted.ensureDeferred
async def test_listening_beyond_loopback_without_tls_is_one_warning_naming_risk_and_fix(net, warnings_logged):
    await net.server(Recorder())  # loopback: no warning
    assert not [line for line in warnings_logged if "without TLS" in line]
    server = Server(0, Recorder(), endpoint=ListeningEverywhere())
    net.services.append(server)
    await server.start_in_reactor().addTimeout(TIMEOUT, reactor)
    [line] = [line for line in warnings_logged if "without TLS" in line]
    assert line.startswith("listening on 0.0.0.0:16900 without TLS: anyone who can reach it")
    assert "--tls-ca" in line and "--allow" in line
