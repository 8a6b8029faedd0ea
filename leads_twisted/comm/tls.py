"""TLS settings for servers and clients, including client-certificate checks (mutual TLS).

Twisted's ``ssl:`` endpoint description cannot require client certificates, so the options are built here
in code. Needs the ``tls`` extra (pyOpenSSL and service_identity).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _read_pem(value: str | bytes | Path) -> bytes:
    """PEM bytes as given, or read from the file a path names."""
    if isinstance(value, bytes):
        return value
    return Path(value).read_bytes()


@dataclass(frozen=True)
class TLSOptions:
    """Certificate, key and trust for one end of a TLS link; each a PEM file path or PEM bytes.

    - A server needs ``certificate`` and ``private_key``; with ``ca_certificate`` it requires every client
      to present a certificate signed by that CA and refuses the others.
    - A client needs ``ca_certificate`` to check the server (or trusts the platform's CAs without it), and
      gives ``certificate`` and ``private_key`` when the server asks for a client certificate.
    """

    certificate: str | bytes | Path | None = None
    private_key: str | bytes | Path | None = None
    ca_certificate: str | bytes | Path | None = None

    def _own_certificate(self) -> Any:
        from twisted.internet import ssl

        if self.certificate is None or self.private_key is None:
            return None
        return ssl.PrivateCertificate.loadPEM(_read_pem(self.certificate) + b"\n" + _read_pem(self.private_key))

    def _authority(self) -> Any:
        from twisted.internet import ssl

        if self.ca_certificate is None:
            return None
        return ssl.Certificate.loadPEM(_read_pem(self.ca_certificate))

    def server_options(self) -> Any:
        """The context factory for a listening endpoint."""
        own = self._own_certificate()
        if own is None:
            raise ValueError("a TLS server needs both certificate and private_key")
        authority = self._authority()
        return own.options(authority) if authority is not None else own.options()

    def client_options(self, hostname: str) -> Any:
        """The connection creator for a client connecting to ``hostname``, which the server's certificate
        must name."""
        from twisted.internet import ssl

        authority = self._authority()
        trust = authority if authority is not None else ssl.platformTrust()
        return ssl.optionsForClientTLS(hostname, trustRoot=trust, clientCertificate=self._own_certificate())
