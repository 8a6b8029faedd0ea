"""The outbox under the two things its lock-free fast path must survive: other threads at any moment, and a
``KeyboardInterrupt`` wherever the interpreter can raise one in a send.

Races: several threads send to several targets while another drains, with the interpreter switching threads as
often as it can; every message must reach the target it was sent to, once, in its thread's order. Interrupts: a
trace function raises ``KeyboardInterrupt`` at the n-th point of one call where CPython checks for signals (a
function's entry, the return of a call, a jump back), for every n that call has; afterwards nothing a call
accepted may be lost, nothing may arrive twice, and the outbox must still take, wake and deliver (a lock left
held would show as a send that never returns). Meddling: one thread is stopped at each of those points in turn
while another thread makes a call of its own.
"""

from __future__ import annotations

import dis
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import pytest

from leads_twisted.comm import outbox as outbox_module
from leads_twisted.comm.outbox import Outbox

WAIT = 10.0
CLOSED = b"<closed>"


class Target:
    """Keeps what it is given, writes and closes alike, in order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.got: list[bytes] = []

    def write_messages(self, messages: list[bytes]) -> None:
        self.got.extend(messages)

    def close_now(self) -> None:
        self.got.append(CLOSED)


@contextmanager
def fast_thread_switches() -> Iterator[None]:
    """Let the interpreter switch threads as often as it can, so that races have every chance to show."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def run_senders(outbox: Outbox, senders: list[Callable[[], None]], work: list[Callable[[], None]]) -> None:
    """Run ``senders`` in threads while this thread drains the wake-ups they make, as the reactor would (and
    only those: a message left without its wake-up stays undelivered)."""
    threads = [threading.Thread(target=sender, daemon=True) for sender in senders]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + WAIT
    while any(thread.is_alive() for thread in threads) or work:
        assert time.monotonic() < deadline, "the senders did not finish"
        if work:
            work.pop(0)()
        else:
            time.sleep(0)  # yield to the senders; the loop is bounded by the deadline
    for thread in threads:
        thread.join(WAIT)


def test_racing_senders_and_drains_deliver_each_message_once_to_its_own_target_in_order() -> None:
    work: list[Callable[[], None]] = []
    outbox = Outbox(work.append, max_queued=8 * 1024)  # room for a few dozen fast messages, then waits
    targets = [Target(name) for name in "abc"]
    count = 3000

    def sender(thread: int) -> Callable[[], None]:
        def send() -> None:
            for n in range(count):
                # Runs of different lengths per thread, so that targets change under other threads' appends.
                target = targets[(n // (thread + 1) + thread) % 3]
                outbox.put(target, b"%s %d %d" % (target.name.encode(), thread, n))

        return send

    with fast_thread_switches():
        run_senders(outbox, [sender(thread) for thread in range(4)], work)
    total = 0
    for target in targets:
        total += len(target.got)
        assert all(message.startswith(target.name.encode() + b" ") for message in target.got), "a wrong target"
        for thread in range(4):
            mine = [int(m.split()[2]) for m in target.got if m.split()[1] == b"%d" % thread]
            assert mine == sorted(set(mine)), "out of order or twice"
    assert total == 4 * count


def test_a_close_with_refusal_racing_senders_delivers_exactly_what_they_were_told_was_accepted() -> None:
    work: list[Callable[[], None]] = []
    outbox = Outbox(work.append, max_queued=64 * 1024)
    target = Target("t")
    accepted: list[list[bytes]] = [[] for _ in range(3)]
    refused = [0, 0, 0]
    started = threading.Barrier(4, timeout=WAIT)

    def sender(thread: int) -> Callable[[], None]:
        def send() -> None:
            started.wait()
            for n in range(100_000):
                message = b"%d %d" % (thread, n)
                try:
                    outbox.put(target, message)
                except OSError:
                    refused[thread] += 1
                    if refused[thread] == 50:
                        return
                    continue
                accepted[thread].append(message)

        return send

    def closer() -> None:
        started.wait()
        while sum(map(len, accepted)) < 2000:
            time.sleep(0)  # bounded: the senders reach 2000 within the deadline or the test fails
        outbox.put_close(target, refuse="closed")

    with fast_thread_switches():
        run_senders(outbox, [sender(thread) for thread in range(3)] + [closer], work)
    assert target.got[-1] == CLOSED and target.got.count(CLOSED) == 1
    delivered = target.got[:-1]
    assert sorted(delivered) == sorted(m for mine in accepted for m in mine), "lost, or sent though refused"
    for thread in range(3):
        assert [m for m in delivered if m.startswith(b"%d " % thread)] == accepted[thread]
    assert all(count == 50 for count in refused)


#: Where CPython (3.11, 3.12) looks for a pending signal and so can raise ``KeyboardInterrupt``: on entering a
#: function (``RESUME``), and right after a call returns or a loop jumps back.
_CHECKS_AFTER = frozenset({"CALL", "CALL_FUNCTION_EX", "JUMP_BACKWARD"})


class Interrupt:
    """Raises ``KeyboardInterrupt`` at the ``at``-th point of the outbox's code, while installed, where the
    interpreter could deliver one: each function entry, and each instruction after a call or a jump back."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.seen = 0
        self.fired = False
        self._previous: dict[FrameType, str] = {}

    def __enter__(self) -> Interrupt:
        sys.settrace(self._call)
        return self

    def __exit__(self, *exc_info: object) -> None:
        sys.settrace(None)

    def _call(self, frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename != outbox_module.__file__:
            return None
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        return self._opcode

    def _opcode(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event != "opcode":
            return self._opcode
        name = dis.opname[frame.f_code.co_code[frame.f_lasti]]
        previous = self._previous.get(frame)
        self._previous[frame] = name
        if name == "RESUME" or previous in _CHECKS_AFTER:
            self.seen += 1
            if self.seen == self.at:
                self.fired = True
                raise KeyboardInterrupt
        return self._opcode


#: One thread's calls: a burst to a (the fast path after the first), a change of target, a drain, a close of
#: b, and a close of a that refuses what follows.
STEPS: list[tuple[str, str, bytes]] = [
    ("put", "a", b"a1"),
    ("put", "a", b"a2"),
    ("put", "a", b"a3"),
    ("put", "b", b"b1"),
    ("put", "b", b"b2"),
    ("put", "a", b"a4"),
    ("drain", "", b""),
    ("put", "a", b"a5"),
    ("put", "a", b"a6"),
    ("close", "b", b""),
    ("put", "a", b"a7"),
    ("close-refuse", "a", b""),
    ("put", "a", b"a8"),
]


def interrupted_run(step: int, at: int) -> tuple[bool, dict[str, list[bytes]], list[bytes], set[bytes]]:
    """Run ``STEPS`` with an interrupt at bytecode ``at`` of step ``step``; then run the wake-ups only.

    Returns whether the interrupt fired, what each target got, what the calls accepted (returned from), and
    what is uncertain (the interrupted call's message)."""
    wakeups: list[Callable[[], None]] = []
    outbox = Outbox(wakeups.append)
    targets = {name: Target(name) for name in "ab"}
    accepted: list[bytes] = []
    uncertain: set[bytes] = set()
    fired = False
    for index, (kind, name, message) in enumerate(STEPS):
        if kind == "drain":
            while wakeups:
                wakeups.pop(0)()
            continue
        interrupt = Interrupt(at if index == step else 0)
        try:
            with interrupt:
                if kind == "put":
                    outbox.put(targets[name], message)
                else:
                    outbox.put_close(targets[name], refuse="bye" if kind == "close-refuse" else None)
        except KeyboardInterrupt:
            uncertain.add(message or b"close " + name.encode())
            fired = True
            continue
        except OSError:
            continue  # refused: not accepted
        accepted.append(message or b"close " + name.encode())
    while wakeups:
        wakeups.pop(0)()
    # Nothing left locked: a last send (after taking sends again) goes through, from a thread that may not hang.
    last = Target("last")

    def after() -> None:
        outbox.accept()
        outbox.put(last, b"z")

    thread = threading.Thread(target=after, daemon=True)
    thread.start()
    thread.join(WAIT)
    assert not thread.is_alive(), f"a lock was left held (step {step}, bytecode {at})"
    assert wakeups, "the last send made no wake-up"
    while wakeups:
        wakeups.pop(0)()
    assert last.got == [b"z"]
    got = {name: target.got for name, target in targets.items()}
    return fired, got, accepted, uncertain


def cases() -> Iterator[int]:
    return iter(index for index, (kind, _, _) in enumerate(STEPS) if kind != "drain")


@pytest.mark.parametrize("step", list(cases()))
def test_an_interrupt_at_any_bytecode_of_a_call_loses_nothing_accepted_and_leaves_the_outbox_working(
    step: int,
) -> None:
    at = 1
    while True:
        assert at < 5000, "the call never finished: more bytecodes than any call here runs"
        fired, got, accepted, uncertain = interrupted_run(step, at)
        if not fired:
            break  # the call ran to its end before the at-th bytecode: every point has been tried
        for name, messages in got.items():
            wanted = [m for m in accepted if m.startswith(name.encode()) and not m.startswith(b"close")]
            closes = [m for m in accepted if m == b"close " + name.encode()]
            plain = [m for m in messages if m != CLOSED]
            assert len(plain) == len(set(plain)), f"twice: {messages} (step {step}, bytecode {at})"
            assert [m for m in plain if m not in uncertain] == wanted, f"{messages} (step {step}, bytecode {at})"
            assert messages.count(CLOSED) >= len(closes)
            if closes:
                index = messages.index(CLOSED)
                close_at = accepted.index(closes[0])
                before = {m for m in accepted[:close_at] if m.startswith(name.encode())}
                assert before <= set(messages[:index]), f"sent after its close: {messages} (step {step}, bytecode {at})"
        at += 1


class Meddle(Interrupt):
    """At the ``at``-th point where the interpreter could switch threads, runs ``action`` in another thread and
    waits for it (briefly: where this thread holds the outbox's lock, the action finishes once it lets go)."""

    def __init__(self, at: int, action: Callable[[], None]) -> None:
        super().__init__(at)
        self.action = action
        self.thread: threading.Thread | None = None

    def _opcode(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event != "opcode":
            return self._opcode
        name = dis.opname[frame.f_code.co_code[frame.f_lasti]]
        previous = self._previous.get(frame)
        self._previous[frame] = name
        if name == "RESUME" or previous in _CHECKS_AFTER:
            self.seen += 1
            if self.seen == self.at:
                self.fired = True
                self.thread = threading.Thread(target=self.action, daemon=True)
                self.thread.start()
                self.thread.join(0.02)
        return self._opcode


#: The calls the two threads make: a send to the target whose run is open (the fast path), a send to the other
#: target (which ends that run), a drain (the reactor's), a close of the open run's target that refuses what
#: follows, and either of those two before or after a drain (a late send may then find its run emptied, or gone).
CALLS = [
    "send-mine",
    "send-other",
    "drain",
    "close-mine",
    "send-other+drain",
    "close-mine+drain",
    "drain+send-other",
    "drain+close-mine",
]


def meddled_run(traced: str, meddling: str, at: int) -> bool:
    """Make the ``traced`` call, stopped at its ``at``-th point while another thread makes the ``meddling`` one;
    check what arrived. Returns whether the ``at``-th point was reached."""
    wakeups: list[Callable[[], None]] = []
    outbox = Outbox(wakeups.append)
    targets = {"mine": Target("mine"), "other": Target("other")}
    outbox.put(targets["mine"], b"mine 0")  # the open run: a send to it takes the fast path
    accepted = [b"mine 0"]

    def drain() -> None:
        while wakeups:
            wakeups.pop(0)()

    def call(kind: str, number: int) -> None:
        if "+" in kind:
            for part in kind.split("+"):
                call(part, number)
        elif kind == "drain":
            drain()
        elif kind == "close-mine":
            outbox.put_close(targets["mine"], refuse="closed")
        else:
            message = b"%s %d" % (kind[5:].encode(), number)
            try:
                outbox.put(targets[kind[5:]], message)
            except OSError:
                return
            accepted.append(message)

    meddle = Meddle(at, lambda: call(meddling, 2))
    with meddle:
        call(traced, 1)
    if meddle.thread is not None:
        meddle.thread.join(WAIT)
        assert not meddle.thread.is_alive()
    drain()
    where = f"({traced}, {meddling} at {at})"
    for name, target in targets.items():
        sent = [m for m in target.got if m != CLOSED]
        assert sorted(sent) == sorted(m for m in accepted if m.startswith(name.encode())), f"{target.got} {where}"
    mine = targets["mine"].got
    closes = [traced, *(meddling.split("+") if meddle.fired else [])].count("close-mine")
    assert mine.count(CLOSED) == closes and (not closes or mine[-1] == CLOSED), f"{mine} {where}"
    assert mine[0] == b"mine 0", f"{mine} {where}"
    return meddle.fired


@pytest.mark.parametrize("meddling", CALLS)
@pytest.mark.parametrize("traced", ["send-mine", "send-other", "close-mine"])
def test_another_thread_acting_at_any_point_of_a_call_loses_misroutes_and_duplicates_nothing(
    traced: str, meddling: str
) -> None:
    at = 1
    while meddled_run(traced, meddling, at):
        at += 1
        assert at < 500, "the call never finished"
