"""Bugs 4 and 5: ``max_connections``.

4. A peer refused for being over the limit reads ``disconnect;`` and then a clean end of stream, as LEADS 0.9.x
   peers (which loop on ``recv``) need in order to stop; ``refused_connections`` counts it.
5. Over TLS, links still in their handshake count: with ``max_connections=1`` and five clients connecting at
   once, there is never more than one connection, and the other four are refused.
"""

from __future__ import annotations

import contextlib

import pytest
import pytest_twisted
from twisted.internet.defer import DeferredList
from twisted.internet.error import ConnectionDone

from .conftest import RawPeer, Recorder, client_tls, seen, server_tls, settle, until


class Echo(Recorder):
    def on_receive(self, service, msg):
        super().on_receive(service, msg)
        service.reply(b"echo " + msg)


class Concurrency(Recorder):
    """Notes the most connections the server held at once, as seen at each ``on_connect``."""

    def __init__(self) -> None:
        super().__init__()
        self.open = 0
        self.most = 0
        self.most_listed = 0

    def on_connect(self, service, connection):
        self.open += 1
        self.most = max(self.most, self.open)
        self.most_listed = max(self.most_listed, service.num_connections())
        super().on_connect(service, connection)

    def on_disconnect(self, service, connection):
        self.open -= 1
        super().on_disconnect(service, connection)


@pytest_twisted.ensureDeferred
async def test_a_refused_peer_reads_disconnect_then_end_of_stream(net):
    server_seen = Echo()
    server = await net.server(server_seen, max_connections=1)
    first_seen = Recorder()
    first = await net.started_client(server.port(), first_seen)
    await seen(server_seen, lambda s: len(s.connections) == 1)

    refused = await net.peer(server.port(), RawPeer())
    await refused.when_lost(5)
    assert refused.data == b"disconnect;", f"a refused LEADS 0.9.x peer would wait for more: got {refused.data!r}"
    assert refused.lost_reason is not None and refused.lost_reason.check(ConnectionDone), (
        f"the refused link should end with a clean EOF after the goodbye, not {refused.lost_reason!r}"
    )
    assert server.refused_connections == 1
    assert server.num_connections() == 1

    # The connection within the limit carries on.
    first.send(b"still here")
    await seen(first_seen, lambda s: len(s.received) >= 1)
    assert first_seen.received == [b"echo still here"]
    assert server_seen.received == [b"still here"] and len(server_seen.connections) == 1


@pytest_twisted.ensureDeferred
async def test_max_connections_over_tls_counts_links_in_their_handshake(net, pki):
    pytest.importorskip("OpenSSL", reason="TLS needs the tls extra (pyOpenSSL)")
    server_seen = Concurrency()
    server = await net.server(server_seen, max_connections=1, tls=server_tls(pki))
    clients_seen = [Recorder() for _ in range(5)]
    clients = [net.client(server.port(), seen_, tls=client_tls(pki)) for seen_ in clients_seen]
    starts = [client.start_in_reactor("127.0.0.1") for client in clients]  # all in the same reactor turn
    results = await settle(DeferredList(starts, consumeErrors=True), "the five TLS clients' starts")

    def turned_away() -> int:
        """Clients whose start failed, or whose link ended (under TLS 1.3 a client may finish its side of the
        handshake before the server has refused it)."""
        return sum(1 for (ok, _), s in zip(results[1], clients_seen, strict=True) if not ok or s.disconnections)

    with contextlib.suppress(TimeoutError):  # the assertions below say what went wrong
        await until(
            lambda: server.refused_connections >= 4 and turned_away() >= 4 and server_seen.connections,
            "four refusals, and the server's side of the one link admitted",
            5,
        )

    assert server_seen.most <= 1 and server_seen.most_listed <= 1, (
        f"{server_seen.most} connections at once over TLS with max_connections=1 (refused {server.refused_connections})"
    )
    assert server.refused_connections >= 4
    assert len(server_seen.connections) == 1, (
        f"server: {server_seen.events}; refused {server.refused_connections}; "
        f"clients: {[client_seen.events for client_seen in clients_seen]}"
    )
    assert server.num_connections() <= 1
    assert turned_away() == 4, [client_seen.events for client_seen in clients_seen]
