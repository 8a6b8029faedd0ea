"""Who gets what: replies to one sender among many, the message-size bound, large messages both ways."""

from __future__ import annotations

import pytest
import pytest_twisted

from leads_twisted.comm import DISCONNECT, MessageTooLong

from .conftest import Recorder


class Replier(Recorder):
    """Answers each message to its sender alone, and keeps what ``sender()`` said for each message."""

    def __init__(self) -> None:
        super().__init__()
        self.senders = []

    def on_receive(self, service, msg):
        # Record last: recording wakes the test up at once.
        self.senders.append(service.sender())
        service.reply(b"to " + msg)
        super().on_receive(service, msg)


@pytest_twisted.ensureDeferred
async def test_reply_answers_only_the_sender_among_several(net):
    replier = Replier()
    server = await net.server(replier)
    peers = [await net.raw_peer(server.port()) for _ in range(4)]
    await replier.when_kind("connect", 4)
    expected = {i: b"" for i in range(4)}
    # Several rounds, peers taking turns, so a misdirected reply would land in some other peer's stream.
    for round_ in range(3):
        for i, peer in enumerate(peers):
            msg = b"peer%d-round%d" % (i, round_)
            peer.transport.write(msg + b";")
            expected[i] += b"to " + msg + b";"
            await peer.when_data(expected[i])
            assert peer.data == expected[i]
    # One last exchange per peer: TCP keeps order, so anything misdirected earlier would show before it.
    for i, peer in enumerate(peers):
        peer.transport.write(b"last;")
        expected[i] += b"to last;"
    for i, peer in enumerate(peers):
        await peer.when_data(expected[i])
        assert peer.data == expected[i], i


@pytest_twisted.ensureDeferred
async def test_sender_is_the_connection_given_to_on_connect(net):
    replier = Replier()
    server = await net.server(replier)
    peers = [await net.raw_peer(server.port()) for _ in range(3)]
    await replier.when_kind("connect", 3)
    for i, peer in enumerate(peers):
        peer.transport.write(b"%d;" % i)
        await replier.when_received(i + 1)
    connections = replier.of("connect")
    # The peers connected in this order; each one's messages name its own connection.
    by_port = {connection.address[1]: connection for connection in connections}
    for i, peer in enumerate(peers):
        local_port = peer.transport.getHost().port
        assert replier.senders[i] is by_port[local_port]
    assert len(set(map(id, replier.senders))) == 3


@pytest_twisted.ensureDeferred
async def test_a_kept_connection_answers_that_peer_later(net):
    recorder = Recorder()
    server = await net.server(recorder)
    first = await net.raw_peer(server.port())
    second = await net.raw_peer(server.port())
    await recorder.when_kind("connect", 2)
    by_port = {c.address[1]: c for c in recorder.of("connect")}
    by_port[second.transport.getHost().port].send(b"only for the second")
    await second.when_data(b"only for the second;")
    assert second.data == b"only for the second;"
    by_port[first.transport.getHost().port].send(b"now the first")
    await first.when_data(b"now the first;")
    assert first.data == b"now the first;"


@pytest_twisted.ensureDeferred
async def test_sender_outside_on_receive_is_an_error(net):
    server = await net.server(Recorder())
    with pytest.raises(RuntimeError, match="on_receive"):
        server.sender()
    with pytest.raises(RuntimeError):
        server.reply(b"to nobody")


@pytest_twisted.ensureDeferred
async def test_client_sender_is_its_connection(net):
    server = await net.server(Replier())
    replier = Replier()
    client = await net.client(server.port(), replier)
    client.send(b"hi")
    # The server answers "to hi", the client answers "to to hi", and so on: stop after a few.
    await replier.when_received(3)
    client.close()
    assert all(sender is replier.of("connect")[0] for sender in replier.senders)
    assert replier.received()[:3] == [b"to hi", b"to to to hi", b"to to to to to hi"]


@pytest_twisted.ensureDeferred
async def test_peer_over_max_message_is_dropped_and_others_keep_flowing(net):
    recorder = Replier()
    server = await net.server(recorder, max_message=1024)
    good = await net.raw_peer(server.port())
    bad = await net.raw_peer(server.port())
    await recorder.when_kind("connect", 2)
    good.transport.write(b"a" * 1024 + b";")
    await good.when_data(b"to " + b"a" * 1024 + b";")
    bad.transport.write(b"ok;")
    await bad.when_data(b"to ok;")
    bad.transport.write(b"b" * 600)
    bad.transport.write(b"b" * 600)  # no separator yet, and already past the bound
    await recorder.when_kind("fail")
    await bad.when_lost()
    [error] = recorder.of("fail")
    assert isinstance(error, MessageTooLong)
    assert error.max_message == 1024
    assert "1024" in str(error)
    await recorder.when_kind("disconnect")
    assert server.num_connections() == 1
    # The good peer carries on.
    good.transport.write(b"still;")
    await good.when_data(b"to " + b"a" * 1024 + b";to still;")
    assert good.data == b"to " + b"a" * 1024 + b";to still;"
    assert recorder.received() == [b"a" * 1024, b"ok", b"still"]
    # The dropped peer got no more than the reply to what it sent within the rules.
    assert bad.data in (b"to ok;", b"to ok;" + DISCONNECT + b";")


@pytest_twisted.ensureDeferred
async def test_client_drops_a_server_over_max_message(net):
    factory, port = net.raw_server()
    recorder = Recorder()
    client = await net.client(port, recorder, max_message=100)
    peer = await factory.accepted()
    peer.transport.write(b"fine;" + b"x" * 101 + b";")
    await recorder.when_kind("disconnect")
    assert recorder.received() in ([], [b"fine"])
    assert [type(e) for e in recorder.of("fail")] == [MessageTooLong]
    assert client.connection() is None


def mib_message(seed: int) -> bytes:
    """1 MiB of every byte value but the separator, different for each seed."""
    block = bytes((seed + i) % 256 for i in range(256)).replace(b";", b"!")
    return block * 4096


@pytest_twisted.ensureDeferred
async def test_one_mib_messages_both_ways(net):
    class Echo(Recorder):
        def on_receive(self, service, msg):
            service.reply(msg[::-1])
            super().on_receive(service, msg)

    echo = Echo()
    server = await net.server(echo)
    recorder = Recorder()
    client = await net.client(server.port(), recorder)
    sent = [mib_message(seed) for seed in (1, 2, 3)]
    assert all(len(m) == 1024 * 1024 for m in sent)
    for msg in sent:
        client.send(msg)
    await recorder.when_received(3, timeout=30)
    assert echo.received() == sent
    assert recorder.received() == [m[::-1] for m in sent]


@pytest_twisted.ensureDeferred
async def test_broadcast_from_the_reactor_thread_reaches_every_client(net):
    server_recorder = Recorder()
    server = await net.server(server_recorder)
    clients = [Recorder() for _ in range(5)]
    for recorder in clients:
        await net.client(server.port(), recorder)
    await server_recorder.when_kind("connect", 5)
    for i in range(200):
        server.broadcast(b"b%d" % i)
    for recorder in clients:
        await recorder.when_received(200)
        assert recorder.received() == [b"b%d" % i for i in range(200)]


@pytest.mark.parametrize("bad", [b"a;b", b";", b"end;"])
@pytest_twisted.ensureDeferred
async def test_sending_the_separator_raises_and_sends_nothing(net, bad):
    recorder = Recorder()
    server = await net.server(recorder)
    peer = await net.raw_peer(server.port())
    await recorder.when_kind("connect")
    [connection] = recorder.of("connect")
    with pytest.raises(ValueError, match="separator"):
        connection.send(bad)
    with pytest.raises(ValueError, match="separator"):
        server.broadcast(bad)
    connection.send(b"after")
    await peer.when_data(b"after;")
    assert peer.data == b"after;"


@pytest_twisted.ensureDeferred
async def test_multi_byte_separator_end_to_end(net):
    echo = Replier()
    server = await net.server(echo, separator=b"end;")
    recorder = Recorder()
    client = await net.client(server.port(), recorder, separator=b"end;")
    frames = [b"frame;%d;with;semicolons" % i for i in range(50)] + [b"", b"en", b"endx"]
    for frame in frames:
        client.send(frame)
    await recorder.when_received(len(frames))
    assert echo.received() == frames
    assert recorder.received() == [b"to " + f for f in frames]
    with pytest.raises(ValueError):
        client.send(b"the end; here")


@pytest_twisted.ensureDeferred
async def test_default_bound_is_8_mib_exactly(net):
    recorder = Recorder()
    server = await net.server(recorder)
    assert server.max_message == 8 * 1024 * 1024
    at_bound = await net.raw_peer(server.port())
    at_bound.transport.write(b"x" * (8 * 1024 * 1024) + b";")
    await recorder.when_received(1, timeout=30)
    assert len(recorder.received()[0]) == 8 * 1024 * 1024
    over = await net.raw_peer(server.port())
    over.transport.write(b"y" * (8 * 1024 * 1024 + 1))
    await recorder.when_kind("fail", timeout=30)
    await over.when_lost(timeout=30)
    assert isinstance(recorder.of("fail")[0], MessageTooLong)
    assert not at_bound.is_lost
