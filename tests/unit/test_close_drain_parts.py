"""The parts of a reliable close on their own: the drain watch on a fake clock, the outbox's gate and refusal,
and the latch a blocking ``close()`` waits on."""

from __future__ import annotations

import threading

import pytest
from twisted.internet.task import Clock

from leads_twisted.comm.drain import DrainWatch, Unsent
from leads_twisted.comm.latch import Latch
from leads_twisted.comm.outbox import Outbox


class Held:
    def __init__(self, value: int) -> None:
        self.value = value

    def __call__(self) -> int:
        return self.value


def test_a_peer_taking_bytes_is_never_cut_and_one_taking_none_is_cut_after_the_timeout():
    clock, held, cuts = Clock(), Held(10_000), []
    watch = DrainWatch(clock, 5.0, held, lambda: cuts.append(clock.seconds()))
    for _ in range(40):  # 40 s of a peer taking 100 bytes a second
        held.value -= 100
        clock.advance(1.0)
    assert cuts == []
    for _ in range(4):  # then it takes nothing
        clock.advance(1.0)
    assert cuts == []
    clock.advance(1.0)
    assert cuts == [45.0]
    watch.stop()


def test_bytes_from_the_peer_count_as_progress_and_stop_ends_the_checks():
    clock, cuts = Clock(), []
    watch = DrainWatch(clock, 1.0, Held(0), lambda: cuts.append(clock.seconds()))
    for _ in range(10):
        clock.advance(0.5)
        watch.progress()
    assert cuts == []
    watch.stop()
    clock.advance(10)
    assert cuts == [] and clock.getDelayedCalls() == []


def test_unsent_says_bytes_and_messages_when_known():
    assert Unsent(100, None).describe() == "100 bytes"
    assert Unsent(100, 7).describe() == "100 bytes (about 7 messages)"


class Target:
    def __init__(self) -> None:
        self.got: list[bytes] = []

    def write_messages(self, messages: list[bytes]) -> None:
        self.got.extend(messages)

    def close_now(self) -> None:
        self.got.append(b"<close>")


def test_a_sender_waiting_for_room_is_refused_when_the_link_ends():
    wakeups: list[object] = []
    outbox = Outbox(wakeups.append, max_queued=1000)
    outbox.pause()  # the link's transport is full: senders wait
    outcome: list[object] = []

    def sender() -> None:
        try:
            outbox.put(Target(), b"x" * 10)
            outcome.append("accepted")
        except OSError as error:
            outcome.append(str(error))

    thread = threading.Thread(target=sender)
    thread.start()
    thread.join(0.2)
    assert thread.is_alive(), "the sender waits while the link is paused"
    outbox.refuse("the server said disconnect")
    thread.join(5)
    assert outcome == ["the server said disconnect"]
    with pytest.raises(OSError, match="said disconnect"):
        outbox.put(Target(), b"later")
    outbox.accept()
    outbox.resume()
    target = Target()
    outbox.put(target, b"again")
    outbox.flush()
    assert target.got == [b"again"]


def test_runs_keep_order_across_targets_and_closes():
    outbox = Outbox(lambda _: None)
    a, b = Target(), Target()
    outbox.put(a, b"a1")
    outbox.put(a, b"a2")
    outbox.put(b, b"b1")
    outbox.put_close(b)
    outbox.put(a, b"a3")
    outbox.put(b, b"b2")  # after b's close: sent after it (the link drops it), never before
    outbox.put(a, b"a4")
    outbox.flush()
    assert a.got == [b"a1", b"a2", b"a3", b"a4"]
    assert b.got == [b"b1", b"<close>", b"b2"]


def test_a_latch_lets_every_waiter_through_once_open():
    latch = Latch()
    passed: list[int] = []
    threads = [threading.Thread(target=lambda i=i: (latch.wait(), passed.append(i))) for i in range(3)]
    for thread in threads:
        thread.start()
    threads[0].join(0.1)
    assert passed == [] and not latch.is_open()
    latch.open()
    latch.open()  # twice does nothing
    for thread in threads:
        thread.join(5)
    assert sorted(passed) == [0, 1, 2]
    latch.wait()  # after opening, at once
