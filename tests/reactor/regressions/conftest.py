"""Fixtures of the regression tests: in-process services on loopback, raw peers, and a throwaway PKI.

The raw peers and the PKI come from ``support_net``; the fixtures are small and defined here, so this package
does not depend on another package's conftest being collected. Every wait is bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import pytest_twisted
from support_net import (
    LOOPBACK,
    PKI,
    LoopbackNet,
    RawPeer,
    abort_peers,
    client_tls,
    connect,
    make_pki,
    server_tls,
    window,
)
from twisted.internet import reactor, task
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.interfaces import IListeningPort

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


class Net(LoopbackNet):
    """Servers, clients, raw peers and raw listening ports in the test reactor; all ended after the test."""

    timeout = TIMEOUT

    def __init__(self) -> None:
        super().__init__()
        self.ports: list[IListeningPort] = []

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
        closing.extend(abort_peers(self.peers))
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
    return make_pki(tmp_path_factory.mktemp("regressions-pki"), "regression")
