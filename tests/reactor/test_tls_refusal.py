"""TLS 1.3: a client the server refuses (certificate from another CA, or none) does not look connected:
``start`` fails with an error saying the server refused the certificate, ``on_fail`` gets it, and
``on_connect`` never fires. A client the server accepts is up as before, one record later."""

from __future__ import annotations

import time

import pytest
import pytest_twisted
from support_net import Recorder, client_tls, make_pki, server_tls

from leads_twisted.comm.tls import TLSOptions

pytest.importorskip("OpenSSL", reason="TLS needs the tls extra (pyOpenSSL)")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("refusal-pki"), "refusal")


@pytest.mark.parametrize("who", ["other-ca", "no-certificate"])
@pytest_twisted.ensureDeferred
async def test_a_refused_client_fails_to_start_and_never_connects(net, pki, who):
    server_recorder = Recorder()
    server = await net.server(server_recorder, tls=server_tls(pki))
    tls = client_tls(pki, pki.stranger) if who == "other-ca" else TLSOptions(ca_certificate=pki.ca)
    recorder = Recorder()
    with pytest.raises(ConnectionRefusedError) as raised:
        await net.client(server.port(), recorder, tls=tls)
    assert "refused this client's TLS certificate" in str(raised.value)
    assert recorder.of("connect") == [] and recorder.of("disconnect") == []
    [reported] = recorder.of("fail")
    assert isinstance(reported, ConnectionRefusedError) and "refused this client's TLS certificate" in str(reported)
    await server_recorder.when_kind("fail")
    assert server_recorder.of("connect") == []


@pytest_twisted.ensureDeferred
async def test_an_accepted_client_is_up_once_the_server_has_answered(net, pki):
    server_recorder = Recorder()
    server = await net.server(server_recorder, tls=server_tls(pki))
    recorder = Recorder()
    started = time.monotonic()
    client = await net.client(server.port(), recorder, tls=client_tls(pki))
    took = time.monotonic() - started
    print(f"TLS 1.3 client start, waiting for the server's acceptance: {took * 1000:.1f} ms")
    assert took < 0.9, "the server's session ticket, not the fallback wait, told the client it was accepted"
    [connection] = recorder.of("connect")
    connection.send(b"hello")
    await server_recorder.when_received(1)
    assert server_recorder.of("receive") == [b"hello"] and recorder.of("fail") == []
    assert client.connection() is connection
