"""Fixtures of the robustness tests: processes under test, in-process services, and a throwaway PKI."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import DeferredList
from twisted.logger import formatEvent, globalLogPublisher

from leads_twisted.comm import Callback, Client, Server

from .harness import LOOPBACK, TIMEOUT, RawPeer, Recorder, ScriptProcess, ServerProcess, connect


@pytest.fixture
def leads_log():
    """The lines the library logs (namespaces ``leads_twisted*``) while the test runs, formatted."""
    lines: list[str] = []

    def observe(event):
        if event.get("log_namespace", "").startswith("leads_twisted"):
            lines.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    yield lines
    globalLogPublisher.removeObserver(observe)


@pytest.fixture
def processes():
    """Starts ``ServerProcess``es (and other scripts) and kills whichever still runs when the test ends."""
    started: list[ScriptProcess] = []

    class Processes:
        async def server(self, **config: Any) -> ServerProcess:
            process = ServerProcess(config)
            started.append(process)
            return await process.started()

        def add(self, process: ScriptProcess) -> ScriptProcess:
            started.append(process)
            return process

    yield Processes()
    for process in started:
        process.kill()


class Net:
    """Servers, clients and raw peers in the test process, on loopback; all ended when the test is over."""

    def __init__(self) -> None:
        self.services: list[Server | Client] = []
        self.peers: list[RawPeer] = []

    async def server(self, callback: Callback | None = None, **options: Any) -> Server:
        options.setdefault("interface", LOOPBACK)
        server = Server(0, callback, **options)
        self.services.append(server)
        await server.start_in_reactor().addTimeout(TIMEOUT, reactor)
        return server

    def client(self, port: int, callback: Callback | None = None, **options: Any) -> Client:
        client = Client(port, callback, **options)
        self.services.append(client)
        return client

    async def started_client(self, port: int, callback: Callback | None = None, **options: Any) -> Client:
        client = self.client(port, callback, **options)
        await client.start_in_reactor(LOOPBACK).addTimeout(TIMEOUT, reactor)
        if isinstance(callback, Recorder):
            assert callback.of("connect"), "start_in_reactor fired before on_connect had run"
        return client

    async def peer(self, peer: RawPeer, port: int) -> RawPeer:
        self.peers.append(peer)
        await connect(peer, port)
        return peer

    async def close_all(self) -> None:
        closing = [service.close_in_reactor() for service in self.services]
        for peer in self.peers:
            if peer.transport is not None and not peer.is_lost:
                peer.transport.abortConnection()
            closing.append(peer.when_lost(5))
        await DeferredList(closing, consumeErrors=True).addTimeout(TIMEOUT, reactor)
        still_open = [service for service in self.services if service.state.value != "closed"]
        assert not still_open, f"services still open after close_in_reactor: {still_open}"


@pytest_twisted.async_yield_fixture
async def net():
    helper = Net()
    yield helper
    await helper.close_all()


@dataclass(frozen=True)
class Identity:
    """PEM files of one certificate and its key."""

    certificate: Path
    private_key: Path


@dataclass(frozen=True)
class PKI:
    """Two unrelated CAs; the server and a client signed by ``ca``, a client signed by ``other_ca``."""

    ca: Path
    other_ca: Path
    server: Identity
    client: Identity
    stranger: Identity


def _key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(directory: Path, stem: str, certificate: Any, key: Any) -> Identity:
    from cryptography.hazmat.primitives import serialization

    cert_path = directory / f"{stem}.crt"
    key_path = directory / f"{stem}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Identity(cert_path, key_path)


def _certificate(subject: str, key: Any, issuer: str, issuer_key: Any, *, ca: bool, usage: Any = None) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> PKI:
    """A CA, a server and a client certificate it signed, and a second CA with a client of its own: made now,
    with ``cryptography``, in a temporary directory."""
    from cryptography.x509.oid import ExtendedKeyUsageOID

    directory = tmp_path_factory.mktemp("pki")
    identities = {}
    for ca_name in ("ca", "other_ca"):
        ca_key = _key()
        ca_cert = _certificate(f"leads test {ca_name}", ca_key, f"leads test {ca_name}", ca_key, ca=True)
        identities[ca_name] = (_write(directory, ca_name, ca_cert, ca_key), ca_key)
    leaves = {
        "server": ("ca", ExtendedKeyUsageOID.SERVER_AUTH),
        "client": ("ca", ExtendedKeyUsageOID.CLIENT_AUTH),
        "stranger": ("other_ca", ExtendedKeyUsageOID.CLIENT_AUTH),
    }
    written = {}
    for stem, (ca_name, usage) in leaves.items():
        key = _key()
        cert = _certificate(
            f"leads test {stem}", key, f"leads test {ca_name}", identities[ca_name][1], ca=False, usage=usage
        )
        written[stem] = _write(directory, stem, cert, key)
    return PKI(
        ca=identities["ca"][0].certificate,
        other_ca=identities["other_ca"][0].certificate,
        server=written["server"],
        client=written["client"],
        stranger=written["stranger"],
    )
