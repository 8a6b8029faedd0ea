"""TLS as the project configures it: TLS 1.2 offers ECDHE with AEAD ciphers only, a client checks the server's
name, and the settings can prove themselves with a handshake before a server says it is ready."""

from __future__ import annotations

import socket
import ssl

import pytest
import pytest_twisted
from support_net import LOOPBACK, client_tls, make_pki, server_tls
from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, wrapClientTLS
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Factory, Protocol
from zope.interface import implementer

from leads_twisted.comm.tls import TLSOptions, TLSSelfCheckFailed

from .conftest import TIMEOUT, Recorder

pytest.importorskip("OpenSSL", reason="TLS needs the tls extra (pyOpenSSL)")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"), "hardening")


def tls12_handshake(port: int, ciphers: str, pki) -> str:
    """A stdlib TLS 1.2 client offering only ``ciphers``: the suite agreed, or the error's text."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(ciphers)
    context.load_verify_locations(str(pki.ca))
    context.load_cert_chain(str(pki.client.certificate), str(pki.client.private_key))
    with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="localhost") as wrapped:
                return wrapped.cipher()[0]
        except ssl.SSLError as error:
            return f"refused: {error}"


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize(
    ("offered", "accepted"),
    [
        ("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256", True),
        ("ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-CHACHA20-POLY1305", True),
        ("ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA", False),  # CBC with SHA-1
        ("ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES256-SHA384", False),  # CBC
        ("AES128-GCM-SHA256:AES256-GCM-SHA384", False),  # no forward secrecy
        ("DHE-RSA-AES128-GCM-SHA256", False),  # finite-field DH
    ],
)
async def test_tls12_offers_only_ecdhe_with_aead(net, pki, offered, accepted):
    server = await net.server(Recorder(), tls=server_tls(pki))
    result = await threads.deferToThread(tls12_handshake, server.port(), offered, pki)
    if accepted:
        assert not result.startswith("refused"), result
        assert result.startswith("ECDHE-") and ("GCM" in result or "CHACHA20" in result), result
    else:
        assert result.startswith("refused"), f"the server agreed to {result} with a client offering {offered}"


@implementer(IHandshakeListener)
class Ends(Protocol):
    """Fires its factory's ``outcome`` with ``"handshake"`` once TLS is up, or with why its link ended first."""

    def handshakeCompleted(self):
        if not self.factory.outcome.called:
            self.factory.outcome.callback("handshake")
        self.transport.loseConnection()

    def connectionLost(self, reason=None):
        if not self.factory.outcome.called:
            self.factory.outcome.callback(str(reason.value))


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize(("name", "accepted"), [("localhost", True), ("127.0.0.1", True), ("elsewhere.example", False)])
async def test_a_client_refuses_a_server_whose_certificate_names_another_host(net, pki, name, accepted):
    server = await net.server(Recorder(), tls=server_tls(pki))
    factory = Factory.forProtocol(Ends)
    factory.outcome = Deferred()
    endpoint = wrapClientTLS(client_tls(pki).client_options(name), TCP4ClientEndpoint(reactor, LOOPBACK, server.port()))
    await endpoint.connect(factory).addTimeout(TIMEOUT, reactor)
    outcome = await factory.outcome.addTimeout(TIMEOUT, reactor)
    if accepted:
        assert outcome == "handshake"
    else:
        assert "does not name 'elsewhere.example'" in outcome, outcome


def test_self_check_passes_for_good_settings(pki):
    server_tls(pki).self_check()
    TLSOptions(pki.server.certificate, pki.server.private_key).self_check()
    # Requiring clients of another CA still proves the settings: the refusal is the handshake's last step.
    TLSOptions(pki.server.certificate, pki.server.private_key, pki.other_ca).self_check()


def test_self_check_names_what_is_wrong(pki):
    mismatched = TLSOptions(pki.server.certificate, pki.client.private_key, pki.ca)
    with pytest.raises(TLSSelfCheckFailed, match="cannot be used"):
        mismatched.self_check()
