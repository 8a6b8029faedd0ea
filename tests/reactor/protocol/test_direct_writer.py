"""The ``DirectWriter``'s decisions, each seen on a real socket pair under Twisted's ``tcp.Connection`` (driven
by hand: a ``MemoryReactor`` records what would wait for the reactor's next turn); the ``direct_writes=False``
option; and the fallback, with one log line, when Twisted's buffer attributes are missing."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import tcp
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactor
from twisted.logger import Logger

from leads_twisted.comm import direct_write
from leads_twisted.comm.client import create_client
from leads_twisted.comm.direct_write import DirectWriter, transport_buffered
from leads_twisted.comm.server import create_server

from .conftest import Recorder
from .test_thread_sends import in_thread


def frame(msg: bytes) -> bytes:
    return msg + b";"


class Pair:
    """A ``DirectWriter`` on one end of a socket pair, the other end to read, and what it handed the reactor."""

    def __init__(self, direct: bool = True) -> None:
        self.ours, self.peer = socket.socketpair()
        self.peer.setblocking(False)
        self.transport = tcp.Connection(self.ours, Protocol(), MemoryReactor())
        self.transport.connected = 1  # as once the reactor has made the link
        self.for_reactor: list[Callable[[], None]] = []
        self.writer = DirectWriter(self.transport, self.for_reactor.append, direct)

    def received(self) -> bytes:
        """What the peer can read now."""
        got = b""
        while True:
            try:
                chunk = self.peer.recv(1 << 20)
            except BlockingIOError:
                return got
            if not chunk:
                return got
            got += chunk

    def from_thread(self, msg: bytes) -> bool:
        with self.writer.lock:
            return self.writer.write_from_thread(msg, frame)

    def close(self) -> None:
        self.writer.stop()
        self.ours.close()
        self.peer.close()


@pytest.fixture
def pair() -> Iterator[Pair]:
    made = Pair()
    yield made
    made.close()


def test_the_first_thread_send_asks_the_reactor_for_a_descriptor_once_and_queues(pair: Pair) -> None:
    assert not pair.from_thread(b"a") and not pair.from_thread(b"b")
    assert pair.for_reactor == [pair.writer.make_thread_socket]
    pair.for_reactor.pop()()  # the reactor makes the sending threads' descriptor
    assert pair.from_thread(b"c")
    assert pair.received() == b"c;" and pair.for_reactor == []


def test_a_thread_send_queues_while_twisted_holds_bytes_or_a_tail_waits(pair: Pair) -> None:
    pair.writer.make_thread_socket()
    pair.transport.write(b"first;")  # in Twisted's buffer until the reactor's next turn
    assert not pair.from_thread(b"second") and pair.received() == b""
    pair.transport.doWrite()  # that turn
    assert pair.from_thread(b"second")
    pair.writer.unsent_tail = b"rest of a message;"
    assert not pair.from_thread(b"third")
    pair.writer.write_unsent_tail()
    pair.transport.doWrite()
    assert pair.received() == b"first;second;rest of a message;"


def test_what_the_socket_does_not_take_goes_before_anything_else(pair: Pair) -> None:
    pair.writer.make_thread_socket()
    big = b"B" * (8 * 1024 * 1024)  # more than the socket pair's buffers: the write is cut short
    assert pair.from_thread(big)
    tail = pair.writer.unsent_tail
    assert tail is not None and 0 < len(tail) <= len(big)
    assert pair.for_reactor == [pair.writer.write_unsent_tail]
    assert not pair.from_thread(b"queued behind it")
    pair.writer.write(b"from the reactor;", at_once=True)  # after the tail, whatever the socket takes now
    assert pair.writer.unsent_tail is None
    got = b""
    for _ in range(10_000):
        got += pair.received()
        pair.transport.doWrite()
        if len(got) >= len(big) + 1 + len(b"from the reactor;"):
            break
    assert got == big + b";from the reactor;"


def test_the_reactor_writes_the_socket_at_once_only_behind_an_empty_twisted_buffer(pair: Pair) -> None:
    pair.writer.write(b"one;", at_once=True)
    assert pair.received() == b"one;" and transport_buffered(pair.transport) == 0
    pair.writer.write(b"two;", at_once=False)
    assert pair.received() == b"" and transport_buffered(pair.transport) == 4
    pair.writer.write(b"three;", at_once=True)  # must not overtake "two"
    assert pair.received() == b"" and transport_buffered(pair.transport) == 10
    pair.transport.doWrite()
    assert pair.received() == b"two;three;"


def test_stopping_closes_the_threads_descriptor_and_sends_queue_from_then_on(pair: Pair) -> None:
    open_before = direct_write.thread_descriptors.open
    pair.writer.make_thread_socket()
    assert direct_write.thread_descriptors.open == open_before + 1
    pair.writer.unsent_tail = b"never written"
    pair.writer.stop()
    assert direct_write.thread_descriptors.open == open_before
    assert not pair.writer.threads_may_write and pair.writer.unsent_tail is None
    pair.writer.make_thread_socket()  # asked for before the end, made after it: nothing is made
    assert direct_write.thread_descriptors.open == open_before


def test_with_direct_writes_off_every_byte_goes_through_twisted() -> None:
    off = Pair(direct=False)
    try:
        assert not off.writer.direct and not off.writer.threads_may_write
        off.writer.write(b"one;", at_once=True)
        assert off.received() == b"" and transport_buffered(off.transport) == 4
        off.transport.doWrite()
        assert off.received() == b"one;"
    finally:
        off.close()


def test_without_twisteds_buffer_attributes_every_link_falls_back_and_one_line_says_so(monkeypatch) -> None:
    events: list[dict[str, Any]] = []
    monkeypatch.setattr(direct_write, "_log", Logger(namespace="test", observer=events.append))
    monkeypatch.setattr(direct_write, "_internals_usable", None)  # as in a fresh process
    monkeypatch.setattr(direct_write, "twisted_internals_present", lambda transport: False)
    pairs = [Pair(), Pair()]
    try:
        for each in pairs:
            assert not each.writer.direct and not each.writer.threads_may_write
            assert transport_buffered(each.transport) == 0  # not read either
            each.writer.write(b"still delivered;", at_once=True)
            each.transport.doWrite()
            assert each.received() == b"still delivered;"
        assert len(events) == 1, events
        assert "transport.write only" in events[0]["log_format"]
    finally:
        for each in pairs:
            each.close()


def test_the_real_twisted_has_the_attributes_the_writer_reads(pair: Pair) -> None:
    assert direct_write.twisted_internals_present(pair.transport)
    assert pair.writer.direct


# Over loopback, through the public API.


def counting_thread_writes(monkeypatch) -> list[bool]:
    """Every answer of ``DirectWriter.write_from_thread`` from now on (True: written by the sending thread)."""
    answers: list[bool] = []
    original = DirectWriter.write_from_thread

    def counting(self: DirectWriter, msg: bytes, frame: Callable[[bytes], bytes]) -> bool:
        wrote = original(self, msg, frame)
        answers.append(wrote)
        return wrote

    monkeypatch.setattr(DirectWriter, "write_from_thread", counting)
    return answers


def send_with_pauses(connection: Any, count: int) -> None:
    for number in range(count):
        connection.send(b"m%d" % number)
        time.sleep(0.0002)  # part of the traffic's shape: a quiet link before each message


@pytest.mark.parametrize("direct_writes", [True, False])
@pytest_twisted.ensureDeferred
async def test_direct_writes_off_queues_every_thread_send_and_keeps_order(net, monkeypatch, direct_writes):
    answers = counting_thread_writes(monkeypatch)
    options = {} if direct_writes else {"direct_writes": False}
    connection, peer = await net.linked_peer(Recorder(), **options)
    assert connection.direct is direct_writes
    count = 300
    await in_thread(send_with_pauses, connection, count)
    await peer.when_messages(count)
    assert peer.messages == [b"m%d" % n for n in range(count)]
    if direct_writes:  # the control: the same traffic does take the direct way when it is on
        assert sum(answers) > count // 2
    else:
        assert answers == []


def test_direct_writes_is_an_option_of_both_services_and_checked() -> None:
    assert create_server(0, direct_writes=False).policy.direct_writes is False
    assert create_client(1, direct_writes=False).policy.direct_writes is False
    with pytest.raises(TypeError, match=r"did you mean 'direct_writes'"):
        create_client(1, direct_write=False)
    with pytest.raises(ValueError, match=r"direct_writes must be True or False"):
        create_server(0, direct_writes="no")
