"""Browsers' WebSocket links on a real loopback server, driven by a hand-written WebSocket peer: relay both ways
with TCP peers, fragments, ping/pong, close codes, oversize messages, origins, and a browser that stops
reading."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import pytest_twisted
from support_net import LOOPBACK, Recorder
from support_ws import BINARY, CONTINUATION, PING, TEXT, WsPeer
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.web.client import Agent, readBody

from leads_twisted.comm import LinkEnd, MessageTooLong, Observer
from leads_twisted.daemon.modes import Chained, Relay
from leads_twisted.websocket import WebSocketGate, WebSocketLink


class Ends(Observer):
    def __init__(self) -> None:
        self.ends: list[tuple[object, LinkEnd]] = []
        self.drops = 0

    def link_down(self, service, connection, reason) -> None:
        self.ends.append((connection, reason))

    def dropped(self, service, connection, count) -> None:
        self.drops += count


class GatePort:
    def __init__(self, gate: WebSocketGate) -> None:
        self.gate = gate

    def stopListening(self):
        return self.gate.stop_listening()


async def relay(net, origins=(), **options):
    """A relay server with a recorder after the mode, and a gate for browsers on a free loopback port."""
    seen = Recorder()
    ends = Ends()
    server = await net.server(Chained(Relay(), seen), **options)
    server.add_observer(ends)
    gate = WebSocketGate(server, f"tcp:0:interface={LOOPBACK}", origins=origins)
    await gate.listen()
    net.ports.append((GatePort(gate), SimpleNamespace(peers=[])))  # stopped with the test's other ports
    return server, gate, seen, ends


def ws_port(gate: WebSocketGate) -> int:
    return gate.listening_ports()[0].getHost().port


async def browser(gate, origin=None) -> WsPeer:
    peer = await WsPeer(origin=origin).connect(ws_port(gate))
    assert peer.status == 101, peer.describe()
    return peer


async def joined(seen: Recorder, count: int) -> None:
    await seen.when_kind("connect", count)


@pytest_twisted.ensureDeferred
async def test_relay_both_ways_between_browsers_and_tcp_peers(net):
    server, gate, seen, _ = await relay(net)
    tcp = await net.raw_peer(server.port())
    first = await browser(gate)
    second = await browser(gate)
    await joined(seen, 3)
    assert all(isinstance(link, WebSocketLink) for link in seen.of("connect")[1:])

    first.send_text("speed=12.5")
    first.send_binary(b"rpm=3000")
    await tcp.when_messages(2)
    assert tcp.messages == [b"speed=12.5", b"rpm=3000"]
    await second.when_messages(2)
    assert second.messages == [b"speed=12.5", b"rpm=3000"] and first.count == 0  # not back to its sender
    assert seen.received() == [b"speed=12.5", b"rpm=3000"]

    tcp.transport.write(b'{"gear": 3};\xff\xfe;')
    await first.when_messages(2)
    assert first.messages == [b'{"gear": 3}', b"\xff\xfe"]
    assert first.binary == [False, True], "UTF-8 goes as text, anything else as binary"

    first.send_text("hazard;on")  # holds the separator: dropped, the link goes on
    first.send_text("time_lap")
    await tcp.when_messages(3)
    assert tcp.messages[2] == b"time_lap" and not first.lost


class Deliveries(Observer):
    def __init__(self) -> None:
        self.out: list[tuple[object, int, int]] = []

    def message_out(self, service, connection, count, size) -> None:
        self.out.append((connection, count, size))


@pytest_twisted.ensureDeferred
async def test_a_burst_relayed_to_browsers_is_framed_once_and_written_once_per_batch(net):
    server, gate, seen, _ = await relay(net)
    deliveries = Deliveries()
    server.add_observer(deliveries)
    tcp = await net.raw_peer(server.port())
    first, second = await browser(gate), await browser(gate)
    await joined(seen, 3)
    links = seen.of("connect")[1:]
    burst = [b"speed=%d" % i for i in range(300)]
    tcp.transport.write(b"".join(m + b";" for m in burst))  # one write: the relay reads it in a chunk or few
    await first.when_messages(300)
    await second.when_messages(300)
    assert first.messages == burst and second.messages == burst, "every message, in order"
    assert first.binary == [False] * 300
    for link in links:
        told = [(count, size) for who, count, size in deliveries.out if who is link]
        assert sum(count for count, _ in told) == 300
        assert sum(size for _, size in told) == sum(2 + len(m) for m in burst), "frames counted, headers included"
        assert len(told) < 300, "observers hear of a batch's deliveries once per browser, not once per message"


@pytest_twisted.ensureDeferred
async def test_fragments_with_a_ping_between_them_make_one_message(net):
    server, gate, seen, _ = await relay(net)
    tcp = await net.raw_peer(server.port())
    peer = await browser(gate)
    await joined(seen, 2)
    peer.send_frame(TEXT, b"spe", fin=False)
    peer.send_frame(PING, b"between")
    peer.send_frame(CONTINUATION, b"ed=", fin=False)
    peer.send_frame(CONTINUATION, b"42")
    peer.send_frame(BINARY, b"x" * 70000)  # a 64-bit length header
    await tcp.when_messages(2)
    assert tcp.messages == [b"speed=42", b"x" * 70000]
    await peer.when(lambda: peer.pongs == [b"between"], "the pong")


@pytest_twisted.ensureDeferred
async def test_close_codes(net):
    server, gate, seen, ends = await relay(net)
    by_peer = await browser(gate)
    by_link = await browser(gate)
    by_server = await browser(gate)
    await joined(seen, 3)
    link_of = dict(zip((by_peer, by_link, by_server), seen.of("connect"), strict=True))

    by_peer.close(1000)
    await by_peer.when_closed()
    assert by_peer.close_code == 1000
    await seen.when_kind("disconnect")

    link_of[by_link].close()
    await by_link.when_closed()
    assert by_link.close_code == 1000

    await server.close_in_reactor()
    await by_server.when_closed()
    assert by_server.close_code == 1001, "the relay going away says so"
    assert [reason for _, reason in ends.ends] == [LinkEnd.CLOSED] * 3


@pytest_twisted.ensureDeferred
async def test_a_message_over_max_message_closes_with_1009_from_its_header(net):
    server, gate, seen, ends = await relay(net, max_message=100)
    tcp = await net.raw_peer(server.port())
    whole = await browser(gate)
    fragmented = await browser(gate)
    await joined(seen, 3)
    whole.send_text("ok")
    whole.send_frame(BINARY, b"", length=10_000_000)  # only the header: refused before any payload comes
    await whole.when_closed()
    assert whole.close_code == 1009
    fragmented.send_frame(TEXT, b"a" * 60, fin=False)
    fragmented.send_frame(CONTINUATION, b"b" * 60)
    await fragmented.when_closed()
    assert fragmented.close_code == 1009
    await tcp.when_messages(1)
    assert tcp.messages == [b"ok"] and not tcp.is_lost
    errors = seen.of("fail")
    assert len(errors) == 2 and all(isinstance(error, MessageTooLong) for error in errors)
    assert [reason for _, reason in ends.ends] == [LinkEnd.OVERSIZE] * 2
    exact = await browser(gate)
    await joined(seen, 4)
    exact.send_text("c" * 100)  # exactly max_message: allowed
    await tcp.when_messages(2)
    assert tcp.messages[1] == b"c" * 100


@pytest_twisted.ensureDeferred
async def test_origins(net):
    _, gate, _, _ = await relay(net, origins=["https://dash.example.org"])
    foreign = await WsPeer(origin="https://evil.example.com").connect(ws_port(gate))
    assert foreign.status == 403 and b"--websocket-origin" in foreign.response
    own = await WsPeer(origin="http://127.0.0.1").connect(ws_port(gate))  # the Host header's origin
    listed = await WsPeer(origin="https://dash.example.org").connect(ws_port(gate))
    tool = await WsPeer(origin=None).connect(ws_port(gate))
    assert (own.status, listed.status, tool.status) == (101, 101, 101)


def kernel_buffers() -> int:
    """The most a loopback link's two socket buffers can hold: the sender's plus the receiver's."""
    most = 0
    for name in ("tcp_wmem", "tcp_rmem"):
        with open(f"/proc/sys/net/ipv4/{name}") as limits:
            most += int(limits.read().split()[2])
    return most


@pytest.mark.parametrize("policy", ["disconnect", "drop"])
@pytest_twisted.ensureDeferred
async def test_a_browser_that_stops_reading_costs_bounded_memory(net, policy):
    server, gate, seen, ends = await relay(net, max_buffered=256 * 1024, slow_policy=policy)
    slow = await browser(gate)
    reader = WsPeer(keep=False)
    await reader.connect(ws_port(gate))
    await joined(seen, 2)
    slow.transport.pauseProducing()  # the browser's tab froze: nothing more is read from its socket
    chunk = b"v" * 16384
    sent = 0
    # Bursts of 64 KiB, each read by the other browser before the next; at most 128 MiB offered in all.
    while sent < 8000 and not (ends.ends or ends.drops):
        for _ in range(4):
            server.broadcast(chunk)
        sent += 4
        await reader.when_messages(sent)
    assert reader.count == sent, "the reading browser got every message"
    assert sent < 8000, "the slow browser was never dealt with"
    if policy == "disconnect":
        assert ends.ends and ends.ends[0][1] is LinkEnd.SLOW
    else:
        assert ends.drops > 0 and not ends.ends
    # Bounded: what the kernel's socket buffers take, then max_buffered and a burst or two, not all offered.
    assert sent * len(chunk) < kernel_buffers() + 256 * 1024 + 4 * 64 * 1024
    slow.transport.resumeProducing()


@pytest_twisted.ensureDeferred
async def test_the_page_is_served_from_the_package(net):
    _, gate, _, _ = await relay(net)
    agent = Agent(reactor)
    base = gate.url("http")
    page: Deferred = agent.request(b"GET", base.encode())
    response = await page
    body = await readBody(response)
    assert response.code == 200 and b'<canvas id="plot"' in body
    assert response.headers.getRawHeaders(b"content-type") == [b"text/html; charset=utf-8"]
    script = await agent.request(b"GET", (base + "app.js").encode())
    assert script.code == 200 and b"requestAnimationFrame" in await readBody(script)


class Greeter(Recorder):
    def on_connect(self, service, connection):
        super().on_connect(service, connection)
        connection.send(b"welcome")


@pytest_twisted.ensureDeferred
async def test_on_connect_can_greet_a_browser_and_a_thread_can_send_to_it(net):
    seen = Greeter()
    server = await net.server(seen)
    gate = WebSocketGate(server, f"tcp:0:interface={LOOPBACK}")
    await gate.listen()
    net.ports.append((GatePort(gate), SimpleNamespace(peers=[])))
    peer = await browser(gate)
    await peer.when_messages(1)
    assert peer.messages == [b"welcome"]
    [link] = seen.of("connect")
    from twisted.internet.threads import deferToThread

    await deferToThread(link.send, b"from a thread")
    await peer.when_messages(2)
    assert peer.messages[1] == b"from a thread"
    with pytest.raises(ValueError):
        link.send(b"a;b")


@pytest_twisted.ensureDeferred
async def test_wss_with_the_servers_certificate(net, tmp_path):
    from support_net import make_pki

    from leads_twisted.comm import TLSOptions

    pki = make_pki(tmp_path, "wss")
    server, _, seen, _ = await relay(net)
    gate = WebSocketGate(
        server, f"tcp:0:interface={LOOPBACK}", tls=TLSOptions(pki.server.certificate, pki.server.private_key)
    )
    await gate.listen()
    net.ports.append((GatePort(gate), SimpleNamespace(peers=[])))
    assert gate.url("ws").startswith("wss://")
    trusting = TLSOptions(ca_certificate=pki.ca).client_options("127.0.0.1")
    first = await WsPeer().connect(ws_port(gate), tls=trusting)
    second = await WsPeer().connect(ws_port(gate), tls=trusting)
    assert (first.status, second.status) == (101, 101)
    await joined(seen, 2)
    first.send_text("over tls")
    await second.when_messages(1)
    assert second.messages == [b"over tls"]


@pytest_twisted.ensureDeferred
async def test_the_memory_budget_drops_the_browser_holding_most_of_an_unfinished_message(net):
    from leads_twisted.comm.memory_budget import MemoryBudgetExceeded

    server, gate, seen, _ = await relay(net, max_message=1024 * 1024, max_memory=128 * 1024)
    tcp = await net.raw_peer(server.port())
    smaller = await browser(gate)
    bigger = await browser(gate)
    await joined(seen, 3)
    smaller.send_frame(TEXT, b"s" * 60_000, fin=False)
    bigger.send_frame(TEXT, b"b" * 90_000, fin=False)
    await bigger.when_closed()
    assert bigger.close_code == 1009
    [error] = seen.of("fail")
    assert isinstance(error, MemoryBudgetExceeded), error
    smaller.send_frame(CONTINUATION, b"!")  # the smaller message, now whole, goes on
    smaller.send_text("still here")
    await tcp.when_messages(2)
    assert tcp.messages == [b"s" * 60_000 + b"!", b"still here"] and not smaller.lost


@pytest_twisted.ensureDeferred
async def test_the_memory_budget_drops_a_browser_that_stopped_reading(net):
    from leads_twisted.comm.memory_budget import MemoryBudgetExceeded

    server, gate, seen, ends = await relay(net, max_buffered=64 * 1024 * 1024, max_memory=512 * 1024)
    slow = await browser(gate)
    reader = WsPeer(keep=False)
    await reader.connect(ws_port(gate))
    await joined(seen, 2)
    slow.transport.pauseProducing()
    chunk, sent = b"m" * 16384, 0
    while sent < 8000 and not ends.ends:  # at most 128 MiB offered
        for _ in range(4):
            server.broadcast(chunk)
        sent += 4
        await reader.when_messages(sent)
    assert ends.ends and ends.ends[0][1] is LinkEnd.SLOW
    assert any(isinstance(error, MemoryBudgetExceeded) for error in seen.of("fail"))
    assert sent * len(chunk) < kernel_buffers() + 512 * 1024 + 4 * 64 * 1024, "dropped at max_memory, not max_buffered"
    slow.transport.resumeProducing()


@pytest.mark.parametrize("direct_writes", [True, False])
@pytest_twisted.ensureDeferred
async def test_a_browsers_link_writes_its_socket_directly_unless_direct_writes_is_off(net, direct_writes):
    server, gate, seen, _ = await relay(net, direct_writes=direct_writes)
    tcp = await net.raw_peer(server.port())
    peer = await browser(gate)
    await joined(seen, 2)
    link = seen.of("connect")[1]
    assert (link._socket is not None) is direct_writes  # the control: on by default, off when asked
    tcp.transport.write(b"one;two;")
    await peer.when_messages(2)
    assert peer.messages == [b"one", b"two"]
