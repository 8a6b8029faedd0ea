"""``max_connections``: the link over the limit is closed at once with a log line; the others carry on."""

from __future__ import annotations

import pytest_twisted
from support_net import RawPeer

from .harness import Recorder


class Replier(Recorder):
    def on_receive(self, service, msg):
        service.reply(b"to " + msg)
        super().on_receive(service, msg)


async def ping(peer: RawPeer, msg: bytes) -> None:
    before = len(peer.messages)
    peer.transport.write(msg + b";")
    await peer.when_messages(before + 1)
    assert peer.messages[before:] == [b"to " + msg], peer.describe()


@pytest_twisted.ensureDeferred
async def test_the_connection_over_max_connections_is_closed_at_once_and_logged(net, leads_log):
    recorder = Replier()
    server = await net.server(recorder, max_connections=3)
    peers = [await net.peer(RawPeer(), server.port()) for _ in range(3)]
    await recorder.when_count("connect", 3)

    extra = await net.peer(RawPeer(), server.port())  # the kernel accepts it; the server closes it
    await extra.when_lost(timeout=5)
    for i, peer in enumerate(peers):
        await ping(peer, b"ping %d" % i)

    # A place freed is a place taken again.
    peers[0].transport.loseConnection()
    await recorder.when_count("disconnect")
    newcomer = await net.peer(RawPeer(), server.port())
    await recorder.when_count("connect", 4)
    await ping(newcomer, b"newcomer")

    assert extra.data == b"disconnect;", extra.describe()  # told, as a LEADS 0.9.x peer needs, then closed
    assert server.refused_connections == 1
    assert server.num_connections() == 3
    assert len(recorder.of("connect")) == 4 and len(recorder.of("disconnect")) == 1
    refusals = [line for line in leads_log if "max_connections" in line]
    assert len(refusals) == 1, leads_log
    assert not any(peer.is_lost for peer in peers[1:])
