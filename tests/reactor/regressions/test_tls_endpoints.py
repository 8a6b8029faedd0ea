"""Bug 1: ``tls=`` must apply to the ``endpoint=`` form too (a description, or a list of them), not only to the
plain port form: a plain TCP peer gets no LEADS traffic through, a TLS client with a good certificate does."""

from __future__ import annotations

import pytest
import pytest_twisted

from .conftest import LOOPBACK, Recorder, bounded, client_tls, seen, server_tls

pytest.importorskip("OpenSSL", reason="TLS needs the tls extra (pyOpenSSL)")

ENDPOINT = "tcp:0:interface=127.0.0.1"


class Replier(Recorder):
    """Answers ``to <msg>`` to whoever sent ``msg``."""

    def on_receive(self, service, msg):
        super().on_receive(service, msg)
        service.reply(b"to " + msg)


async def check_port_speaks_only_tls(net, pki, server_seen: Replier, port: int) -> None:
    before = len(server_seen.failures)

    # A plain TCP peer speaking LEADS in the clear: the TLS layer must refuse it, no message may get through.
    plain = await net.peer(port)
    plain.transport.write(b"hello in the clear;")
    await seen(server_seen, lambda s: len(s.failures) > before or b"hello in the clear" in s.received)
    assert b"hello in the clear" not in server_seen.received, (
        f"port {port} served a plain TCP peer: tls= was ignored for endpoint=; server saw {server_seen.events}"
    )
    await plain.when_lost(5)
    assert b"to hello" not in plain.data and b"disconnect;" not in plain.data, plain.data[:200]
    assert isinstance(server_seen.failures[before], ConnectionError), server_seen.failures[before]

    # A TLS client with a certificate from our CA round-trips a message.
    client_seen = Recorder()
    client = await net.started_client(port, client_seen, tls=client_tls(pki))
    client.send(b"over tls %d" % port)
    await seen(client_seen, lambda s: len(s.received) >= 1)
    assert client_seen.received == [b"to over tls %d" % port]
    [link] = client_seen.connections
    certificate = link._transport.getPeerCertificate()
    assert certificate is not None and certificate.get_subject().commonName == "regression server"
    await bounded(client.close_in_reactor())


@pytest_twisted.ensureDeferred
async def test_tls_applies_to_an_endpoint_description(net, pki):
    server_seen = Replier()
    server = await net.server(server_seen, endpoint=ENDPOINT, tls=server_tls(pki))
    assert server.port() != 0
    await check_port_speaks_only_tls(net, pki, server_seen, server.port())
    assert server_seen.kinds().count("connect") == 1, "only the TLS client's link came up"


@pytest_twisted.ensureDeferred
async def test_tls_applies_to_every_endpoint_of_a_list(net, pki):
    server_seen = Replier()
    server = await net.server(server_seen, endpoint=[ENDPOINT, ENDPOINT], tls=server_tls(pki))
    ports = [listening.getHost().port for listening in server.listening_ports()]
    assert len(ports) == 2 and len(set(ports)) == 2, ports
    for port in ports:
        await check_port_speaks_only_tls(net, pki, server_seen, port)
    assert server_seen.kinds().count("connect") == 2, "only the TLS clients' links came up"
    assert all(host == LOOPBACK for host in (p.getHost().host for p in server.listening_ports()))
