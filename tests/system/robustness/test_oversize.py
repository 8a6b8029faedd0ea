"""A peer that never ends its message: dropped with MessageTooLong, the server's memory does not follow it."""

from __future__ import annotations

import struct

import pytest_twisted
from support_net import RawPeer

from leads_twisted.comm import MessageTooLong

from .harness import EchoLoop, Flooder, MemoryWatch, Recorder

MB = 1_000_000


@pytest_twisted.ensureDeferred
async def test_100_mb_without_a_separator_drops_only_that_peer_and_rss_stays_flat(processes, net):
    server = await processes.server()
    chatter = EchoLoop()
    await net.started_client(server.port, chatter)
    chatter.start()
    await chatter.when_answers(200)
    memory = MemoryWatch(server.pid)
    answers_before = chatter.answers

    flooder = await net.peer(Flooder(100 * MB), server.port)
    await flooder.when(lambda: flooder.is_lost or flooder.sent >= flooder.total, "the flooder to be dropped", 60)
    answers_during = chatter.answers - answers_before
    # The other client goes on exchanging after the drop too.
    await chatter.when_answers(chatter.answers + 200)
    chatter.stop()
    fail = await server.event("fail")
    memory.finish()
    stats = await server.stats()
    print(f"100 MB flood: {memory}; flooder sent {flooder.sent / MB:.1f} MB; {answers_during} echoes during it")

    assert flooder.is_lost, f"the server kept a peer that sent {flooder.sent} bytes without a separator"
    assert flooder.sent < flooder.total, "the server read all 100 MB instead of dropping the peer"
    assert fail["type"] == "MessageTooLong", fail
    assert "max_message" in fail["message"], fail
    assert memory.growth * MB < 20 * MB, f"server RSS grew by {memory.growth:.1f} MB: {memory}"
    assert answers_during > 0, "the other client got no answer while the flood was being read"
    assert chatter.wrong == [], chatter.wrong[:3]
    assert chatter.of("disconnect") == [] and chatter.of("fail") == [], chatter.describe()
    assert stats["connections"] == 1, stats
    assert stats["fails"] == {"MessageTooLong": 1}, stats
    assert stats["counts"].get("disconnect") == 1 and stats["repeated_disconnects"] == [], stats


@pytest_twisted.ensureDeferred
async def test_a_length_header_over_the_bound_drops_the_peer_before_its_body(net):
    recorder = Recorder()
    server = await net.server(recorder, framing="length", max_message=1024)
    honest = await net.peer(RawPeer(), server.port())
    liar = await net.peer(RawPeer(), server.port())
    await recorder.when_count("connect", 2)
    # Announce 2 GiB and send a little of it: the header alone is enough to refuse it.
    liar.transport.write(struct.pack(">I", 2**31) + b"y" * 100)
    await liar.when_lost()
    await recorder.when_count("fail")
    honest.transport.write(struct.pack(">I", 5) + b"hello")
    await recorder.when_count("receive")

    errors = recorder.of("fail")
    assert len(errors) == 1 and isinstance(errors[0], MessageTooLong), errors
    assert errors[0].length == 2**31
    assert recorder.of("receive") == [b"hello"]
    assert len(recorder.of("disconnect")) == 1 and not honest.is_lost
