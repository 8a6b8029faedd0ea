"""The seam's per-chunk side: ``messages_in`` once per chunk for observers that count, and deliveries to a link
told once per chunk handled."""

from __future__ import annotations

import pytest_twisted
from support_net import Recorder

from leads_twisted.comm import Observer


class Relay(Recorder):
    def on_receive(self, service, msg):
        service.broadcast(msg, exclude=service.sender())
        super().on_receive(service, msg)


class Chunks(Observer):
    def __init__(self):
        self.chunks = []
        self.outs = []

    def messages_in(self, service, connection, messages):
        self.chunks.append(list(messages))

    def message_out(self, service, connection, count, size):
        self.outs.append((connection, count, size))


class Each(Observer):
    def __init__(self):
        self.messages = []

    def message_in(self, service, connection, msg):
        self.messages.append(msg)


class Both(Chunks, Each):
    def __init__(self):
        Chunks.__init__(self)
        Each.__init__(self)


@pytest_twisted.ensureDeferred
async def test_one_call_per_chunk_in_and_per_link_out(net):
    relay = Relay()
    server = await net.server(relay)
    chunks, each, both = Chunks(), Each(), Both()
    for observer in (chunks, each, both):
        server.add_observer(observer)
    assert server.observers.per_chunk == (chunks, both)
    assert server.observers.each_message == (each, both)
    sender, first, second = [await net.raw_peer(server.port()) for _ in range(3)]
    await relay.when_kind("connect", 3)
    sender.transport.write(b"a;bb;ccc;")
    await relay.when_received(3)
    await first.when_messages(3)
    await second.when_messages(3)
    assert chunks.chunks == [[b"a", b"bb", b"ccc"]]
    assert each.messages == [b"a", b"bb", b"ccc"]
    assert both.chunks == chunks.chunks and both.messages == each.messages
    # Three deliveries to each of the two other links, told once per link when the chunk was done.
    assert sorted((count, size) for _, count, size in chunks.outs) == [(3, 9), (3, 9)]
    assert len({connection for connection, _, _ in chunks.outs}) == 2


@pytest_twisted.ensureDeferred
async def test_controls_are_left_out_of_a_chunk(net):
    recorder = Recorder()
    server = await net.server(recorder)
    chunks = Chunks()
    server.add_observer(chunks)
    peer = await net.raw_peer(server.port())
    await recorder.when_kind("connect")
    peer.transport.write(b"x;disconnect;")
    await peer.when_lost()
    assert chunks.chunks == [[b"x"]]
    server.remove_observer(chunks)
    assert server.observers.per_chunk == ()
