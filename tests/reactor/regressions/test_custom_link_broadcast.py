"""Bug 10: a server's broadcast reaches a custom ``ConnectionBase`` link with each message exactly once and
intact: over the worked UDP example (``examples/udp_link.py``), beside a TCP client, and over a link that keeps
its frames in a list (no datagram loss possible), from the reactor thread and from another thread."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted
from support import load_example
from support_net import ListLink
from twisted.internet import reactor, threads

from .conftest import LOOPBACK, Recorder, bounded, seen

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "udp_link.py"

udp = load_example(EXAMPLE, "leads_udp_link_example_regressions")

#: Small enough that a burst fits in a loopback socket's receive buffer: UDP may drop what overflows it.
BURST = [b"m%02d:" % i + bytes([97 + i % 26]) * (i * 13) for i in range(20)]


@pytest_twisted.ensureDeferred
async def test_broadcast_reaches_udp_links_exactly_once_and_intact(net):
    server_seen = Recorder()
    server = await net.server(server_seen, endpoint=udp.UDPServerEndpoint(reactor, 0))
    udp_seen = [Recorder(), Recorder()]
    for number, client_seen in enumerate(udp_seen):
        client = net.client(0, client_seen, endpoint=udp.UDPClientEndpoint(reactor, LOOPBACK, server.port()))
        await bounded(client.start_in_reactor(LOOPBACK))
        client.send(b"hello:%d" % number)  # the server knows a datagram peer once it has heard from it
    await seen(server_seen, lambda s: len(s.connections) == 2)

    expected: list[bytes] = []
    for round_ in range(3):
        burst = [b"r%d:" % round_ + msg for msg in BURST]
        if round_ == 1:
            await bounded(threads.deferToThread(lambda burst=burst: [server.broadcast(msg) for msg in burst]))
        else:
            for msg in burst:
                server.broadcast(msg)
        expected += burst
        count = len(expected)
        for client_seen in udp_seen:
            await seen(client_seen, lambda s, n=count: len(s.received) >= n)
    server.broadcast(b"end")
    expected.append(b"end")
    for client_seen in udp_seen:
        await seen(client_seen, lambda s: b"end" in s.received)

    for client_seen in udp_seen:
        got = client_seen.received
        assert len(got) == len(expected), f"{len(got)} messages for {len(expected)} broadcasts"
        assert got == expected
    assert isinstance(server_seen.connections[0], udp.DatagramConnection)
    assert server_seen.failures == []


@pytest.mark.parametrize("options", [{}, {"separator": b"\r\n"}, {"framing": "length"}], ids=["sep", "crlf", "len"])
@pytest_twisted.ensureDeferred
async def test_broadcast_reaches_a_custom_link_beside_a_tcp_client_exactly_once(net, options):
    server_seen = Recorder()
    server = await net.server(server_seen, **options)
    link = ListLink(server)
    server.attach(link)
    tcp_seen = Recorder()
    await net.started_client(server.port(), tcp_seen, **options)
    await seen(server_seen, lambda s: len(s.connections) == 2)

    messages = [b"a", b"", b"big:" + b"z" * (1 << 20), *BURST]
    for msg in messages:  # the reactor thread
        server.broadcast(msg)
    from_thread = [b"t%03d" % i for i in range(300)]
    await bounded(threads.deferToThread(lambda: [server.broadcast(msg) for msg in from_thread]))
    server.broadcast(b"end")
    expected = [*messages, *from_thread, b"end"]
    await seen(tcp_seen, lambda s: b"end" in s.received)

    encoder = server._policy.encoder
    assert link.frames == [encoder.encode(msg) for msg in expected], (
        f"{len(link.frames)} frames for {len(expected)} broadcasts; first ones {[f[:20] for f in link.frames[:5]]}"
    )
    assert tcp_seen.received == expected
    assert server_seen.failures == []
