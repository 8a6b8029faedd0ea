"""5,000 clients connecting at once all get in within seconds, and each exchanges a message."""

from __future__ import annotations

import resource
import time

import pytest
import pytest_twisted
from support_net import RawPeer, connect
from twisted.internet.defer import gatherResults

CLIENTS = 5_000
#: Both ends of every link are open at once: the server's in its process, the clients' in this one.
FILES_NEEDED = CLIENTS + 1_000
#: "Within seconds": a SYN the full accept queue dropped is retried after 1 s, then 3 s.
ALL_IN_SECONDS = 20.0


class EchoOnce(RawPeer):
    """Asks for ``echo:N`` as soon as it is connected."""

    def __init__(self, index: int) -> None:
        super().__init__(keep_bytes=False)
        self.index = index

    def connectionMade(self) -> None:
        self.transport.write(b"echo:%d;" % self.index)


@pytest.fixture
def open_files():
    """Raise this process's RLIMIT_NOFILE for the clients' sockets, and put it back afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < FILES_NEEDED:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {FILES_NEEDED}: cannot hold {CLIENTS} client sockets")
    if soft < FILES_NEEDED:
        resource.setrlimit(resource.RLIMIT_NOFILE, (FILES_NEEDED, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest_twisted.ensureDeferred
async def test_5000_simultaneous_connections_each_exchange_a_message(processes, open_files):
    server = await processes.server(nofile=FILES_NEEDED, events=False)
    assert server.of("listening")[0]["nofile"] >= FILES_NEEDED, server.describe()
    peers = [EchoOnce(i) for i in range(CLIENTS)]
    began = time.monotonic()
    # Every connection attempt is made before any of them completes: all 5,000 arrive together.
    await gatherResults([connect(peer, server.port, ALL_IN_SECONDS, connect_timeout=ALL_IN_SECONDS) for peer in peers])
    connected = time.monotonic() - began
    await gatherResults([peer.when_messages(1, ALL_IN_SECONDS) for peer in peers])
    answered = time.monotonic() - began
    stats = await server.stats()
    print(f"{CLIENTS} clients: all connected in {connected:.1f} s, all answered in {answered:.1f} s")

    wrong = [(peer.index, peer.messages) for peer in peers if peer.messages != [b"%d" % peer.index]]
    assert wrong == [], wrong[:5]
    assert not any(peer.is_lost for peer in peers)
    assert stats["connections"] == CLIENTS, stats
    assert stats["fails"] == {}, stats

    for peer in peers:
        peer.transport.loseConnection()
    assert (await server.wait("connections", 0, 30))["value"] == 0
    await gatherResults([peer.when_lost() for peer in peers])
    stats = await server.stats()
    assert stats["counts"] == {"connect": CLIENTS, "disconnect": CLIENTS}, stats
    assert stats["repeated_connects"] == [] and stats["repeated_disconnects"] == [], stats
