"""Twisted-side helpers shared by the test packages: event waits, raw TCP peers, and a throwaway PKI.

Everything here runs inside pytest-twisted's reactor. Every wait is on an event (a Deferred fired by a
callback or by data arriving) and has a timeout. The subprocess helpers are in ``support``.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.internet import reactor, task
from twisted.internet.defer import Deferred, DeferredList, DeferredQueue
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Factory, Protocol

from leads_twisted.comm import DISCONNECT, Callback, Client, ConnectionBase, Server
from leads_twisted.comm.framing import Decoder
from leads_twisted.comm.tls import TLSOptions

LOOPBACK = "127.0.0.1"
#: The default bound of one wait for an event.
TIMEOUT = 15.0


# Waiting for events inside the reactor.


def timeout_message(what: str, timeout: float, state: Callable[[], str]) -> Callable[[Any, float], Any]:
    def timed_out(result: Any, _timeout: float) -> Any:
        raise TimeoutError(f"waited {timeout} s for {what}; state: {state()}")

    return timed_out


class Waitable:
    """Something that changes on events; ``when(predicate)`` fires once the predicate holds.

    A wait given no timeout is bounded by ``default_timeout``.
    """

    default_timeout: float = TIMEOUT

    def __init__(self) -> None:
        self._waiters: list[tuple[Callable[[], bool], Deferred[None]]] = []

    def changed(self) -> None:
        for entry in list(self._waiters):
            predicate, waiter = entry
            if predicate():
                self._waiters.remove(entry)
                waiter.callback(None)

    def when(self, predicate: Callable[[], bool], what: str = "", timeout: float | None = None) -> Deferred[None]:
        if timeout is None:
            timeout = self.default_timeout
        waiter: Deferred[None] = Deferred()
        if predicate():
            waiter.callback(None)
            return waiter
        entry = (predicate, waiter)
        self._waiters.append(entry)

        def forget(result: Any) -> Any:
            if entry in self._waiters:
                self._waiters.remove(entry)
            return result

        timed_out = timeout_message(what or str(predicate), timeout, self.describe)
        waiter.addTimeout(timeout, reactor, onTimeoutCancel=timed_out)
        waiter.addErrback(forget)
        return waiter

    def describe(self) -> str:
        return repr(self)


def window(seconds: float) -> Deferred[None]:
    """Let ``seconds`` pass on the reactor clock: only to measure over a time window or to observe that
    something does NOT happen, never to wait for something to happen."""
    return task.deferLater(reactor, seconds, lambda: None)


# Raw peers in the test process.


class RawPeer(Protocol, Waitable):
    """A plain TCP peer: keeps the bytes it gets (unless ``keep_bytes`` is false), splits them into messages
    on ``;``, and can write anything. ``connected_d`` and ``lost_d`` fire when the link starts and ends."""

    def __init__(
        self, keep_bytes: bool = True, max_message: int = 64 * 1024 * 1024, default_timeout: float = TIMEOUT
    ) -> None:
        Waitable.__init__(self)
        self.default_timeout = default_timeout
        self.keep_bytes = keep_bytes
        self.data = b""
        self.received_bytes = 0
        self.decoder = Decoder(b";", max_message)
        self.messages: list[bytes] = []
        self.connected_d: Deferred[RawPeer] = Deferred()
        self.lost_d: Deferred[Any] = Deferred()
        self.lost_reason: Any = None

    def connectionMade(self) -> None:
        self.connected_d.callback(self)

    def dataReceived(self, data: bytes) -> None:
        self.received_bytes += len(data)
        if self.keep_bytes:
            self.data += data
        for msg in self.decoder.feed(data):
            self.message(msg)
        self.changed()

    def message(self, msg: bytes) -> None:
        self.messages.append(msg)

    def connectionLost(self, reason: Any = None) -> None:
        self.lost_reason = reason
        self.lost_d.callback(None)  # the reason is kept above; a Failure here would go unhandled
        self.changed()

    @property
    def is_lost(self) -> bool:
        return self.lost_d.called

    def when_data(self, expected: bytes, timeout: float | None = None) -> Deferred[None]:
        """Fire once ``data`` is at least as long as ``expected`` (compare it yourself)."""
        return self.when(lambda: len(self.data) >= len(expected) or self.is_lost, f"{expected[:60]!r}", timeout)

    def when_lost(self, timeout: float | None = None) -> Deferred[None]:
        return self.when(lambda: self.is_lost, "the link to end", timeout)

    def when_messages(self, count: int, timeout: float | None = None) -> Deferred[None]:
        return self.when(lambda: len(self.messages) >= count or self.is_lost, f"{count} messages", timeout)

    def describe(self) -> str:
        return (
            f"{type(self).__name__}(bytes={self.received_bytes}, data={self.data[:200]!r}, "
            f"messages={self.messages[-5:]}, lost={self.is_lost})"
        )


class RawServerFactory(Factory):
    """Accepts links with ``RawPeer``s and hands each one out, in order, through ``accepted``."""

    def __init__(self, timeout: float = TIMEOUT) -> None:
        self.timeout = timeout
        self.peers: list[RawPeer] = []
        self._accepted: DeferredQueue[RawPeer] = DeferredQueue()

    def buildProtocol(self, addr: Any) -> RawPeer:
        peer = RawPeer(default_timeout=self.timeout)
        self.peers.append(peer)
        peer.connected_d.addCallback(self._accepted.put)
        return peer

    def accepted(self, timeout: float | None = None) -> Deferred[RawPeer]:
        return self._accepted.get().addTimeout(self.timeout if timeout is None else timeout, reactor)


def connect(peer: Protocol, port: int, timeout: float = TIMEOUT, connect_timeout: float = 5) -> Deferred[Protocol]:
    """Connect ``peer`` to ``port`` on loopback; fires with the peer once connected."""
    endpoint = TCP4ClientEndpoint(reactor, LOOPBACK, port, timeout=connect_timeout)
    return connectProtocol(endpoint, peer).addTimeout(timeout, reactor)


def abort_peers(peers: list[RawPeer]) -> list[Deferred[None]]:
    """Abort every peer still connected; the waits for each link to end (bounded by 5 s)."""
    ended = []
    for peer in peers:
        if peer.transport is not None and not peer.is_lost:
            peer.transport.abortConnection()
        ended.append(peer.when_lost(5))
    return ended


async def close_and_check(
    closing: list[Deferred[Any]], services: list[Server | Client], peers: list[RawPeer], timeout: float = TIMEOUT
) -> None:
    """Wait (bounded by ``timeout``) for ``closing`` and for ``peers``, aborted, to end; then check every one of
    ``services`` is closed."""
    closing.extend(abort_peers(peers))
    await DeferredList(closing, consumeErrors=True).addTimeout(timeout, reactor)
    still_open = [service for service in services if service.state.value != "closed"]
    assert not still_open, f"services still open after close_in_reactor: {still_open}"


class LoopbackNet:
    """Servers, clients and raw peers in the test reactor, on loopback; each start bounded by ``timeout``.

    The subclass in each test package's conftest says how they are all ended after the test.
    """

    timeout: float = TIMEOUT

    def __init__(self) -> None:
        self.services: list[Server | Client] = []
        self.peers: list[RawPeer] = []

    async def server(self, callback: Callback | None = None, **options: Any) -> Server:
        if "endpoint" not in options:
            options.setdefault("interface", LOOPBACK)
        server = Server(0, callback, **options)
        self.services.append(server)
        await server.start_in_reactor().addTimeout(self.timeout, reactor)
        return server

    def client(self, port: int, callback: Callback | None = None, **options: Any) -> Client:
        client = Client(port, callback, **options)
        self.services.append(client)
        return client

    async def started_client(self, port: int, callback: Callback | None = None, **options: Any) -> Client:
        client = self.client(port, callback, **options)
        await client.start_in_reactor(LOOPBACK).addTimeout(self.timeout, reactor)
        return client


class ListLink(ConnectionBase):
    """The smallest custom link: keeps in ``frames``, in order, each frame it is asked to put on the wire;
    ``close`` says goodbye and reports the end at once, as the contract asks."""

    def __init__(self, service: Server | Client) -> None:
        super().__init__(service.separator)
        self.service = service
        self.frames: list[bytes] = []
        self.ended = False

    def closed(self) -> bool:
        return self.ended

    def send(self, msg: bytes) -> None:
        frame = self.frame(msg)
        if self.ended:
            raise OSError("closed")
        self.frames.append(frame)

    def close(self) -> None:
        if not self.ended:
            self.ended = True
            self.frames.append(self.frame(DISCONNECT))
            self.service.detach(self)


# A throwaway PKI, made with ``cryptography``.


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


def new_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def write_identity(directory: Path, stem: str, certificate: Any, key: Any) -> Identity:
    from cryptography.hazmat.primitives import serialization

    cert_path = directory / f"{stem}.crt"
    key_path = directory / f"{stem}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Identity(cert_path, key_path)


def make_certificate(subject: str, key: Any, issuer: str, issuer_key: Any, *, ca: bool, usage: Any = None) -> Any:
    """A certificate for ``subject`` signed by ``issuer``: a CA, or a leaf naming localhost and 127.0.0.1."""
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


def make_pki(directory: Path, label: str) -> PKI:
    """A CA, a server and a client certificate it signed, and a second CA with a client of its own, written
    to ``directory``; every common name starts with ``label``."""
    from cryptography.x509.oid import ExtendedKeyUsageOID

    cas = {}
    for ca_name in ("ca", "other_ca"):
        ca_key = new_key()
        ca_cert = make_certificate(f"{label} {ca_name}", ca_key, f"{label} {ca_name}", ca_key, ca=True)
        cas[ca_name] = (write_identity(directory, ca_name, ca_cert, ca_key), ca_key)
    leaves = {}
    for stem, ca_name, usage in (
        ("server", "ca", ExtendedKeyUsageOID.SERVER_AUTH),
        ("client", "ca", ExtendedKeyUsageOID.CLIENT_AUTH),
        ("stranger", "other_ca", ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        key = new_key()
        cert = make_certificate(f"{label} {stem}", key, f"{label} {ca_name}", cas[ca_name][1], ca=False, usage=usage)
        leaves[stem] = write_identity(directory, stem, cert, key)
    return PKI(
        ca=cas["ca"][0].certificate,
        other_ca=cas["other_ca"][0].certificate,
        server=leaves["server"],
        client=leaves["client"],
        stranger=leaves["stranger"],
    )


def server_tls(pki: PKI) -> TLSOptions:
    """The server's options: its certificate, checking clients against ``pki.ca``."""
    return TLSOptions(pki.server.certificate, pki.server.private_key, pki.ca)


def client_tls(pki: PKI, identity: Identity | None = None, ca: Path | None = None) -> TLSOptions:
    """A client's options: ``identity`` (the client signed by ``pki.ca`` unless given), checking the server
    against ``ca`` (``pki.ca`` unless given)."""
    identity = identity if identity is not None else pki.client
    return TLSOptions(identity.certificate, identity.private_key, ca if ca is not None else pki.ca)


# One recording callback and one loopback network for every reactor-tier test.

#: The bound of one wait in the reactor tiers.
REACTOR_TIMEOUT = 10.0


class Recorder(Callback, Waitable):
    """A callback that records every call as ``(kind, detail)`` in order."""

    default_timeout = REACTOR_TIMEOUT

    def __init__(self) -> None:
        Callback.__init__(self)
        Waitable.__init__(self)
        self.events: list[tuple[str, Any]] = []
        self.services: list[Any] = []
        #: ``service.sender()`` at each ``on_receive``, in order.
        self.senders_seen: list[Any] = []

    def add(self, kind: str, detail: Any = None) -> None:
        self.events.append((kind, detail))
        self.changed()

    def on_initialize(self, service):
        self.services.append(service)
        self.add("initialize")

    def on_connect(self, service, connection):
        self.add("connect", connection)

    def on_receive(self, service, msg):
        self.senders_seen.append(service.sender())
        self.add("receive", msg)

    def on_fail(self, service, error):
        self.add("fail", error)

    def on_disconnect(self, service, connection):
        self.add("disconnect", connection)

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]

    def of(self, kind: str) -> list[Any]:
        return [detail for k, detail in self.events if k == kind]

    def received(self) -> list[bytes]:
        return self.of("receive")

    def when_received(self, count: int, timeout: float = REACTOR_TIMEOUT) -> Deferred[None]:
        return self.when(lambda: len(self.received()) >= count, f"{count} messages", timeout)

    def when_kind(self, kind: str, count: int = 1, timeout: float = REACTOR_TIMEOUT) -> Deferred[None]:
        return self.when(lambda: len(self.of(kind)) >= count, f"{count} x {kind}", timeout)

    def describe(self) -> str:
        shown = [(k, d if not isinstance(d, bytes) or len(d) < 40 else d[:40] + b"...") for k, d in self.events]
        return f"{len(self.events)} events: {shown[:30]}{' ...' if len(shown) > 30 else ''}"


class Net:
    """Starts servers, clients and raw peers on loopback and ends them all when the test is over."""

    def __init__(self) -> None:
        self.services: list[Server | Client] = []
        self.peers: list[RawPeer] = []
        self.ports: list[Any] = []

    async def server(self, callback: Callback | None = None, **options: Any) -> Server:
        options.setdefault("interface", LOOPBACK)
        server = Server(0, callback, **options)
        self.services.append(server)
        await server.start_in_reactor().addTimeout(REACTOR_TIMEOUT, reactor)
        assert server.port() != 0
        return server

    async def client(self, port: int, callback: Callback | None = None, **options: Any) -> Client:
        client = Client(port, callback, **options)
        self.services.append(client)
        await client.start_in_reactor(LOOPBACK).addTimeout(REACTOR_TIMEOUT, reactor)
        return client

    async def raw_peer(self, port: int) -> RawPeer:
        peer = RawPeer(default_timeout=REACTOR_TIMEOUT)
        self.peers.append(peer)
        await connect(peer, port, REACTOR_TIMEOUT)
        return peer

    async def linked_peer(self, callback: Recorder, **options: Any) -> tuple[Any, RawPeer]:
        """A server with ``callback``, a raw peer linked to it, and the server's connection to that peer."""
        server = await self.server(callback, **options)
        peer = await self.raw_peer(server.port())
        await callback.when_kind("connect")
        return callback.of("connect")[-1], peer

    def raw_server(self) -> tuple[RawServerFactory, int]:
        factory = RawServerFactory(REACTOR_TIMEOUT)
        port = reactor.listenTCP(0, factory, interface=LOOPBACK)
        self.ports.append((port, factory))
        return factory, port.getHost().port

    async def close_all(self) -> None:
        closing = [service.close_in_reactor() for service in self.services]
        for port, factory in self.ports:
            closing.append(port.stopListening())
            self.peers.extend(factory.peers)
        await close_and_check(closing, self.services, self.peers, REACTOR_TIMEOUT)
