"""``certs DIR``: a private CA, a server certificate and client certificates, for the daemon's mutual TLS.

The files are what the daemon and the clients take as they are: ``twistd leads-comm --tls-certificate
DIR/server.crt --tls-key DIR/server.key --tls-ca DIR/ca.crt`` and ``leads-comm listen --tls-ca DIR/ca.crt
--tls-certificate DIR/client.crt --tls-key DIR/client.key``. Keys are ECDSA P-256, written readable by their
owner alone; the CA's key is written too, to sign more clients later: keep it off the vehicle.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from leads_twisted.cli.errors import CommandError

if TYPE_CHECKING:  # cryptography is imported only when certificates are made
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey


def _crypto() -> ModuleType:
    try:
        import cryptography  # noqa: F401
    except ImportError:
        raise CommandError("certs needs the cryptography package: pip install 'leads_twisted[tls]'") from None
    from cryptography import x509

    return x509


def _name(common_name: str) -> x509.Name:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _alternative_names(hosts: list[str]) -> x509.SubjectAlternativeName:
    from cryptography import x509

    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _certificate(
    subject: str,
    key: EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: EllipticCurvePrivateKey,
    days: int,
    role: str,
    hosts: list[str],
) -> x509.Certificate:
    """A certificate: ``role`` is ``ca``, ``server`` (naming ``hosts``) or ``client``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=role == "ca", path_length=0 if role == "ca" else None), critical=True)
    )
    usage = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    if role == "ca":
        usage.update(key_cert_sign=True, crl_sign=True, digital_signature=True)
    else:
        usage.update(digital_signature=True)
        purpose = ExtendedKeyUsageOID.SERVER_AUTH if role == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
    builder = builder.add_extension(x509.KeyUsage(**usage), critical=True)
    if role == "server":
        builder = builder.add_extension(_alternative_names(hosts), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, data: bytes, private: bool) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def make_certificates(options: argparse.Namespace) -> int:
    """Write ``ca``, ``server`` and each client's ``.crt`` and ``.key`` into the directory; print what to use."""
    _crypto()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    directory = Path(options.directory)
    clients = options.client or ["client"]
    hosts = ["localhost", "127.0.0.1", "::1", *options.host]
    stems = ["ca", "server", *clients]
    if len(set(stems)) != len(stems):
        raise CommandError("a client cannot be named ca or server, nor twice")
    for stem in stems:
        if "/" in stem or not stem:
            raise CommandError(f"{stem!r} is not a usable client name")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(f"cannot make {directory}: {error.strerror}") from None
    existing = [str(directory / f"{s}.{x}") for s in stems for x in ("crt", "key") if (directory / f"{s}.{x}").exists()]
    if existing and not options.force:
        raise CommandError(f"{existing[0]} exists; give --force to overwrite, or another directory")

    def key_pem(key: EllipticCurvePrivateKey) -> bytes:
        return bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("leads-comm CA", ca_key, "leads-comm CA", ca_key, options.days, "ca", [])
    made = [("ca", ca, ca_key)]
    server_key = ec.generate_private_key(ec.SECP256R1())
    made.append(
        (
            "server",
            _certificate(
                hosts[-1] if options.host else "localhost",
                server_key,
                "leads-comm CA",
                ca_key,
                options.days,
                "server",
                hosts,
            ),
            server_key,
        )
    )
    for name in clients:
        key = ec.generate_private_key(ec.SECP256R1())
        made.append((name, _certificate(name, key, "leads-comm CA", ca_key, options.days, "client", []), key))
    try:
        for stem, certificate, key in made:
            _write(directory / f"{stem}.crt", certificate.public_bytes(serialization.Encoding.PEM), private=False)
            _write(directory / f"{stem}.key", key_pem(key), private=True)
    except OSError as error:
        raise CommandError(f"cannot write into {directory}: {error.strerror}") from None
    d = directory
    print(f"wrote {', '.join(f'{stem}.crt/.key' for stem in stems)} to {d}")
    print(f"daemon:  twistd leads-comm --tls-certificate {d}/server.crt --tls-key {d}/server.key --tls-ca {d}/ca.crt")
    print(
        f"client:  leads-comm listen HOST:PORT --tls-ca {d}/ca.crt --tls-certificate {d}/{clients[0]}.crt "
        f"--tls-key {d}/{clients[0]}.key"
    )
    return 0
