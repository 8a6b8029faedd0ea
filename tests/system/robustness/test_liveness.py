"""Idle timeout and heartbeat: timed on a ``Clock`` through an injected reactor, then once over real sockets."""

from __future__ import annotations

import pytest_twisted
from support_net import RawPeer
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from leads_twisted.comm import Server
from leads_twisted.comm.protocol import LeadsServerFactory
from leads_twisted.comm.reactor_thread import ReactorRunner

from .harness import EchoLoop, EchoServer, Recorder


def link(**options):
    """A server on a fake clock and one link to it over a ``StringTransport``: no sockets, no real time."""
    clock = MemoryReactorClock()
    recorder = Recorder()
    server = Server(0, recorder, runner=ReactorRunner(clock), **options)
    protocol = LeadsServerFactory(server).buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    transport = StringTransport()
    protocol.makeConnection(transport)
    assert len(recorder.of("connect")) == 1
    return clock, recorder, protocol, transport


def timeouts(recorder: Recorder) -> list[Exception]:
    return [error for error in recorder.of("fail") if isinstance(error, TimeoutError)]


def test_idle_timeout_closes_a_silent_link_and_any_byte_restarts_it():
    clock, recorder, protocol, transport = link(idle_timeout=5.0)
    clock.advance(4.9)
    protocol.dataReceived(b"half a mess")  # not even a whole message: still a sign of life
    clock.advance(4.9)
    assert timeouts(recorder) == [] and not transport.disconnecting
    clock.advance(0.2)
    assert len(timeouts(recorder)) == 1, recorder.events
    assert transport.value() == b"disconnect;"
    assert transport.disconnecting
    protocol.connectionLost(Failure(ConnectionError("gone")))
    assert len(recorder.of("disconnect")) == 1
    clock.advance(3600)
    assert len(timeouts(recorder)) == 1 and len(recorder.of("disconnect")) == 1


def test_no_idle_timeout_and_no_heartbeat_by_default():
    clock, recorder, _, transport = link()
    clock.advance(24 * 3600)
    assert transport.value() == b"", "a default link put bytes on the wire that a LEADS 0.9 peer does not expect"
    assert recorder.of("fail") == [] and not transport.disconnecting


def test_heartbeat_is_sent_on_time_and_received_heartbeats_are_not_messages():
    clock, recorder, protocol, transport = link(heartbeat=2.0, idle_timeout=5.0)
    clock.advance(1.9)
    assert transport.value() == b""
    clock.advance(0.1)
    assert transport.value() == b"heartbeat;"
    # The peer's heartbeats keep the link alive and never reach on_receive; real messages do.
    for _ in range(30):
        clock.advance(2.0)
        protocol.dataReceived(b"heartbeat;")
    protocol.dataReceived(b"real;")
    assert timeouts(recorder) == []
    assert recorder.of("receive") == [b"real"]
    assert transport.value() == b"heartbeat;" * 31
    protocol.connectionLost(Failure(ConnectionError("gone")))
    transport.clear()
    clock.advance(60)
    assert transport.value() == b"", "heartbeats went on after the link was lost"
    assert clock.getDelayedCalls() == [], clock.getDelayedCalls()


@pytest_twisted.ensureDeferred
async def test_over_sockets_silent_peers_time_out_while_a_heartbeating_client_stays(net):
    server_recorder = EchoServer()
    server = await net.server(server_recorder, idle_timeout=0.5, heartbeat=0.15)
    client_recorder = EchoLoop()
    await net.started_client(server.port(), client_recorder, heartbeat=0.15)
    # Each silent peer is dropped after one idle timeout: two in a row let two timeouts pass for the client,
    # which says nothing itself but its heartbeats.
    silent_peers = []
    for _ in range(2):
        silent = await net.peer(RawPeer(), server.port())
        await silent.when_lost(timeout=5)
        silent_peers.append(silent)
    await client_recorder.round_trips(3)

    assert len(server_recorder.of("connect")) == 3
    assert len(server_recorder.of("disconnect")) == 2, server_recorder.describe()
    assert len([e for e in server_recorder.of("fail") if isinstance(e, TimeoutError)]) == 2
    assert client_recorder.of("disconnect") == [] and client_recorder.of("fail") == []
    assert b"heartbeat" not in client_recorder.of("receive")
    for silent in silent_peers:
        assert silent.messages[-1] == b"disconnect", silent.describe()
        assert set(silent.messages[:-1]) <= {b"heartbeat"}, silent.describe()
