"""Fixtures of the regression tests: in-process services on loopback, raw peers, and a throwaway PKI.

The helper classes come from the other test packages' helper modules; the fixtures are small and defined
here, so this package does not depend on another package's conftest being collected. Every wait is bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import pytest_twisted
from robustness.conftest import PKI, _certificate, _key, _write
from robustness.harness import LOOPBACK, RawPeer, connect
from twisted.internet import reactor, task
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.interfaces import IListeningPort

from leads_twisted.comm import Client, Server
from leads_twisted.comm.tls import TLSOptions
from leads_twisted.testing import Recorder

__all__ = [
    "LOOPBACK",
    "TIMEOUT",
    "Net",
    "RawPeer",
    "Recorder",
    "bounded",
    "client_tls",
    "seen",
    "server_tls",
    "settle",
    "until",
    "window",
]

#: Seconds any one wait may take.
TIMEOUT = 10.0


def bounded(waiting: Deferred[Any], seconds: float = TIMEOUT) -> Deferred[Any]:
    """``waiting``, failed with ``TimeoutError`` if it has not fired within ``seconds``."""
    return waiting.addTimeout(seconds, reactor)


def seen(recorder: Recorder, predicate: Callable[[Recorder], bool], seconds: float = TIMEOUT) -> Deferred[Any]:
    """Fires once ``predicate(recorder)`` holds after one of its callbacks; bounded by ``seconds``."""
    return bounded(recorder.when(predicate), seconds)


async def until(predicate: Callable[[], bool], what: str, seconds: float = TIMEOUT, step: float = 0.01) -> None:
    """Poll ``predicate`` on the reactor's clock (for state no callback reports); ``TimeoutError`` after
    ``seconds``."""
    for _ in range(int(seconds / step) + 1):
        if predicate():
            return
        await task.deferLater(reactor, step, lambda: None)
    if not predicate():
        raise TimeoutError(f"waited {seconds} s for {what}")


def window(seconds: float) -> Deferred[None]:
    """Let ``seconds`` pass on the reactor clock: only to observe that something does NOT happen."""
    return task.deferLater(reactor, seconds, lambda: None)


def server_tls(pki: PKI) -> TLSOptions:
    return TLSOptions(pki.server.certificate, pki.server.private_key, pki.ca)


def client_tls(pki: PKI) -> TLSOptions:
    return TLSOptions(pki.client.certificate, pki.client.private_key, pki.ca)


class Net:
    """Servers, clients, raw peers and raw listening ports in the test reactor; all ended after the test."""

    def __init__(self) -> None:
        self.services: list[Server | Client] = []
        self.peers: list[RawPeer] = []
        self.ports: list[IListeningPort] = []

    async def server(self, callback: Recorder | None = None, **options: Any) -> Server:
        if "endpoint" not in options:
            options.setdefault("interface", LOOPBACK)
        server = Server(0, callback, **options)
        self.services.append(server)
        await bounded(server.start_in_reactor())
        return server

    def client(self, port: int, callback: Recorder | None = None, **options: Any) -> Client:
        client = Client(port, callback, **options)
        self.services.append(client)
        return client

    async def started_client(self, port: int, callback: Recorder | None = None, **options: Any) -> Client:
        client = self.client(port, callback, **options)
        await bounded(client.start_in_reactor(LOOPBACK))
        return client

    async def peer(self, port: int, peer: RawPeer | None = None) -> RawPeer:
        peer = peer if peer is not None else RawPeer()
        self.peers.append(peer)
        await connect(peer, port)
        return peer

    def keep_port(self, port: IListeningPort) -> IListeningPort:
        self.ports.append(port)
        return port

    async def close_all(self) -> None:
        closing = [bounded(service.close_in_reactor(), 5) for service in reversed(self.services)]
        for port in self.ports:
            closing.append(bounded(Deferred.fromCoroutine(_stop(port)), 5))
        for peer in self.peers:
            if peer.transport is not None and not peer.is_lost:
                peer.transport.abortConnection()
            closing.append(peer.when_lost(5))
        await DeferredList(closing, consumeErrors=True)


async def _stop(port: IListeningPort) -> None:
    if getattr(port, "connected", True):
        await maybeDeferred(port.stopListening)


async def settle(waiting: Deferred[Any], what: str, seconds: float = TIMEOUT) -> tuple[bool, Any]:
    """Wait (bounded) for ``waiting`` to fire either way: ``(True, result)`` or ``(False, error)``.

    Not firing within ``seconds`` fails the test: a start or close that never settles is a hang.
    """
    outcome: list[tuple[bool, Any]] = []
    waiting.addCallbacks(lambda result: outcome.append((True, result)), lambda f: outcome.append((False, f.value)))
    await until(lambda: bool(outcome), what, seconds)
    return outcome[0]


@pytest_twisted.async_yield_fixture
async def net():
    helper = Net()
    yield helper
    await helper.close_all()


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> PKI:
    """A CA with a server and a client certificate (both naming 127.0.0.1), and a second, unrelated CA."""
    pytest.importorskip("OpenSSL", reason="TLS needs the tls extra (pyOpenSSL)")
    from cryptography.x509.oid import ExtendedKeyUsageOID

    directory = tmp_path_factory.mktemp("regressions-pki")
    cas = {}
    for name in ("ca", "other_ca"):
        key = _key()
        cert = _certificate(f"regression {name}", key, f"regression {name}", key, ca=True)
        cas[name] = (_write(directory, name, cert, key), key)
    leaves = {}
    for stem, ca_name, usage in (
        ("server", "ca", ExtendedKeyUsageOID.SERVER_AUTH),
        ("client", "ca", ExtendedKeyUsageOID.CLIENT_AUTH),
        ("stranger", "other_ca", ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        key = _key()
        cert = _certificate(f"regression {stem}", key, f"regression {ca_name}", cas[ca_name][1], ca=False, usage=usage)
        leaves[stem] = _write(directory, stem, cert, key)
    return PKI(
        ca=cas["ca"][0].certificate,
        other_ca=cas["other_ca"][0].certificate,
        server=leaves["server"],
        client=leaves["client"],
        stranger=leaves["stranger"],
    )
