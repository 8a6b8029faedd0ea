"""A reconnecting client: across a graceful server restart every message accepted by ``send`` arrives
exactly once and in order; the queue kept while down is bounded; ``close()`` stops the retries at once."""

from __future__ import annotations

import socket
import time

import pytest
import pytest_twisted
from support_net import LOOPBACK, window
from twisted.internet import reactor
from twisted.internet.protocol import Factory, Protocol

from leads_twisted.comm.link_policy import Backoff

from .harness import HERE, Recorder, ScriptProcess

QUICK_BACKOFF = {"initial": 0.05, "factor": 1.5, "maximum": 0.25, "jitter": 0.1}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def client_process(processes, **config) -> ScriptProcess:
    return processes.add(ScriptProcess(HERE / "client_proc.py", config))


@pytest_twisted.ensureDeferred
async def test_graceful_server_restart_loses_and_repeats_nothing(processes):
    first = await processes.server(events=False)
    port = first.port
    client = client_process(
        processes,
        mode="stream",
        port=port,
        queue=1_000_000,
        backoff=QUICK_BACKOFF,
        interval=0.0005,
        max_count=200_000,
        max_seconds=60,
    )
    await client.event("connect", timeout=30)
    assert (await first.wait("received", 500, 15))["value"] >= 500
    # The server goes away gracefully while the client keeps sending, and comes back on the same port.
    before = await first.close()
    second = await processes.server(port=port, events=False)
    reconnected = await client.event("connect", since=client.events.index(client.of("connect")[0]) + 1, timeout=15)
    assert reconnected["number"] == 2
    received_so_far = (await second.stats())["received"]
    assert (await second.wait("received", received_so_far + 500, 15))["value"] >= received_so_far + 500
    done = await client.request("stop", "done", 30)
    after = await second.close()
    print(
        f"restart: {len(done['accepted'])} accepted ({done['while_down']} while down, at most "
        f"{done['most_held']} held), {done['refused']} refused; first server got {len(before['seq'])}, "
        f"second {len(after['seq'])}"
    )

    assert done["connected_at_close"] and done["state"] == "closed", done
    assert done["while_down"] > 0, "no message was sent while the server was down: the test proved nothing"
    assert done["refused"] == 0, done
    arrived = before["seq"] + after["seq"]
    accepted = done["accepted"]
    missing = sorted(set(accepted) - set(arrived))
    repeated = len(arrived) - len(set(arrived))
    assert not missing and not repeated, f"{len(missing)} lost (first {missing[:10]}), {repeated} repeated"
    assert arrived == accepted, "every accepted message arrived once, but not in the order sent"
    assert done["connects"] == 2 and done["disconnects"] == 2, done


@pytest_twisted.ensureDeferred
async def test_sending_beyond_the_queue_bound_raises_and_what_was_accepted_arrives(processes):
    bound, size = 10_000, 100
    port = free_port()
    client = client_process(
        processes, mode="fill", port=port, queue=bound, size=size, backoff=QUICK_BACKOFF, max_count=10_000
    )
    # With reconnect on, start returns once the first attempt has failed, and retries in the background.
    assert (await client.event("started", timeout=30))["connected"] is False
    filled = await client.event("filled", timeout=30)
    print(f"queue bound {bound} B, {size} B messages: {filled}")
    assert filled["refused_with"], f"send never refused a message: {filled}"
    assert "queue" in filled["refused_with"] and "full" in filled["refused_with"], filled
    assert filled["held"] == filled["accepted"], filled
    assert filled["held_bytes"] <= bound, f"the queue holds {filled['held_bytes']} bytes, over its bound {bound}"
    assert filled["accepted"] >= bound // size - 1, filled

    server = await processes.server(port=port, events=False)
    assert (await server.wait("received", filled["accepted"], 15))["value"] == filled["accepted"]
    done = await client.request("stop", "done", 30)
    report = await server.close()
    assert report["seq"] == done["accepted"] == list(range(filled["accepted"]))


class Dropper(Factory):
    """Accepts each connection and resets it at once: every attempt of a client becomes a short link."""

    def __init__(self) -> None:
        self.arrived = 0

    def buildProtocol(self, addr):
        self.arrived += 1
        return _Reset()


class _Reset(Protocol):
    def connectionMade(self) -> None:
        self.transport.abortConnection()


@pytest.mark.parametrize("initial", [0.05, 30.0], ids=["retrying-fast", "waiting-long"])
@pytest_twisted.ensureDeferred
async def test_close_stops_retrying_at_once(net, initial):
    listener = Dropper()
    listening = reactor.listenTCP(0, listener, interface=LOOPBACK)
    recorder = Recorder()
    client = net.client(
        listening.getHost().port,
        recorder,
        reconnect=True,
        backoff=Backoff(initial=initial, factor=1.0, maximum=initial, jitter=0.0),
    )
    try:
        await client.start_in_reactor(LOOPBACK).addTimeout(5, reactor)
        # Links come and go: with the quick backoff, three of them prove the client is retrying.
        await recorder.when_count("disconnect", 3 if initial < 1 else 1)
        began = time.monotonic()
        await client.close_in_reactor().addTimeout(1.0, reactor)
        took = time.monotonic() - began
        arrived_at_close = listener.arrived
        await window(0.5)  # ten backoff periods of the quick client
    finally:
        await listening.stopListening()
    assert took < 0.5, f"close took {took:.2f} s"
    assert client.state.value == "closed"
    assert listener.arrived == arrived_at_close, "the client went on connecting after close()"
    assert len(recorder.of("connect")) == len(recorder.of("disconnect")) == arrived_at_close
    with pytest.raises(OSError, match="closed"):
        client.send(b"after close")


class CloseOnFail(Recorder):
    """Gives up at the first failure, from inside ``on_fail``."""

    def on_fail(self, service, error):
        super().on_fail(service, error)
        service.close()


@pytest_twisted.ensureDeferred
async def test_close_inside_on_fail_of_a_reconnecting_client_closes_it(net):
    recorder = CloseOnFail()
    client = net.client(free_port(), recorder, reconnect=True, backoff=Backoff(initial=0.05, maximum=0.05))
    await client.start_in_reactor(LOOPBACK).addTimeout(5, reactor)
    await recorder.when_count("fail")
    await client.close_in_reactor().addTimeout(1.0, reactor)
    assert client.state.value == "closed"
    assert [type(error) for error in recorder.of("fail")] == [ConnectionRefusedError], recorder.of("fail")
