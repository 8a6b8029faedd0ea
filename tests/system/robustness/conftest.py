"""Fixtures of the robustness tests: processes under test, in-process services, and a throwaway PKI."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from support_net import PKI, LoopbackNet, RawPeer, close_and_check, connect, make_pki
from twisted.logger import formatEvent, globalLogPublisher

from leads_twisted.comm import Callback, Client

from .harness import TIMEOUT, Recorder, ScriptProcess, ServerProcess


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


class Net(LoopbackNet):
    """Servers, clients and raw peers in the test process, on loopback; all ended when the test is over."""

    timeout = TIMEOUT

    async def started_client(self, port: int, callback: Callback | None = None, **options: Any) -> Client:
        client = await super().started_client(port, callback, **options)
        if isinstance(callback, Recorder):
            assert callback.of("connect"), "start_in_reactor fired before on_connect had run"
        return client

    async def peer(self, peer: RawPeer, port: int) -> RawPeer:
        self.peers.append(peer)
        await connect(peer, port)
        return peer

    async def close_all(self) -> None:
        await close_and_check([service.close_in_reactor() for service in self.services], self.services, self.peers)


@pytest_twisted.async_yield_fixture
async def net():
    helper = Net()
    yield helper
    await helper.close_all()


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> PKI:
    """A CA, a server and a client certificate it signed, and a second CA with a client of its own: made now,
    with ``cryptography``, in a temporary directory."""
    return make_pki(tmp_path_factory.mktemp("pki"), "leads test")
