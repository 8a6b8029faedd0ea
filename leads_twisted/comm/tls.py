"""TLS settings for servers and clients, including client-certificate checks (mutual TLS).

The OpenSSL contexts are built here rather than by Twisted's certificate options, for two reasons:

- No Python callback is ever handed to OpenSSL. A callback makes cffi allocate memory that is writable and
  executable, which the kernel refuses under systemd's ``MemoryDenyWriteExecute=yes`` (the shipped unit): the
  checks are OpenSSL's own (peer verification against the CA) or run after the handshake in Python (the
  server's name, through ``service_identity``), before a single byte of the link is delivered.
- The protocol suites are ours: TLS 1.2 offers only ECDHE key exchange with AEAD ciphers; TLS 1.3 is left as
  OpenSSL has it (all AEAD).

Needs the ``tls`` extra (pyOpenSSL and service_identity).
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IOpenSSLClientConnectionCreator, IOpenSSLServerConnectionCreator
from zope.interface import implementer

if TYPE_CHECKING:  # pyOpenSSL and cryptography are imported only by those who use TLS
    from cryptography.x509 import Certificate
    from OpenSSL.SSL import Connection, Context
    from twisted.protocols.tls import TLSMemoryBIOProtocol

#: The TLS 1.2 suites offered: forward secrecy (ECDHE) and authenticated encryption (AES-GCM, ChaCha20) only.
TLS12_CIPHERS: bytes = b"ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"


class TLSSelfCheckFailed(RuntimeError):
    """The TLS settings could not complete a handshake with themselves in this process."""


def _read_pem(value: str | bytes | Path) -> bytes:
    """PEM bytes as given, or read from the file a path names."""
    if isinstance(value, bytes):
        return value
    return Path(value).read_bytes()


def _certificates(pem: bytes) -> list[Certificate]:
    from cryptography import x509

    certificates = x509.load_pem_x509_certificates(pem)
    if not certificates:
        raise ValueError("no PEM certificate found")
    return certificates


@dataclass(frozen=True)
class TLSOptions:
    """Certificate, key and trust for one end of a TLS link; each a PEM file path or PEM bytes.

    - A server needs ``certificate`` and ``private_key``; with ``ca_certificate`` it requires every client
      to present a certificate signed by that CA and refuses the others.
    - A client needs ``ca_certificate`` to check the server (or trusts the platform's CAs without it), and
      gives ``certificate`` and ``private_key`` when the server asks for a client certificate.

    ``certificate`` may hold a chain: the first certificate is this end's, the others are sent with it.
    """

    certificate: str | bytes | Path | None = None
    private_key: str | bytes | Path | None = None
    ca_certificate: str | bytes | Path | None = None

    def _context(self, server: bool) -> Context:
        """A fresh OpenSSL context with this end's identity and trust, and no Python callback."""
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
        from OpenSSL import SSL, crypto

        context = SSL.Context(SSL.TLS_SERVER_METHOD if server else SSL.TLS_CLIENT_METHOD)
        context.set_min_proto_version(SSL.TLS1_2_VERSION)
        context.set_cipher_list(TLS12_CIPHERS)
        context.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION)
        if server:
            context.set_options(SSL.OP_CIPHER_SERVER_PREFERENCE)
        if self.certificate is not None and self.private_key is not None:
            own, *chain = _certificates(_read_pem(self.certificate))
            context.use_certificate(own)
            for extra in chain:
                context.add_extra_chain_cert(extra)
            # Any: cryptography loads kinds (X25519, DH...) that pyOpenSSL's hint leaves out; OpenSSL refuses them.
            key: Any = load_pem_private_key(_read_pem(self.private_key), None)
            context.use_privatekey(key)
            context.check_privatekey()
        if self.ca_certificate is not None:
            store = context.get_cert_store()
            assert store is not None
            for authority in _certificates(_read_pem(self.ca_certificate)):
                store.add_cert(crypto.X509.from_cryptography(authority))
        elif not server:
            context.set_default_verify_paths()
        if server:
            # Needed for client certificates and session resumption to work together; no cache is kept.
            context.set_session_id(b"leads-comm")
            context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
            if self.ca_certificate is not None:
                context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT)
        else:
            context.set_verify(SSL.VERIFY_PEER)
        return context

    def server_options(self) -> ServerTLS:
        """The connection creator for a listening endpoint; raises ``ValueError`` (or OpenSSL's error) if the
        certificate or key cannot be used."""
        if self.certificate is None or self.private_key is None:
            raise ValueError("a TLS server needs both certificate and private_key")
        return ServerTLS(self._context(server=True))

    def client_options(self, hostname: str) -> ClientTLS:
        """The connection creator for a client connecting to ``hostname``, which the server's certificate
        must name (a DNS name, or an IP address)."""
        return ClientTLS(self._context(server=False), hostname)

    def self_check(self) -> None:
        """Complete a handshake between these server settings and a probe client, in this process.

        It proves that TLS can run here (OpenSSL loads the certificate and key, no memory the sandbox refuses
        is needed, the suites meet) before a server says it is ready. The probe presents the server's own
        certificate as its client certificate; a server that requires certificates from another CA refuses
        it, which proves as much, since that refusal is the last step of the handshake.
        Raises ``TLSSelfCheckFailed`` saying why.
        """
        from OpenSSL import SSL

        try:
            server = SSL.Connection(self.server_options().context, None)
            probe_context = TLSOptions(self.certificate, self.private_key)._context(server=False)
            probe_context.set_verify(SSL.VERIFY_NONE)
            probe = SSL.Connection(probe_context, None)
        except MemoryError as error:
            raise TLSSelfCheckFailed(_memory_hint(error)) from error
        except Exception as error:
            raise TLSSelfCheckFailed(f"the TLS settings cannot be used: {error}") from error
        server.set_accept_state()
        probe.set_connect_state()
        try:
            _handshake_in_memory(probe, server)
        except MemoryError as error:
            raise TLSSelfCheckFailed(_memory_hint(error)) from error
        except SSL.Error as error:
            if _refused_probe_certificate(error):
                return
            raise TLSSelfCheckFailed(f"a handshake with itself failed: {describe_tls_error(error)}") from error


def _memory_hint(error: MemoryError) -> str:
    if "write+execute" not in str(error):
        return f"TLS ran out of memory: {error}"
    return (
        "OpenSSL was handed a Python callback, which needs writable and executable memory, and this process may "
        "not have any (systemd's MemoryDenyWriteExecute=yes); remove what sets pyOpenSSL callbacks (leads_twisted "
        "sets none), or lift MemoryDenyWriteExecute= for this service in a drop-in"
    )


def _handshake_in_memory(client: Connection, server: Connection, rounds: int = 10) -> None:
    """Drive a handshake between two memory-BIO connections; raises OpenSSL's error if one refuses."""
    from OpenSSL import SSL

    pending = [client, server]
    for _ in range(rounds):
        for this, other in ((client, server), (server, client)):
            if this in pending:
                with contextlib.suppress(SSL.WantReadError):
                    this.do_handshake()
                    pending.remove(this)
            with contextlib.suppress(SSL.WantReadError):
                other.bio_write(this.bio_read(1 << 16))
        if not pending:
            # Over TLS 1.3 the server may check the client's certificate on its first read after the handshake.
            with contextlib.suppress(SSL.WantReadError):
                server.recv(1)
            return
    raise SSL.Error([("", "", "the handshake did not finish")])


def _refused_probe_certificate(error: Exception) -> bool:
    text = describe_tls_error(error).lower()
    return "certificate verify failed" in text or "unknown ca" in text


def describe_tls_error(error: BaseException) -> str:
    """OpenSSL's error list as one short line (its reasons), or the error's own text."""
    entries = error.args[0] if error.args and isinstance(error.args[0], list) else []
    reasons = [str(entry[-1]) for entry in entries if isinstance(entry, tuple) and entry]
    return "; ".join(reasons) if reasons else str(error) or type(error).__name__


@implementer(IOpenSSLServerConnectionCreator)
class ServerTLS:
    """Makes the OpenSSL connection of each accepted link from one server context (Twisted's
    ``IOpenSSLServerConnectionCreator``)."""

    def __init__(self, context: Context) -> None:
        self.context: Context = context

    def serverConnectionForTLS(self, protocol: TLSMemoryBIOProtocol) -> Connection:
        from OpenSSL import SSL

        return SSL.Connection(self.context, None)


@implementer(IOpenSSLClientConnectionCreator)
class ClientTLS:
    """Makes the OpenSSL connection of a client's link: it verifies the server's chain in OpenSSL, and the
    server's name once the handshake is done (Twisted's ``IOpenSSLClientConnectionCreator``)."""

    def __init__(self, context: Context, hostname: str) -> None:
        self.context: Context = context
        self.hostname: str = hostname

    def clientConnectionForTLS(self, protocol: TLSMemoryBIOProtocol) -> Connection:
        connection = _name_checking_class()(self.context, self.hostname)
        if not _is_ip(self.hostname):
            connection.set_tlsext_host_name(self.hostname.encode("idna"))
        return connection


def _is_ip(hostname: str) -> bool:
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        return False
    return True


@functools.cache
def _name_checking_class() -> Callable[[Context, str], Connection]:
    """The connection class, made on first use: pyOpenSSL is imported only by those who use TLS."""
    from OpenSSL import SSL

    class NameCheckingConnection(SSL.Connection):
        """An OpenSSL client connection whose handshake ends only once the server's certificate names the host
        the client asked for; otherwise it fails as a handshake does, with an ``SSL.Error`` saying so."""

        def __init__(self, context: Context, hostname: str) -> None:
            super().__init__(context, None)
            self._expected_name: str = hostname

        def do_handshake(self) -> None:
            super().do_handshake()
            from service_identity import VerificationError
            from service_identity.pyopenssl import verify_hostname, verify_ip_address

            try:
                if _is_ip(self._expected_name):
                    verify_ip_address(self, self._expected_name)
                else:
                    verify_hostname(self, self._expected_name)
            except VerificationError as error:
                raise SSL.Error(
                    [("", "", f"the server's certificate does not name {self._expected_name!r} ({error})")]
                ) from None

    return NameCheckingConnection
