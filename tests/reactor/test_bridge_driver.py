"""The bridge's socket driver with a real paho client over a real loopback socket: a chunk of QoS 0 packets
cut short by a full socket, then a packet of paho's own (a PUBACK), and the broker side reads every packet
whole and in order."""

from __future__ import annotations

import socket
import struct

import pytest
import pytest_twisted
from paho.mqtt.client import Client, MQTTv311
from paho.mqtt.enums import CallbackAPIVersion
from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from leads_twisted.bridge.paho_reactor import ReactorDriver
from leads_twisted.bridge.publish_batch import PublishEncoder, remaining_length

pytestmark = pytest.mark.timeout(60)


def read_exactly(conn: socket.socket, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {count} bytes")
        data += chunk
    return bytes(data)


def read_packet(conn: socket.socket) -> tuple[int, bytes]:
    """One MQTT packet from the client: first byte and body."""
    first = read_exactly(conn, 1)[0]
    size, shift = 0, 0
    while True:
        digit = read_exactly(conn, 1)[0]
        size += (digit & 0x7F) << shift
        shift += 7
        if not digit & 0x80:
            break
    return first, read_exactly(conn, size)


@pytest_twisted.ensureDeferred
async def test_a_cut_chunk_goes_out_whole_before_paho_writes_again():
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the broker side reads slowly: small
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(10)
    connected: Deferred[None] = Deferred()
    got_down: Deferred[None] = Deferred()
    closed: Deferred[None] = Deferred()
    client = Client(CallbackAPIVersion.VERSION2, client_id="driver-test", protocol=MQTTv311)
    client.on_connect = lambda *args: connected.callback(None)
    client.on_message = lambda *args: got_down.callback(None)
    client.on_disconnect = lambda *args: closed.callback(None)
    sent: list[int] = []
    driver = ReactorDriver(client, reactor, sent=sent.append)
    client.connect("127.0.0.1", listener.getsockname()[1], keepalive=60)
    conn, _ = listener.accept()
    conn.settimeout(10)
    try:
        client.socket().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        connect = await threads.deferToThread(read_packet, conn)
        assert connect[0] == 0x10
        conn.sendall(b"\x20\x02\x00\x00")  # CONNACK, accepted
        await connected

        encoder = PublishEncoder("leads/car1/up")
        messages = [b"m%06d" % i + b"." * 200 for i in range(10_000)]  # 2 MB: far more than the socket takes
        assert driver.can_write()
        assert not driver.write(encoder.encode(messages), messages)
        assert driver.buffered == len(messages) and not driver.can_write()

        # The broker sends a QoS 1 message: paho must answer with a PUBACK while the chunk is still going out.
        topic = b"leads/car1/down"
        body = struct.pack("!H", len(topic)) + topic + struct.pack("!H", 7) + b"hazard"
        conn.sendall(b"\x32" + remaining_length(len(body)) + body)
        await got_down
        await deferLater(reactor, 0, lambda: None)  # paho queues the PUBACK just after its on_message
        assert client.want_write() and driver.buffered == len(messages)

        def read_all() -> list[tuple[int, bytes]]:
            return [read_packet(conn) for _ in range(len(messages) + 1)]

        packets = await threads.deferToThread(read_all)
    finally:
        client.disconnect()  # paho closes its socket once DISCONNECT is out: the reactor is left clean
        await closed.addTimeout(10, reactor)
        conn.close()
        listener.close()
    head = len(b"leads/car1/up") + 2
    assert [body[head:] for first, body in packets[:-1]] == messages
    assert {first for first, _ in packets[:-1]} == {0x30}
    assert packets[-1] == (0x40, b"\x00\x07"), "paho's PUBACK comes after the chunk, whole"
    assert sent == [len(messages)]
