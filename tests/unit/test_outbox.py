"""The outbox on its own: fake targets, a recording ``call_from_thread`` whose drains the test runs by hand (it
plays the reactor thread), and a fake clock for the direct send's quiet window.

Where a sender must wait, it runs in a plain thread; the test knows it has reached the wait from a message
that signals each time the outbox measures it (``Watched``), and every join has a timeout.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import pytest
from twisted.logger import capturedLogs

from leads_twisted.comm.handoff import DirectSender, Handoff, HandoffTarget
from leads_twisted.comm.outbox import DIRECT_SEND_AFTER_QUIET_SECONDS, Outbox

#: How long any join or event wait here may take before the test fails.
WAIT = 10.0
#: The short look that a waiting sender is still waiting (it can only pass wrongly, never fail wrongly).
STILL_WAITING = 0.05
CLOSED = b"<closed>"


class Target(HandoffTarget):
    """Notes what it is given, writes and closes alike, in order; can be told to fail."""

    def __init__(self, name: str = "t", log: list[tuple[str, bytes]] | None = None) -> None:
        self.name = name
        self.got: list[bytes] = []
        self.writes = 0
        self.fail: Exception | None = None
        self.log = log

    def write_messages(self, messages: list[bytes]) -> None:
        self.writes += 1
        if self.fail is not None:
            raise self.fail
        self.got.extend(messages)
        if self.log is not None:
            self.log.extend((self.name, message) for message in messages)

    def close_now(self) -> None:
        if self.fail is not None:
            raise self.fail
        self.got.append(CLOSED)


class Direct(DirectSender):
    """A link a sending thread may write to itself: takes (``True``) or declines (``False``) what it is offered."""

    def __init__(self, takes: bool = True) -> None:
        self.takes = takes
        self.offered: list[bytes] = []

    def send_from_thread(self, message: bytes) -> bool:
        self.offered.append(message)
        return self.takes


class FakeClock:
    """Seconds that pass only when told."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Wakeups:
    """A ``call_from_thread`` that keeps what it is given: each is one reactor wake-up, run by ``run_all``."""

    def __init__(self) -> None:
        self.calls: list[Callable[[], None]] = []

    def __call__(self, function: Callable[[], None]) -> None:
        self.calls.append(function)

    def __len__(self) -> int:
        return len(self.calls)

    def run_all(self) -> None:
        calls, self.calls = self.calls, []
        for call in calls:
            call()


class Watched(bytes):
    """A message that signals each time its size is taken: a sender measures its message on every try."""

    tries: threading.Semaphore

    def __new__(cls, data: bytes) -> Watched:
        message = super().__new__(cls, data)
        message.tries = threading.Semaphore(0)
        return message

    def __len__(self) -> int:
        self.tries.release()
        return super().__len__()


class Sender:
    """One ``put`` in a thread of its own, and how it ended: ``"sent"`` or the ``OSError``'s text."""

    def __init__(
        self, outbox: Outbox, target: HandoffTarget, message: bytes, direct: DirectSender | None = None
    ) -> None:
        self.outcome: list[str] = []

        def send() -> None:
            try:
                outbox.put(target, message, direct)
                self.outcome.append("sent")
            except OSError as error:
                self.outcome.append(str(error))

        self.thread = threading.Thread(target=send, name="outbox test sender", daemon=True)
        self.thread.start()

    def is_waiting(self) -> bool:
        self.thread.join(STILL_WAITING)
        return self.thread.is_alive()

    def result(self) -> str:
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "the sender is still waiting"
        return self.outcome[0]


def tried(message: Watched, times: int = 1) -> None:
    """Wait until a sender has measured ``message`` ``times`` more times (each try happens under the lock)."""
    for _ in range(times):
        assert message.tries.acquire(timeout=WAIT), "the sender never tried"


def full_outbox(wakeups: Wakeups, bound: int = 1000) -> tuple[Outbox, Target]:
    """An outbox with one message queued that leaves no room for another of 100 bytes."""
    outbox = Outbox(wakeups, max_queued=bound)
    target = Target()
    outbox.put(target, b"f" * (bound - 100))
    return outbox, target


def test_the_outbox_is_a_handoff() -> None:
    """The outbox is the handoff the facade gives its hubs: mypy checks this assignment (pyproject lists the module)."""
    handoff: Handoff = Outbox(Wakeups())
    assert handoff.max_queued > 0


# Order and wake-ups


def test_one_thread_s_messages_arrive_in_its_order_across_targets() -> None:
    log: list[tuple[str, bytes]] = []
    wakeups = Wakeups()
    outbox = Outbox(wakeups)
    a, b = Target("a", log), Target("b", log)
    for target, message in ((a, b"1"), (a, b"2"), (b, b"3"), (a, b"4"), (b, b"5")):
        outbox.put(target, message)
    outbox.put_close(b)
    outbox.put(a, b"6")
    wakeups.run_all()
    assert [message for _, message in log] == [b"1", b"2", b"3", b"4", b"5", b"6"]
    assert a.got == [b"1", b"2", b"4", b"6"]
    assert b.got == [b"3", b"5", CLOSED]


def test_each_thread_keeps_its_order_across_targets_while_the_reactor_drains() -> None:
    """Two threads send to two targets at once; the test thread drains as the reactor would, as wake-ups come."""
    log: list[tuple[str, bytes]] = []
    work: queue.Queue[Callable[[], None]] = queue.Queue()
    outbox = Outbox(work.put, max_queued=4096)  # small: senders also wait for room now and then
    targets = [Target("a", log), Target("b", log)]
    count = 400
    start = threading.Barrier(2, timeout=WAIT)

    def send(thread: int) -> None:
        start.wait()
        for n in range(count):
            outbox.put(targets[(n * 7 + thread) % 3 % 2], b"%d:%d" % (thread, n))

    threads = [threading.Thread(target=send, args=(sender,), daemon=True) for sender in (0, 1)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + WAIT
    while any(thread.is_alive() for thread in threads) or not work.empty():
        assert time.monotonic() < deadline, "the senders did not finish"
        try:
            drain = work.get(timeout=0.1)  # a bounded look: the senders may have just finished
        except queue.Empty:
            continue
        drain()
    for thread in threads:
        thread.join(WAIT)
    assert len(log) == 2 * count
    for sender in (0, 1):
        mine = [message for _, message in log if message.startswith(b"%d:" % sender)]
        assert mine == [b"%d:%d" % (sender, n) for n in range(count)]
    for name, target in zip("ab", targets, strict=True):
        assert [message for got_by, message in log if got_by == name] == target.got


def test_a_burst_costs_one_wake_up_and_one_write_per_target() -> None:
    wakeups = Wakeups()
    outbox = Outbox(wakeups)
    target = Target()
    for n in range(100):
        outbox.put(target, b"%d" % n)
    assert len(wakeups) == 1
    wakeups.run_all()
    assert target.got == [b"%d" % n for n in range(100)]
    assert target.writes == 1
    outbox.put(target, b"next")
    assert len(wakeups) == 1, "after a drain, the next send wakes the reactor again"


def test_a_drain_with_nothing_queued_does_nothing() -> None:
    wakeups = Wakeups()
    outbox = Outbox(wakeups)
    target = Target()
    outbox.put(target, b"m")
    outbox.flush()  # the reactor flushes before a link closes; the wake-up comes after
    wakeups.run_all()
    assert target.got == [b"m"]
    assert target.writes == 1


# The byte bound


def test_a_sender_waits_for_room_until_a_drain_makes_it() -> None:
    wakeups = Wakeups()
    outbox, target = full_outbox(wakeups)
    message = Watched(b"w" * 100)
    sender = Sender(outbox, target, message)
    tried(message)
    assert sender.is_waiting()
    wakeups.run_all()  # the drain takes the first message only: the second was not let in
    assert target.got == [b"f" * 900]
    assert sender.result() == "sent"
    assert len(wakeups) == 1, "the waiting sender's message wakes the reactor once it is in"
    wakeups.run_all()
    assert target.got == [b"f" * 900, b"w" * 100]


def test_a_message_bigger_than_the_bound_goes_in_when_the_queue_is_empty() -> None:
    wakeups = Wakeups()
    outbox = Outbox(wakeups, max_queued=100)
    target = Target()
    assert Sender(outbox, target, b"b" * 1000).result() == "sent"  # it would wait forever if it had to fit
    wakeups.run_all()
    assert target.got == [b"b" * 1000]


def test_a_message_bigger_than_the_bound_waits_behind_queued_ones() -> None:
    wakeups = Wakeups()
    outbox = Outbox(wakeups, max_queued=100)
    target = Target()
    outbox.put(target, b"small")
    big = Watched(b"b" * 1000)
    sender = Sender(outbox, target, big)
    tried(big)
    assert sender.is_waiting()
    wakeups.run_all()
    assert sender.result() == "sent"
    wakeups.run_all()
    assert target.got == [b"small", b"b" * 1000]


# Refusal, pause and close


def test_refuse_wakes_a_waiting_sender_with_oserror_and_refuses_new_ones_until_accept() -> None:
    wakeups = Wakeups()
    outbox, target = full_outbox(wakeups)
    message = Watched(b"w" * 100)
    sender = Sender(outbox, target, message)
    tried(message)
    outbox.refuse("the server said disconnect")
    assert sender.result() == "the server said disconnect"
    assert outbox.refusing()
    with pytest.raises(OSError, match=r"^the server said disconnect$"):
        outbox.put(target, b"later")
    wakeups.run_all()  # what was queued before the refusal is still delivered
    assert target.got == [b"f" * 900]
    outbox.accept()
    assert not outbox.refusing()
    outbox.put(target, b"again")
    wakeups.run_all()
    assert target.got == [b"f" * 900, b"again"]


def test_a_paused_outbox_holds_senders_through_drains_until_resume() -> None:
    wakeups = Wakeups()
    outbox = Outbox(wakeups)
    target = Target()
    outbox.put(target, b"first")
    outbox.pause()
    message = Watched(b"second")
    sender = Sender(outbox, target, message)
    tried(message)
    wakeups.run_all()  # the reactor writes what it has; the link is still full, so the sender stays put
    assert target.got == [b"first"]
    assert sender.is_waiting()
    outbox.resume()
    assert sender.result() == "sent"
    wakeups.run_all()
    assert target.got == [b"first", b"second"]


def test_pause_holds_even_a_sender_with_an_empty_queue() -> None:
    wakeups = Wakeups()
    outbox = Outbox(wakeups)
    outbox.pause()
    message = Watched(b"m")
    sender = Sender(outbox, Target(), message)
    tried(message)
    assert sender.is_waiting()
    assert len(wakeups) == 0, "nothing queued: no wake-up for the reactor"
    outbox.resume()
    assert sender.result() == "sent"


def test_accept_while_paused_keeps_senders_waiting() -> None:
    wakeups = Wakeups()
    outbox = Outbox(wakeups)
    outbox.pause()
    outbox.refuse("ended")
    outbox.accept()
    message = Watched(b"m")
    sender = Sender(outbox, Target(), message)
    tried(message)
    assert sender.is_waiting()
    outbox.resume()
    assert sender.result() == "sent"


def test_a_close_comes_after_what_was_queued_before_it_and_before_what_comes_after() -> None:
    wakeups = Wakeups()
    outbox = Outbox(wakeups)
    target, other = Target(), Target()
    outbox.put(target, b"1")
    outbox.put(other, b"x")
    outbox.put(target, b"2")
    outbox.put_close(target)
    outbox.put(target, b"3")  # the link will drop it as closed: the outbox keeps the order, no more
    assert len(wakeups) == 1
    wakeups.run_all()
    assert target.got == [b"1", b"2", CLOSED, b"3"]
    assert other.got == [b"x"]


def test_a_close_alone_wakes_the_reactor() -> None:
    wakeups = Wakeups()
    outbox = Outbox(wakeups)
    target = Target()
    outbox.put_close(target)
    assert len(wakeups) == 1
    wakeups.run_all()
    assert target.got == [CLOSED]


def test_a_close_never_waits_for_room_or_a_paused_link() -> None:
    """A peer that stopped reading fills the queue and pauses it: the close must still get through."""
    wakeups = Wakeups()
    outbox, target = full_outbox(wakeups)
    outbox.pause()
    closer = threading.Thread(target=outbox.put_close, args=(target,), daemon=True)
    closer.start()
    closer.join(WAIT)
    assert not closer.is_alive(), "put_close waited"
    assert len(wakeups) == 1
    wakeups.run_all()
    assert target.got == [b"f" * 900, CLOSED]


def test_a_close_with_refuse_refuses_waiting_and_later_senders_and_still_delivers_what_was_queued() -> None:
    wakeups = Wakeups()
    outbox, target = full_outbox(wakeups)
    message = Watched(b"w" * 100)
    sender = Sender(outbox, target, message)
    tried(message)
    outbox.put_close(target, refuse="the client was closed")
    assert sender.result() == "the client was closed"
    with pytest.raises(OSError, match=r"^the client was closed$"):
        outbox.put(target, b"after")
    wakeups.run_all()
    assert target.got == [b"f" * 900, CLOSED]


# The direct send


def test_a_quiet_empty_outbox_offers_the_message_to_the_link_and_wakes_nothing() -> None:
    clock, wakeups, direct, target = FakeClock(), Wakeups(), Direct(), Target()
    outbox = Outbox(wakeups, clock=clock)
    outbox.put(target, b"m", direct)
    assert direct.offered == [b"m"]
    assert len(wakeups) == 0
    assert target.got == []


def test_no_direct_send_without_a_direct_link() -> None:
    clock, wakeups, target = FakeClock(), Wakeups(), Target()
    outbox = Outbox(wakeups, clock=clock)
    outbox.put(target, b"m")
    assert len(wakeups) == 1


def test_a_send_within_the_quiet_window_is_queued_and_the_window_restarts_with_each_try() -> None:
    clock, wakeups, direct, target = FakeClock(), Wakeups(), Direct(), Target()
    outbox = Outbox(wakeups, clock=clock)
    outbox.put(target, b"1", direct)
    clock.now += DIRECT_SEND_AFTER_QUIET_SECONDS / 2
    outbox.put(target, b"2", direct)  # mid-burst: queued
    assert direct.offered == [b"1"]
    wakeups.run_all()
    assert target.got == [b"2"]
    clock.now += DIRECT_SEND_AFTER_QUIET_SECONDS * 2  # quiet since the drain ended
    outbox.put(target, b"3", direct)
    assert direct.offered == [b"1", b"3"]
    assert len(wakeups) == 0


def test_the_quiet_window_starts_when_a_drain_ends() -> None:
    clock, wakeups, direct, target = FakeClock(), Wakeups(), Direct(), Target()
    outbox = Outbox(wakeups, clock=clock)
    outbox.put(target, b"queued")  # no direct link: queued
    clock.now += DIRECT_SEND_AFTER_QUIET_SECONDS * 2
    wakeups.run_all()  # the drain ends now: a send right after it is taken as mid-burst
    outbox.put(target, b"right after", direct)
    assert direct.offered == []
    wakeups.run_all()
    assert target.got == [b"queued", b"right after"]


def test_no_direct_send_while_anything_is_queued() -> None:
    clock, wakeups, direct, target = FakeClock(), Wakeups(), Direct(), Target()
    outbox = Outbox(wakeups, clock=clock)
    outbox.put(target, b"1")
    clock.now += DIRECT_SEND_AFTER_QUIET_SECONDS * 2
    outbox.put(target, b"2", direct)
    assert direct.offered == []
    wakeups.run_all()
    assert target.got == [b"1", b"2"]


def test_no_direct_send_while_a_batch_is_being_written() -> None:
    """A message sent while the reactor writes a batch must queue behind it, not overtake it on the wire."""
    clock, wakeups, direct = FakeClock(), Wakeups(), Direct()
    outbox = Outbox(wakeups, clock=clock)
    sent_meanwhile: list[Sender] = []

    class Slow(Target):
        def write_messages(self, messages: list[bytes]) -> None:
            super().write_messages(messages)
            if not sent_meanwhile:
                clock.now += DIRECT_SEND_AFTER_QUIET_SECONDS * 2
                sender = Sender(outbox, self, b"meanwhile", direct)
                sent_meanwhile.append(sender)
                assert sender.result() == "sent"

    target = Slow()
    outbox.put(target, b"batch")
    wakeups.run_all()
    assert direct.offered == []
    wakeups.run_all()
    assert target.got == [b"batch", b"meanwhile"]


def test_no_direct_send_while_refusing_or_paused() -> None:
    clock, wakeups, direct, target = FakeClock(), Wakeups(), Direct(), Target()
    outbox = Outbox(wakeups, clock=clock)
    outbox.refuse("ended")
    with pytest.raises(OSError, match="ended"):
        outbox.put(target, b"m", direct)
    outbox.accept()
    outbox.pause()
    message = Watched(b"held")
    sender = Sender(outbox, target, message, direct)
    tried(message)
    assert sender.is_waiting()
    assert direct.offered == []


def test_a_direct_link_that_declines_has_the_message_queued() -> None:
    clock, wakeups, direct, target = FakeClock(), Wakeups(), Direct(takes=False), Target()
    outbox = Outbox(wakeups, clock=clock)
    outbox.put(target, b"m", direct)
    assert direct.offered == [b"m"]
    assert len(wakeups) == 1
    wakeups.run_all()
    assert target.got == [b"m"]


# Failures


def test_a_delivery_that_raises_is_logged_and_the_rest_of_the_batch_is_delivered() -> None:
    wakeups = Wakeups()
    outbox = Outbox(wakeups)
    broken, fine, later = Target(), Target(), Target()
    broken.fail = RuntimeError("the link broke")
    outbox.put(broken, b"1")
    outbox.put(fine, b"2")
    outbox.put_close(broken)
    outbox.put(fine, b"3")
    with capturedLogs() as events:
        wakeups.run_all()
    assert fine.got == [b"2", b"3"]
    failures = [event["log_failure"].value for event in events if "log_failure" in event]
    assert [str(error) for error in failures] == ["the link broke", "the link broke"]
    outbox.put(later, b"4")  # the outbox goes on
    wakeups.run_all()
    assert later.got == [b"4"]


def test_a_single_target_batch_that_raises_is_logged_and_the_next_one_is_delivered() -> None:
    clock, wakeups, direct = FakeClock(), Wakeups(), Direct()
    outbox = Outbox(wakeups, clock=clock)
    target = Target()
    target.fail = RuntimeError("write failed")
    outbox.put(target, b"1")
    with capturedLogs() as events:
        wakeups.run_all()
    assert any("log_failure" in event for event in events)
    target.fail = None
    clock.now += DIRECT_SEND_AFTER_QUIET_SECONDS * 2
    outbox.put(target, b"2", direct)  # the failed batch is over: not draining any more
    assert direct.offered == [b"2"]


class Interrupting(Wakeups):
    """A ``call_from_thread`` where Ctrl-C lands in its first call, before the wake-up is made."""

    def __init__(self) -> None:
        super().__init__()
        self.interrupted = False

    def __call__(self, function: Callable[[], None]) -> None:
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt
        super().__call__(function)


def test_ctrl_c_inside_the_wake_up_of_a_put_leaves_a_drain_for_what_was_queued() -> None:
    wakeups = Interrupting()
    outbox = Outbox(wakeups)
    target = Target()
    with pytest.raises(KeyboardInterrupt):
        outbox.put(target, b"1")
    assert len(wakeups) == 1, "the interrupted sender made the wake-up on its way out"
    outbox.put(target, b"2")  # a drain is coming: no second wake-up
    assert len(wakeups) == 1
    wakeups.run_all()
    assert target.got == [b"1", b"2"]
    outbox.put(target, b"3")
    assert len(wakeups) == 1
    wakeups.run_all()
    assert target.got == [b"1", b"2", b"3"]


def test_ctrl_c_inside_the_wake_up_of_a_close_leaves_a_drain_for_it() -> None:
    wakeups = Interrupting()
    outbox = Outbox(wakeups)
    target = Target()
    with pytest.raises(KeyboardInterrupt):
        outbox.put_close(target)
    assert len(wakeups) == 1
    wakeups.run_all()
    assert target.got == [CLOSED]
