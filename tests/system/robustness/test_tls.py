"""TLS with client certificates: a mutual-TLS round trip; a client from another CA, or with no certificate,
or speaking plain TCP, is refused cleanly while the server keeps serving the others."""

from __future__ import annotations

import pytest
import pytest_twisted
from support_net import LOOPBACK, RawPeer, client_tls, server_tls
from twisted.internet import reactor

from leads_twisted.comm.tls import TLSOptions

from .harness import Recorder

pytest.importorskip("OpenSSL", reason="TLS needs the tls extra (pyOpenSSL)")


class Replier(Recorder):
    """Answers ``to <msg>`` to whoever sent ``msg``."""

    def on_receive(self, service, msg):
        service.reply(b"to " + msg)
        super().on_receive(service, msg)


async def exchange(client_recorder: Recorder, client, msg: bytes) -> None:
    before = len(client_recorder.of("receive"))
    client.send(msg)
    await client_recorder.when_count("receive", before + 1)
    assert client_recorder.of("receive")[before] == b"to " + msg


async def refused_attempt(net, port: int, tls: TLSOptions | None) -> tuple[Recorder, object, Exception | None]:
    """Start a client that the server should refuse; returns its recorder, the client, and the start error.

    Under TLS 1.3 a client finishes its side of the handshake before the server has checked its certificate;
    the client waits for the server's answer, so the refusal shows as a failed start (tests/reactor/
    test_tls_refusal.py says how); the rest of this helper only shows what would slip through otherwise.
    """
    recorder = Recorder()
    client = net.client(port, recorder, tls=tls)
    try:
        await client.start_in_reactor(LOOPBACK).addTimeout(10, reactor)
    except OSError as error:
        return recorder, client, error
    await recorder.when_count("connect")
    # If the link came up on this side, try to slip a message through before it ends.
    connection = recorder.of("connect")[0]
    if not connection.closed():
        connection.send(b"let me in")
    await recorder.when_count("disconnect", timeout=10)
    return recorder, client, None


@pytest_twisted.ensureDeferred
async def test_mutual_tls_round_trip(net, pki):
    server_recorder = Replier()
    server = await net.server(server_recorder, tls=server_tls(pki))
    client_recorder = Recorder()
    client = await net.started_client(server.port(), client_recorder, tls=client_tls(pki))
    await exchange(client_recorder, client, b"hello over tls")

    [link] = server_recorder.of("connect")
    peer_certificate = link._transport.getPeerCertificate()
    assert peer_certificate is not None, "the server did not ask for the client's certificate"
    assert peer_certificate.get_subject().commonName == "leads test client"
    assert server_recorder.of("receive") == [b"hello over tls"]
    assert server_recorder.of("fail") == [] and client_recorder.of("fail") == []


@pytest.mark.parametrize("who", ["other-ca", "no-certificate"])
@pytest_twisted.ensureDeferred
async def test_a_client_without_a_certificate_from_our_ca_is_refused_and_others_carry_on(net, pki, who):
    server_recorder = Replier()
    server = await net.server(server_recorder, tls=server_tls(pki))
    good_recorder = Recorder()
    good = await net.started_client(server.port(), good_recorder, tls=client_tls(pki))
    await exchange(good_recorder, good, b"before")

    tls = client_tls(pki, pki.stranger) if who == "other-ca" else TLSOptions(ca_certificate=pki.ca)
    recorder, _, start_error = await refused_attempt(net, server.port(), tls)
    await server_recorder.when_count("fail")
    await exchange(good_recorder, good, b"after")

    assert len(server_recorder.of("connect")) == 1, "the server let the refused client's link up"
    assert server_recorder.of("receive") == [b"before", b"after"]
    [error] = server_recorder.of("fail")
    assert isinstance(error, ConnectionError), error
    assert recorder.of("receive") == []
    assert isinstance(start_error, ConnectionRefusedError), start_error
    assert recorder.of("connect") == [], "on_connect fired for a link the server refused"
    assert server.num_connections() == 1 and not good_recorder.of("disconnect")


@pytest_twisted.ensureDeferred
async def test_a_plain_tcp_client_on_a_tls_port_fails_cleanly(net, pki, leads_log):
    server_recorder = Replier()
    server = await net.server(server_recorder, tls=server_tls(pki))
    good_recorder = Recorder()
    good = await net.started_client(server.port(), good_recorder, tls=client_tls(pki))

    plain_recorder = Recorder()
    plain = await net.started_client(server.port(), plain_recorder)  # TCP connects; TLS is never spoken
    plain.send(b"hello in the clear")
    await plain_recorder.when_count("disconnect", timeout=10)
    await server_recorder.when_count("fail")
    await exchange(good_recorder, good, b"still served")

    assert plain_recorder.of("receive") == [] and plain_recorder.of("fail") == []
    assert plain.state.value == "closed"
    assert len(server_recorder.of("connect")) == 1
    assert server_recorder.of("receive") == [b"still served"]
    [error] = server_recorder.of("fail")
    assert isinstance(error, ConnectionError), error
    # The log names the peer whose handshake failed.
    assert any("TLS handshake with 127.0.0.1:" in line for line in leads_log), leads_log


@pytest_twisted.ensureDeferred
async def test_a_silent_plain_peer_on_a_tls_port_is_cut_by_the_handshake_timeout(net, pki):
    server_recorder = Recorder()
    server = await net.server(server_recorder, tls=server_tls(pki), handshake_timeout=0.5)
    silent = await net.peer(RawPeer(), server.port())
    await silent.when_lost(timeout=5)
    await server_recorder.when_count("fail")
    assert server_recorder.of("connect") == [] and server_recorder.of("disconnect") == []
    assert isinstance(server_recorder.of("fail")[0], ConnectionError)
    assert server.num_connections() == 0


@pytest_twisted.ensureDeferred
async def test_a_client_that_does_not_trust_the_server_refuses_it(net, pki):
    server_recorder = Recorder()
    server = await net.server(server_recorder, tls=server_tls(pki))
    recorder = Recorder()
    client = net.client(server.port(), recorder, tls=client_tls(pki, ca=pki.other_ca))
    with pytest.raises(OSError):
        await client.start_in_reactor(LOOPBACK).addTimeout(10, reactor)
    assert recorder.of("connect") == [] and len(recorder.of("fail")) == 1
    assert server_recorder.of("connect") == []
