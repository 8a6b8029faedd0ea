"""Sends from other threads over real sockets: a quiet link is written by the sending thread itself (from its
second message on: the first asks the reactor for the thread's descriptor and queues), a burst goes through
the queue, and whichever way a message goes, nothing overtakes what was written before it."""

from __future__ import annotations

import queue
import random
import socket
import threading
import time
from typing import Any

import pytest_twisted
from twisted.internet import threads

from leads_twisted.comm import direct_write

from .conftest import TIMEOUT, Recorder
from .test_write_batch import CountingSocket


class DupSpy:
    """Stands in for a connection's socket: its ``dup()`` (the sending threads' socket) counts sends."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self.thread_socket: CountingSocket | None = None

    def dup(self) -> Any:
        self.thread_socket = CountingSocket(self._sock.dup())
        return self.thread_socket

    def send(self, data: bytes) -> int:
        return self._sock.send(data)

    @property
    def direct_sends(self) -> int:
        return 0 if self.thread_socket is None else len(self.thread_socket.sends)


def in_thread(function: Any, *args: Any) -> Any:
    """Run ``function`` in a thread of the reactor's pool; the Deferred fails if it takes too long."""
    from twisted.internet import reactor

    return threads.deferToThread(function, *args).addTimeout(TIMEOUT, reactor)


async def linked(net: Any, callback: Recorder, warm: bool = True) -> tuple[Any, Any, DupSpy]:
    """A server, a raw peer linked to it, and that link's connection with a spy on its socket; ``warm``
    sends one message from a thread first, so that the link has its sending threads' descriptor."""
    connection, peer = await net.linked_peer(callback)
    spy = DupSpy(connection._writer._socket)
    connection._writer._socket = spy
    if warm:
        await in_thread(connection.send, b"warm")
        await peer.when_messages(1)
        assert peer.messages.pop(0) == b"warm" and spy.direct_sends == 0
        assert spy.thread_socket is not None  # made in the reactor thread, asked for by that first send
        peer.data = b""
    return connection, peer, spy


def after_a_quiet_moment(function: Any, *args: Any) -> Any:
    """``function`` run after a pause long enough for the send queue to count as quiet."""

    def run() -> Any:
        time.sleep(0.001)  # part of the traffic's shape: a quiet link, not a wait for an event
        return function(*args)

    return run


@pytest_twisted.ensureDeferred
async def test_a_message_to_a_quiet_link_is_written_by_the_sending_thread(net):
    connection, peer, spy = await linked(net, Recorder())
    await in_thread(after_a_quiet_moment(connection.send, b"hello"))
    await peer.when_data(b"hello;")
    assert peer.data == b"hello;"
    assert spy.direct_sends == 1


@pytest_twisted.ensureDeferred
async def test_bursts_and_pauses_from_two_threads_keep_each_threads_order(net):
    connection, peer, spy = await linked(net, Recorder())
    peer.keep_bytes = False
    per_thread = 5_000

    def sender(tag: bytes, seed: int) -> None:
        # Bursts of 1 to 40 messages, some after a pause long enough for the link to count as quiet.
        pace = random.Random(seed)
        number = 0
        while number < per_thread:
            for _ in range(min(pace.randint(1, 40), per_thread - number)):
                connection.send(b"%s%d" % (tag, number))
                number += 1
            if pace.random() < 0.3:
                time.sleep(0.0002)  # part of the traffic's shape: a quiet moment between bursts

    await in_thread(sender, b"a", 1)
    await in_thread(sender, b"b", 2)
    both = [in_thread(sender, b"c", 3), in_thread(sender, b"d", 4)]
    for sending in both:
        await sending
    await peer.when_messages(4 * per_thread, timeout=30)
    for tag in (b"a", b"b", b"c", b"d"):
        got = [m for m in peer.messages if m.startswith(tag)]
        assert got == [b"%s%d" % (tag, n) for n in range(per_thread)], tag
    # Both ways were taken: some messages by the sending thread, the rest through the queue.
    assert 0 < spy.direct_sends < 4 * per_thread


class AnswersThenHandsOver(Recorder):
    """Answers each ``go`` from the reactor, then has a thread send a second message right away."""

    def __init__(self) -> None:
        super().__init__()
        self.handover: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def on_receive(self, service, msg):
        service.reply(b"reactor " + msg)
        self.handover.put((service.sender(), msg))
        super().on_receive(service, msg)


@pytest_twisted.ensureDeferred
async def test_a_thread_send_after_a_reply_from_on_receive_arrives_after_it(net):
    # The reply is held until the reactor's batch ends; the thread, told about it meanwhile, must not
    # overtake it by writing to the socket itself.
    callback = AnswersThenHandsOver()
    _, peer, spy = await linked(net, callback)
    rounds = 300

    def follow_up() -> None:
        for _ in range(rounds):
            sender, msg = callback.handover.get(timeout=TIMEOUT)
            sender.send(b"thread " + msg)

    following = in_thread(follow_up)
    for number in range(rounds):
        peer.transport.write(b"go%d;" % number)
        await peer.when_messages(2 * (number + 1))
    await following
    expected = []
    for number in range(rounds):
        expected += [b"reactor go%d" % number, b"thread go%d" % number]
    assert peer.messages == expected
    assert spy.direct_sends > 0


@pytest_twisted.ensureDeferred
async def test_what_the_socket_did_not_take_goes_before_anything_else(net):
    connection, peer, spy = await linked(net, Recorder())
    big = b"B" * (16 * 1024 * 1024)
    peer.keep_bytes = False
    peer.transport.pauseProducing()  # the kernel's buffers fill and the sending thread's write is cut short

    def send_big_then_more() -> None:
        time.sleep(0.001)  # a quiet link, so that this thread writes the big message itself
        connection.send(big)
        for number in range(100):
            connection.send(b"after %d" % number)

    await in_thread(send_big_then_more)
    connection.send(b"from the reactor")
    assert spy.thread_socket is not None and spy.thread_socket.sends[0] < len(big) + 1
    peer.transport.resumeProducing()
    await peer.when_messages(102, timeout=30)
    assert peer.messages[0] == big
    assert sorted(peer.messages[1:]) == sorted([b"after %d" % n for n in range(100)] + [b"from the reactor"])
    assert [m for m in peer.messages if m.startswith(b"after")] == [b"after %d" % n for n in range(100)]


@pytest_twisted.ensureDeferred
async def test_closing_writes_a_part_sent_message_whole_before_disconnect(net):
    connection, peer, spy = await linked(net, Recorder())
    big = b"C" * (16 * 1024 * 1024)
    peer.keep_bytes = False
    peer.transport.pauseProducing()
    await in_thread(after_a_quiet_moment(connection.send, big))
    assert spy.thread_socket is not None and spy.thread_socket.sends[0] < len(big) + 1
    connection.close()  # from the reactor thread, before the rest of the message was written
    peer.transport.resumeProducing()
    await peer.when_lost(timeout=30)
    assert peer.messages == [big, b"disconnect"]


@pytest_twisted.ensureDeferred
async def test_the_sending_threads_socket_is_closed_with_the_link(net):
    callback = Recorder()
    open_before = direct_write.thread_descriptors.open
    connection, peer, spy = await linked(net, callback)
    assert spy.thread_socket is not None
    assert direct_write.thread_descriptors.open == open_before + 1
    peer.transport.loseConnection()
    await callback.when_kind("disconnect")
    assert spy.thread_socket._sock.fileno() == -1
    assert connection._writer._thread_socket is None
    assert direct_write.thread_descriptors.open == open_before


@pytest_twisted.ensureDeferred
async def test_a_thread_send_queues_behind_bytes_twisted_still_holds(net):
    connection, peer, spy = await linked(net, Recorder())
    connection.send(b"first")  # from the reactor, outside a batch: Twisted holds it until its next turn
    done = threading.Event()

    def send_second() -> None:
        connection.send(b"second")
        done.set()

    # The reactor waits here (briefly, bounded) so that Twisted cannot write "first" before the thread sends.
    threading.Thread(target=send_second, daemon=True).start()
    assert done.wait(TIMEOUT)
    await peer.when_messages(2)
    assert peer.messages == [b"first", b"second"]
    assert spy.direct_sends == 0


@pytest_twisted.ensureDeferred
async def test_with_descriptors_short_thread_sends_all_go_through_the_queue(net, monkeypatch):
    monkeypatch.setattr(direct_write, "descriptor_limit", lambda: 0)
    connection, peer, spy = await linked(net, Recorder(), warm=False)
    await in_thread(connection.send, b"queued")
    await in_thread(after_a_quiet_moment(connection.send, b"queued too"))
    await peer.when_messages(2)
    assert peer.messages == [b"queued", b"queued too"]
    assert spy.thread_socket is None and spy.direct_sends == 0
    assert not connection._writer.threads_may_write


@pytest_twisted.ensureDeferred
async def test_client_send_from_a_thread_writes_a_quiet_link_itself(net):
    received = Recorder()
    server = await net.server(received)
    client_events = Recorder()
    client = await net.client(server.port(), client_events)
    [connection] = client_events.of("connect")
    spy = DupSpy(connection._writer._socket)
    connection._writer._socket = spy

    await in_thread(client.send, b"request")  # queued: it asks the reactor for the thread's descriptor
    await received.when_received(1)  # by now the reactor has made it, and written the request
    for count, msg in enumerate((b"next", b"last"), start=2):
        await in_thread(after_a_quiet_moment(client.send, msg))
        await received.when_received(count)
    assert received.received() == [b"request", b"next", b"last"]
    assert spy.direct_sends == 2


def test_the_threads_descriptors_stay_within_their_budget(monkeypatch):
    budget = direct_write.ThreadDescriptors()
    a, b = socket.socketpair()
    try:
        monkeypatch.setattr(direct_write, "descriptor_limit", lambda: 1_000_000)
        first, second = budget.take(a), budget.take(a)
        assert first is not None and second is not None and budget.open == 2
        monkeypatch.setattr(direct_write, "descriptor_limit", lambda: 8)  # a quarter is 2, all in use
        assert budget.take(a) is None and budget.open == 2
        budget.give_back(second)
        assert second.fileno() == -1 and budget.open == 1
        # Room in the budget now, but a new descriptor's number would be past half the limit (this process
        # already has more than four open): it is closed, not given out.
        assert budget.take(a) is None and budget.open == 1
        budget.give_back(first)
        assert budget.open == 0
    finally:
        a.close()
        b.close()
