"""The bridge to a broker that wants TLS (``mqtts://``), a password, and the bridge's own certificate."""

from __future__ import annotations

import subprocess

import pytest
from support import free_port
from support_net import make_pki

from ..daemon.twistd_harness import clients
from .mosquitto import tool

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def secure(make_broker, tmp_path):
    """A broker with a TLS listener (password and client certificate required) beside its plain one, and the
    files a bridge needs: the PKI, and a credentials file for ``car1``."""
    pki = make_pki(tmp_path, "bridge")
    passwords = tmp_path / "passwords"
    subprocess.run([tool("mosquitto_passwd"), "-c", "-b", str(passwords), "car1", "s3cret:;"], check=True, timeout=30)
    tls_port = free_port()
    broker = make_broker(
        settings=(
            "per_listener_settings true",
            f"listener {tls_port} 127.0.0.1",
            f"cafile {pki.ca}",
            f"certfile {pki.server.certificate}",
            f"keyfile {pki.server.private_key}",
            "require_certificate true",
            "allow_anonymous false",
            f"password_file {passwords}",
        )
    ).start()
    credentials = tmp_path / "credentials"
    credentials.write_text("car1\ns3cret:;\n")
    return broker, f"mqtts://localhost:{tls_port}", pki, credentials


def bridge_options(pki, credentials, ca=None):
    return (
        "--bridge-ca",
        str(ca or pki.ca),
        "--bridge-certificate",
        str(pki.client.certificate),
        "--bridge-key",
        str(pki.client.private_key),
        "--bridge-credentials",
        str(credentials),
    )


def test_tls_with_password_and_client_certificate(daemons, secure):
    broker, url, pki, credentials = secure
    sub = broker.subscribe("leads/car1/#")  # on the plain listener, beside the bridge's TLS one
    daemon = daemons.start(
        "--port",
        "0",
        "--interface",
        "127.0.0.1",
        "--bridge",
        url,
        "--vehicle",
        "car1",
        *bridge_options(pki, credentials),
    )
    daemon.wait_for_log("bridge: connected")
    assert sub.messages(1) == [("leads/car1/status", "online")]
    with clients(daemon.port, 1) as [car]:
        car.send(b"over tls")
        assert sub.messages(1) == [("leads/car1/up", "over tls")]
        broker.publish("leads/car1/down", "back")
        assert car.receive(1) == [b"back"]


def test_wrong_password_is_logged_and_retried(daemons, secure, tmp_path):
    _, url, pki, _ = secure
    wrong = tmp_path / "wrong"
    wrong.write_text("car1\nnot it\n")
    daemon = daemons.start(
        "--port", "0", "--interface", "127.0.0.1", "--bridge", url, "--vehicle", "car1", *bridge_options(pki, wrong)
    )
    daemon.wait_for_log("refused the bridge: Not authorized")
    daemon.wait_for_log("next try in")
    with clients(daemon.port, 2) as (car, other):  # the relay is untouched
        car.send(b"local")
        assert other.receive(1) == [b"local"]


def test_broker_certificate_from_another_ca_is_refused(daemons, secure):
    _, url, pki, credentials = secure
    daemon = daemons.start(
        "--port",
        "0",
        "--interface",
        "127.0.0.1",
        "--bridge",
        url,
        "--vehicle",
        "car1",
        *bridge_options(pki, credentials, ca=pki.other_ca),
    )
    log = daemon.wait_for_log("next try in")
    assert "CERTIFICATE_VERIFY_FAILED" in log
