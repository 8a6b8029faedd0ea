"""The worked example of a custom transport (``examples/udp_link.py``, shown in the docs) used with the same
Server and Client machinery: callbacks, framing, ``sender()``, ``broadcast``, closing from either side."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import pytest_twisted
from support import load_example
from twisted.internet import reactor, threads

from leads_twisted.comm import Callback, ConnectionBase, Service
from leads_twisted.testing import Recorder

from .conftest import bounded

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "udp_link.py"


udp = load_example(EXAMPLE, "leads_udp_link_example")


class Echo(Callback):
    def on_receive(self, service: Service, msg: bytes) -> None:
        service.reply(b"echo:" + msg)


def test_the_docs_show_the_example_as_it_is_tested():
    example = EXAMPLE.read_text()
    shown = []
    for document in (ROOT / "docs" / "transports.md", ROOT / "README.md"):
        if document.exists():
            shown += re.findall(r"```python\n(.*?)```", document.read_text(), flags=re.S)
    assert example in shown, "docs/transports.md (or the README) must show examples/udp_link.py verbatim"


async def start_pair(services):
    server_seen, client_seen = Recorder(), Recorder()
    server_seen.bind_chain(Echo())
    server = await services.server(server_seen, endpoint=udp.UDPServerEndpoint(reactor, 0))
    assert server.port() != 0, "the UDP port's number, as for TCP"
    client = await services.client(client_seen, endpoint=udp.UDPClientEndpoint(reactor, "127.0.0.1", server.port()))
    return server, server_seen, client, client_seen


@pytest_twisted.ensureDeferred
async def test_messages_replies_and_broadcast(services):
    server, server_seen, client, client_seen = await start_pair(services)
    [link] = client_seen.connections
    assert isinstance(link, udp.DatagramConnection) and isinstance(link, ConnectionBase)

    messages = [b"m%03d" % i for i in range(200)]
    for msg in messages:
        client.send(msg)
    await bounded(server_seen.when(lambda seen: len(seen.received) == len(messages)))
    assert server_seen.received == messages
    [peer] = server_seen.connections
    assert server.connections() == [peer]
    assert all(sender is peer for sender in server_seen.senders), "sender() is the custom connection"
    await bounded(client_seen.when(lambda seen: len(seen.received) == len(messages)))
    assert client_seen.received == [b"echo:" + msg for msg in messages]

    server.broadcast(b"to everyone")
    await bounded(client_seen.when(lambda seen: seen.received[-1:] == [b"to everyone"]))
    with pytest.raises(ValueError, match="separator"):
        client.send(b"two;messages")


@pytest_twisted.ensureDeferred
async def test_send_from_another_thread(services):
    _, server_seen, client, client_seen = await start_pair(services)
    client.send(b"hello")
    await bounded(server_seen.when(lambda seen: seen.received == [b"hello"]))
    [peer] = server_seen.connections
    messages = [b"t%03d" % i for i in range(100)]
    await bounded(threads.deferToThread(lambda: [peer.send(msg) for msg in messages]))
    await bounded(client_seen.when(lambda seen: len(seen.received) == 1 + len(messages)))
    assert client_seen.received == [b"echo:hello", *messages]
    # The client's own send from a thread: the queue offers a quiet link's message to the link first, and a
    # custom link declines it.
    requests = [b"c%03d" % i for i in range(20)]
    await bounded(threads.deferToThread(lambda: [client.send(msg) for msg in requests]))
    await bounded(server_seen.when(lambda seen: len(seen.received) == 1 + len(requests)))
    assert server_seen.received == [b"hello", *requests]


@pytest_twisted.ensureDeferred
async def test_client_close_is_seen_by_both(services):
    server, server_seen, client, client_seen = await start_pair(services)
    client.send(b"hello")
    await bounded(server_seen.when(lambda seen: seen.received == [b"hello"]))
    [peer] = server_seen.connections
    await bounded(client.close_in_reactor())
    await bounded(server_seen.when(lambda seen: seen.disconnections == [peer]))
    assert client_seen.kinds()[-1] == "disconnect" and client_seen.kinds().count("disconnect") == 1
    assert server.num_connections() == 0
    with pytest.raises(OSError):
        client_seen.connections[0].send(b"after the end")


@pytest_twisted.ensureDeferred
async def test_server_close_is_seen_by_both(services):
    server, server_seen, client, client_seen = await start_pair(services)
    client.send(b"hello")
    await bounded(server_seen.when(lambda seen: seen.received == [b"hello"]))
    await bounded(server.close_in_reactor())
    await bounded(client_seen.when(lambda seen: seen.disconnections))
    assert server_seen.kinds() == ["initialize", "connect", "receive", "disconnect"], server_seen.events
    assert client_seen.kinds() == ["initialize", "connect", "receive", "disconnect"]
