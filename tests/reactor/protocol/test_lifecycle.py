"""Callback order and link endings, on real loopback sockets inside pytest-twisted's reactor."""

from __future__ import annotations

import socket
import struct

import pytest
import pytest_twisted
from twisted.internet import reactor

from leads_twisted.comm import DISCONNECT, Callback, Client, Connection

from .conftest import Recorder

ENDINGS = ["peer says disconnect", "peer closes", "peer resets", "we close the connection", "we close the server"]


def check_one_link_story(recorder: Recorder, messages: list[bytes]) -> None:
    """initialize, connect, every message in order, disconnect once, for the same connection; nothing else."""
    assert recorder.kinds() == ["initialize", "connect"] + ["receive"] * len(messages) + ["disconnect"], (
        recorder.describe()
    )
    assert recorder.received() == messages
    [connected] = recorder.of("connect")
    [disconnected] = recorder.of("disconnect")
    assert connected is disconnected
    assert isinstance(connected, Connection)
    assert connected.closed()


@pytest.mark.parametrize("ending", ENDINGS)
@pytest_twisted.ensureDeferred
async def test_server_callback_order_for_every_ending(net, ending):
    recorder = Recorder()
    server = await net.server(recorder)
    assert recorder.kinds() == ["initialize"]
    messages = [b"one", b"", b"three", b"x" * 5000]
    wire = b"".join(m + b";" for m in messages)

    if ending == "peer resets":
        # A plain socket, so the reset is certain: SO_LINGER 0 turns close() into an RST.
        sock = socket.create_connection(("127.0.0.1", server.port()), timeout=5)
        try:
            sock.sendall(wire)
            await recorder.when_received(len(messages))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        finally:
            sock.close()
        await recorder.when_kind("disconnect")
    else:
        peer = await net.raw_peer(server.port())
        for i in range(0, len(wire), 3):  # a few bytes per write
            peer.transport.write(wire[i : i + 3])
        await recorder.when_received(len(messages))
        assert recorder.kinds()[:2] == ["initialize", "connect"]
        [connection] = recorder.of("connect")
        if ending == "peer says disconnect":
            peer.transport.write(DISCONNECT + b";")
        elif ending == "peer closes":
            peer.transport.loseConnection()
        elif ending == "we close the connection":
            connection.close()
            connection.close()  # again: nothing more happens
        else:
            await server.close_in_reactor().addTimeout(10, reactor)
        await recorder.when_kind("disconnect")
        await peer.when_lost()
        if ending != "peer closes":
            # Whoever ended it, the peer was told disconnect last.
            assert peer.data.endswith(DISCONNECT + b";"), peer.data
    await server.close_in_reactor()
    check_one_link_story(recorder, messages)
    assert server.num_connections() == 0


@pytest_twisted.ensureDeferred
async def test_on_connect_comes_before_messages_sent_at_once(net):
    # The peer writes as soon as it connects: still, on_connect is first.
    recorder = Recorder()
    server = await net.server(recorder)
    peers = [await net.raw_peer(server.port()) for _ in range(5)]
    for i, peer in enumerate(peers):
        peer.transport.write(b"hello %d;" % i)
    await recorder.when_received(5)
    await server.close_in_reactor()
    # Each message came after the on_connect of its own connection.
    connected = []
    receives = iter(recorder.senders_seen)
    for kind, detail in recorder.events:
        if kind == "connect":
            connected.append(detail)
        elif kind == "receive":
            assert next(receives) in connected
    assert len(recorder.of("connect")) == 5
    assert len(recorder.of("disconnect")) == 5
    assert set(recorder.of("connect")) == set(recorder.of("disconnect"))
    assert sorted(recorder.received()) == [b"hello %d" % i for i in range(5)]


@pytest.mark.parametrize("ending", ["server says disconnect", "server closes", "server resets", "we close"])
@pytest_twisted.ensureDeferred
async def test_client_callback_order_for_every_ending(net, ending):
    factory, port = net.raw_server()
    recorder = Recorder()
    client = await net.client(port, recorder)
    peer = await factory.accepted()
    await recorder.when_kind("connect")
    assert recorder.kinds() == ["initialize", "connect"]
    assert client.connection() is recorder.of("connect")[0]
    messages = [b"a", b"bb", b"", b"ccc"]
    peer.transport.write(b"".join(m + b";" for m in messages))
    await recorder.when_received(len(messages))
    if ending == "server says disconnect":
        peer.transport.write(DISCONNECT + b";")
    elif ending == "server closes":
        peer.transport.loseConnection()
    elif ending == "server resets":
        peer.transport.abortConnection()
    else:
        await client.close_in_reactor()
    await recorder.when_kind("disconnect")
    await peer.when_lost()
    await client.close_in_reactor()
    check_one_link_story(recorder, messages)
    assert client.connection() is None
    assert client.state.value == "closed"
    if ending in ("server says disconnect", "we close"):
        assert peer.data == DISCONNECT + b";"


@pytest_twisted.ensureDeferred
async def test_client_start_fires_after_on_connect(net):
    # Code that goes on once the client has started can count on on_connect having run (a user's "connected"
    # flag set there, say).
    factory, port = net.raw_server()
    recorder = Recorder()
    client = Client(port, recorder)
    net.services.append(client)
    kinds_when_started = []
    started = client.start_in_reactor("127.0.0.1")
    started.addCallback(lambda _: kinds_when_started.extend(recorder.kinds()))
    await started.addTimeout(10, reactor)
    await factory.accepted()
    assert kinds_when_started == ["initialize", "connect"]


@pytest_twisted.ensureDeferred
async def test_client_close_sends_what_was_sent_before_then_disconnect(net):
    factory, port = net.raw_server()
    client = await net.client(port, Recorder())
    peer = await factory.accepted()
    for i in range(100):
        client.send(b"m%d" % i)
    client.close()
    await peer.when_lost()
    assert peer.data == b"".join(b"m%d;" % i for i in range(100)) + DISCONNECT + b";"


@pytest_twisted.ensureDeferred
async def test_server_close_tells_every_peer_disconnect_after_their_messages(net):
    recorder = Recorder()
    server = await net.server(recorder)
    peers = [await net.raw_peer(server.port()) for _ in range(3)]
    await recorder.when_kind("connect", 3)
    server.broadcast(b"before")
    for connection in recorder.of("connect"):
        connection.send(b"just you")
    await server.close_in_reactor()
    for peer in peers:
        await peer.when_lost()
        assert peer.data == b"before;just you;disconnect;"
    assert len(recorder.of("disconnect")) == 3


@pytest_twisted.ensureDeferred
async def test_connection_disconnect_asks_without_closing(net):
    recorder = Recorder()
    server = await net.server(recorder)
    peer = await net.raw_peer(server.port())
    await recorder.when_kind("connect")
    [connection] = recorder.of("connect")
    connection.disconnect()
    await peer.when_data(DISCONNECT + b";")
    assert peer.data == DISCONNECT + b";"
    assert not connection.closed()
    assert recorder.of("disconnect") == []
    # The peer goes on talking, then leaves.
    peer.transport.write(b"still here;")
    await recorder.when_received(1)
    peer.transport.loseConnection()
    await recorder.when_kind("disconnect")
    assert recorder.received() == [b"still here"]


@pytest_twisted.ensureDeferred
async def test_disconnect_between_messages_of_one_write(net):
    recorder = Recorder()
    server = await net.server(recorder)
    peer = await net.raw_peer(server.port())
    # What came before the peer's disconnect in the same write is delivered, then the link closes. (What a peer
    # sends after its own disconnect is left open by the spec and not checked.)
    peer.transport.write(b"a;b;disconnect;")
    await recorder.when_kind("disconnect")
    await peer.when_lost()
    assert recorder.received() == [b"a", b"b"]
    assert peer.data == DISCONNECT + b";"
    assert server.num_connections() == 0


@pytest_twisted.ensureDeferred
async def test_a_message_that_merely_contains_disconnect_is_delivered(net):
    recorder = Recorder()
    server = await net.server(recorder)
    peer = await net.raw_peer(server.port())
    peer.transport.write(b"disconnected;xdisconnect;disconnect ;")
    await recorder.when_received(3)
    assert recorder.received() == [b"disconnected", b"xdisconnect", b"disconnect "]
    assert not peer.is_lost
    assert server.num_connections() == 1


class Raising(Recorder):
    """Raises from on_receive for any message starting with b"boom", and from on_connect once."""

    def __init__(self, raise_on_connect: bool = False) -> None:
        super().__init__()
        self.raise_on_connect = raise_on_connect

    def on_connect(self, service, connection):
        super().on_connect(service, connection)
        if self.raise_on_connect:
            raise LookupError("on_connect broke")

    def on_receive(self, service, msg):
        super().on_receive(service, msg)
        if msg.startswith(b"boom"):
            raise KeyError(msg)


@pytest_twisted.ensureDeferred
async def test_raising_on_receive_goes_to_on_fail_and_later_messages_arrive(net):
    recorder = Raising()
    server = await net.server(recorder)
    peer = await net.raw_peer(server.port())
    peer.transport.write(b"first;boom1;second;boom2;third;")
    await recorder.when_received(5)
    peer.transport.write(b"fourth;")
    await recorder.when_received(6)
    assert recorder.received() == [b"first", b"boom1", b"second", b"boom2", b"third", b"fourth"]
    failures = recorder.of("fail")
    assert [type(f) for f in failures] == [KeyError, KeyError]
    assert [f.args[0] for f in failures] == [b"boom1", b"boom2"]
    # Each failure is reported right after the call that raised it.
    kinds = recorder.kinds()
    assert kinds.index("fail") == kinds.index("receive") + 2
    assert not peer.is_lost
    assert server.num_connections() == 1
    assert recorder.of("disconnect") == []


@pytest_twisted.ensureDeferred
async def test_raising_on_connect_goes_to_on_fail_and_the_link_carries_on(net):
    recorder = Raising(raise_on_connect=True)
    server = await net.server(recorder)
    peer = await net.raw_peer(server.port())
    peer.transport.write(b"hello;")
    await recorder.when_received(1)
    assert recorder.kinds() == ["initialize", "connect", "fail", "receive"]
    assert isinstance(recorder.of("fail")[0], LookupError)
    recorder.of("connect")[0].send(b"reply")
    await peer.when_data(b"reply;")
    assert peer.data == b"reply;"


@pytest_twisted.ensureDeferred
async def test_raising_on_fail_and_on_disconnect_do_not_break_the_service(net):
    class Worse(Recorder):
        def on_receive(self, service, msg):
            super().on_receive(service, msg)
            raise ValueError("receive")

        def on_fail(self, service, error):
            super().on_fail(service, error)
            raise RuntimeError("fail")

        def on_disconnect(self, service, connection):
            super().on_disconnect(service, connection)
            raise RuntimeError("disconnect")

    recorder = Worse()
    server = await net.server(recorder)
    first = await net.raw_peer(server.port())
    first.transport.write(b"a;b;")
    await recorder.when_received(2)
    first.transport.loseConnection()
    await recorder.when_kind("disconnect")
    second = await net.raw_peer(server.port())
    second.transport.write(b"c;")
    await recorder.when_received(3)
    assert recorder.received() == [b"a", b"b", b"c"]
    assert server.num_connections() == 1
    await server.close_in_reactor()
    assert len(recorder.of("disconnect")) == 2


@pytest_twisted.ensureDeferred
async def test_set_callback_chains_with_super(net):
    order = []

    class First(Callback):
        def on_receive(self, service, msg):
            order.append(("first", msg))

    class Second(Recorder):
        def on_receive(self, service, msg):
            order.append(("second", msg))
            self.super(service, msg)
            super().on_receive(service, msg)

    second = Second()
    server = await net.server(First())
    server.set_callback(second)
    peer = await net.raw_peer(server.port())
    peer.transport.write(b"x;y;")
    await second.when_received(2)
    assert order == [("second", b"x"), ("first", b"x"), ("second", b"y"), ("first", b"y")]
