"""The protocol's fine logic with no sockets: a server on a MemoryReactorClock, links over StringTransport."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from leads_twisted.comm import DISCONNECT, MessageTooLong, Server
from leads_twisted.comm.connection import CloseCut
from leads_twisted.comm.reactor_thread import ReactorRunner

from .conftest import Recorder


class Harness:
    """A started server whose reactor is in memory; ``link()`` opens one more link to it."""

    def __init__(self, **options) -> None:
        self.reactor = MemoryReactorClock()
        self.recorder = Recorder()
        self.server = Server(0, self.recorder, runner=ReactorRunner(self.reactor), interface="127.0.0.1", **options)
        started = self.server.start_in_reactor()
        assert started.called, "listening in memory is immediate"
        [(_, self.factory, _, _)] = self.reactor.tcpServers
        self._next_port = 40000

    def link(self):
        self._next_port += 1
        addr = IPv4Address("TCP", "127.0.0.1", self._next_port)
        protocol = self.factory.buildProtocol(addr)
        transport = StringTransport(peerAddress=addr)
        protocol.makeConnection(transport)
        return protocol, transport


@pytest_twisted.async_fixture
async def make_harness():
    # An async fixture runs once pytest-twisted's reactor runs, so this thread counts as the reactor thread.
    return Harness


@pytest.fixture
def harness(make_harness):
    return make_harness()


def test_initialize_once_then_connect_per_link(harness):
    assert harness.recorder.kinds() == ["initialize"]
    harness.link()
    harness.link()
    assert harness.recorder.kinds() == ["initialize", "connect", "connect"]
    assert harness.server.num_connections() == 2
    assert [str(c) for c in harness.recorder.of("connect")] == ["127.0.0.1:40001", "127.0.0.1:40002"]


def test_bytes_one_at_a_time_make_messages_in_order(harness):
    protocol, _ = harness.link()
    for byte in b"ab;;c;d":
        protocol.dataReceived(bytes([byte]))
    assert harness.recorder.received() == [b"ab", b"", b"c"]
    protocol.dataReceived(b";")
    assert harness.recorder.received() == [b"ab", b"", b"c", b"d"]


def test_peer_disconnect_is_answered_and_closes(harness):
    protocol, transport = harness.link()
    protocol.dataReceived(b"x;disconnect;")
    assert harness.recorder.received() == [b"x"]
    assert transport.value() == DISCONNECT + b";"
    assert transport.disconnecting
    [connection] = harness.recorder.of("connect")
    assert connection.closed()
    assert harness.recorder.of("disconnect") == []  # not before the link is gone
    protocol.connectionLost(Failure(ConnectionDone()))
    assert harness.recorder.of("disconnect") == [connection]
    assert harness.server.num_connections() == 0


@pytest.mark.parametrize("reason", [ConnectionDone(), ConnectionLost()])
def test_disconnect_once_however_the_link_ends(harness, reason):
    protocol, _ = harness.link()
    protocol.connectionLost(Failure(reason))
    assert harness.recorder.kinds() == ["initialize", "connect", "disconnect"]


def test_close_sends_disconnect_then_cuts_a_peer_that_does_nothing_for_close_timeout(make_harness):
    harness = make_harness(close_timeout=2.0)
    protocol, transport = harness.link()
    [connection] = harness.recorder.of("connect")
    connection.send(b"last words")
    connection.close()
    assert transport.value() == b"last words;" + DISCONNECT + b";"
    assert transport.disconnecting
    assert not transport.disconnected
    with pytest.raises(OSError):
        connection.send(b"too late")
    # The peer still sends: each time it does, the close timeout starts again.
    for _ in range(3):
        harness.reactor.advance(1.6)
        protocol.dataReceived(b"still talking;")
    assert not transport.disconnected
    assert harness.recorder.of("receive") == [b"still talking"] * 3
    harness.reactor.advance(1.6)
    assert not transport.disconnected, "1.6 s of silence is within the close timeout"
    harness.reactor.advance(0.8)
    assert transport.disconnected, "the link is cut once the peer has done nothing for close_timeout"
    [cut] = harness.recorder.of("fail")
    assert isinstance(cut, CloseCut) and cut.unsent_bytes == 0 and "did not close within 2 s" in str(cut), cut
    protocol.connectionLost(Failure(ConnectionLost()))
    assert harness.recorder.kinds().count("disconnect") == 1


def test_a_link_that_ends_in_time_leaves_no_timer(harness):
    protocol, _ = harness.link()
    [connection] = harness.recorder.of("connect")
    connection.close()
    protocol.connectionLost(Failure(ConnectionDone()))
    assert harness.reactor.getDelayedCalls() == []


def test_server_close_closes_every_link_and_finishes_when_they_are_gone(harness):
    links = [harness.link() for _ in range(3)]
    closed = harness.server.close_in_reactor()
    for _, transport in links:
        assert transport.value() == DISCONNECT + b";"
        assert transport.disconnecting
    assert not closed.called
    for protocol, _ in links:
        protocol.connectionLost(Failure(ConnectionDone()))
    assert closed.called
    assert harness.server.state.value == "closed"
    assert harness.recorder.kinds() == ["initialize"] + ["connect"] * 3 + ["disconnect"] * 3
    # Closing again is harmless.
    again = harness.server.close_in_reactor()
    assert again.called


def test_broadcast_from_the_reactor_thread_writes_to_every_link(harness):
    links = [harness.link() for _ in range(3)]
    harness.server.broadcast(b"all")
    harness.server.broadcast(b"")
    for _, transport in links:
        assert transport.value() == b"all;;"


def test_message_too_long_drops_that_link_only(make_harness):
    harness = make_harness(max_message=8)
    bad, bad_transport = harness.link()
    good, _ = harness.link()
    bad.dataReceived(b"123456789")
    [error] = harness.recorder.of("fail")
    assert isinstance(error, MessageTooLong)
    assert bad_transport.disconnected, "the link is aborted, not flushed"
    good.dataReceived(b"12345678;")
    assert harness.recorder.received() == [b"12345678"]
    bad.connectionLost(Failure(ConnectionLost()))
    assert harness.server.num_connections() == 1


def test_messages_before_the_oversized_one_in_the_same_chunk_are_delivered(make_harness):
    # How TCP cuts the stream must not decide whether the messages that kept the rules are delivered.
    harness = make_harness(max_message=8)
    whole, _ = harness.link()
    whole.dataReceived(b"ok1;ok2;" + b"x" * 9)
    pieces, _ = harness.link()
    for chunk in (b"ok1;", b"ok2;", b"x" * 9):
        pieces.dataReceived(chunk)
    assert harness.recorder.received() == [b"ok1", b"ok2", b"ok1", b"ok2"]
    assert len(harness.recorder.of("fail")) == 2


def test_raising_callback_reports_the_same_exception(harness):
    errors = []

    class Boom(Recorder):
        def on_receive(self, service, msg):
            raise errors[-1]

    harness.server.set_callback(Boom())
    seen = []
    harness.server._callback.on_fail = lambda service, error: seen.append(error)
    protocol, _ = harness.link()
    errors.append(ZeroDivisionError("one"))
    protocol.dataReceived(b"a;")
    errors.append(KeyError("two"))
    protocol.dataReceived(b"b;")
    assert seen == errors
