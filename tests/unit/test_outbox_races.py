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
from types import CodeType, FrameType
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


#: Where CPython 3.11 looks for a pending signal and so can raise ``KeyboardInterrupt``: on entering a function
#: (its ``RESUME``, seen here as the trace's call event), and after a call returns or a jump goes back.
_CHECKS_AFTER = frozenset(
    {
        "CALL",
        "CALL_FUNCTION_EX",
        "JUMP_BACKWARD",
        "POP_JUMP_BACKWARD_IF_FALSE",
        "POP_JUMP_BACKWARD_IF_TRUE",
        "POP_JUMP_BACKWARD_IF_NONE",
        "POP_JUMP_BACKWARD_IF_NOT_NONE",
    }
)


class Tracer:
    """Stops the calling thread at the points of the outbox's code (and of ``also``, the test's own stand-in for
    ``call_from_thread``) where something could come in, while installed, and hands each to ``at_point``.

    A signal comes in only where CPython checks for one (``_CHECKS_AFTER``, and a function's entry). Another
    thread may run at any instruction: an allocation can start the garbage collector, whose finalizers are
    Python code that can let another thread have the interpreter."""

    every_instruction = False

    def __init__(self, also: tuple[CodeType, ...] = ()) -> None:
        self.also = also
        self.seen = 0
        self._previous: dict[FrameType, str] = {}

    def __enter__(self) -> Tracer:
        sys.settrace(self._call)
        return self

    def __exit__(self, *exc_info: object) -> None:
        sys.settrace(None)

    def at_point(self, signal_check: bool) -> None:
        """Called at each point; raising here raises in the traced code."""

    def _call(self, frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename != outbox_module.__file__ and frame.f_code not in self.also:
            return None
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        self.at_point(True)  # the function's entry (its RESUME, which makes no opcode event of its own)
        return self._opcode

    def _opcode(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event != "opcode":
            return self._opcode
        name = dis.opname[frame.f_code.co_code[frame.f_lasti]]
        previous = self._previous.get(frame)
        self._previous[frame] = name
        signal_check = previous in _CHECKS_AFTER
        if signal_check or self.every_instruction:
            self.at_point(signal_check)
        return self._opcode


class Interrupt(Tracer):
    """Raises ``KeyboardInterrupt`` at the ``at``-th point where a signal could come in."""

    def __init__(self, at: int, also: tuple[CodeType, ...] = ()) -> None:
        super().__init__(also)
        self.at = at
        self.fired = False

    def at_point(self, signal_check: bool) -> None:
        self.seen += 1
        if self.seen == self.at:
            self.fired = True
            raise KeyboardInterrupt


def waker(wakeups: list[Callable[[], None]]) -> Callable[[Callable[[], None]], None]:
    """A ``call_from_thread`` in Python, as the real one is: a signal can come in at its entry, before it queues."""

    def call_from_thread(function: Callable[[], None]) -> None:
        wakeups.append(function)

    return call_from_thread


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
    wake = waker(wakeups)
    outbox = Outbox(wake)
    targets = {name: Target(name) for name in "ab"}
    accepted: list[bytes] = []
    uncertain: set[bytes] = set()
    fired = False
    for index, (kind, name, message) in enumerate(STEPS):
        if kind == "drain":
            while wakeups:
                wakeups.pop(0)()
            continue
        interrupt = Interrupt(at if index == step else 0, also=(wake.__code__,))
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
        if b"close a" in accepted:
            assert b"a8" not in accepted, f"accepted after a refusing close (step {step}, bytecode {at})"
        at += 1


class Meddle(Tracer):
    """At the ``at``-th instruction, runs ``action`` in another thread and waits for it (briefly: where this thread
    holds the outbox's lock, the action finishes once it lets go). With ``then``, also raises
    ``KeyboardInterrupt`` at the ``then``-th point after that where a signal could come in."""

    every_instruction = True

    def __init__(self, at: int, action: Callable[[], None], then: int = 0, also: tuple[CodeType, ...] = ()) -> None:
        super().__init__(also)
        self.at = at
        self.action = action
        self.then = then
        self.fired = False
        self.interrupted = False
        self.threads: list[threading.Thread] = []
        self._checks_after = 0
        #: A second action, at a later instruction (``then_meddle``).
        self.second_at = 0
        self.second_action: Callable[[], None] = lambda: None
        self.second_fired = False

    def _beside(self, action: Callable[[], None]) -> None:
        """Run ``action`` in another thread; let it finish unless it needs the lock this thread holds."""
        thread = threading.Thread(target=action, daemon=True)
        self.threads.append(thread)
        thread.start()
        thread.join(0.002)  # a bound, not a wait for an event: a finished action ends it at once

    def then_meddle(self, at: int, action: Callable[[], None]) -> None:
        """Also run ``action`` in another thread at instruction ``at`` (after the first)."""
        self.second_at = at
        self.second_action = action

    def at_point(self, signal_check: bool) -> None:
        self.seen += 1
        if self.seen == self.at:
            self.fired = True
            self._beside(self.action)
        elif self.seen == self.second_at:
            self.second_fired = True
            if not self.threads[-1].is_alive():  # else the first action waits for this thread's lock: no second
                self._beside(self.second_action)
        elif self.fired and self.then and signal_check:
            self._checks_after += 1
            if self._checks_after == self.then:
                self.interrupted = True
                raise KeyboardInterrupt


#: The calls the two threads make: a send to the target whose run is open (the fast path), a send to the other
#: target (which ends that run), a drain (the reactor's), a close of the open run's target that refuses what
#: follows, either of those two before or after a drain (a late send may then find its run emptied, or gone), and
#: a refusal without a close, alone or before a drain.
CALLS = [
    "send-mine",
    "send-other",
    "drain",
    "close-mine",
    "send-other+drain",
    "close-mine+drain",
    "drain+send-other",
    "drain+close-mine",
    "refuse",
    "refuse+drain",
]


def meddled_run(
    traced: str, meddling: str, at: int, then: int = 0, second: tuple[int, str] | None = None
) -> tuple[bool, bool, bool]:
    """Make the ``traced`` call, stopped at its ``at``-th instruction while another thread makes the ``meddling``
    one (and, with ``then``, interrupted at the ``then``-th point after); then send once more. Only the wake-ups
    the outbox asked for drain it: a lost wake-up leaves messages behind. Returns whether the meddling and the
    interrupt happened, and the second meddling (``second``: at which instruction, and what)."""
    wakeups: list[Callable[[], None]] = []
    wake = waker(wakeups)
    outbox = Outbox(wake)
    targets = {"mine": Target("mine"), "other": Target("other")}
    outbox.put(targets["mine"], b"mine 0")  # the open run: a send to it takes the fast path
    accepted = [b"mine 0"]
    uncertain: set[bytes] = set()

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
        elif kind == "refuse":
            outbox.refuse("refused")  # as when a link is lost: what was accepted still goes to the target
        else:
            message = b"%s %d" % (kind[5:].encode(), number)
            try:
                outbox.put(targets[kind[5:]], message)
            except OSError:
                return
            except KeyboardInterrupt:
                uncertain.add(message)
                return
            accepted.append(message)

    meddle = Meddle(at, lambda: call(meddling, 2), then=then, also=(wake.__code__,))
    if second is not None:
        meddle.then_meddle(second[0], lambda: call(second[1], 4))
    with meddle:
        call(traced, 1)
    for thread in meddle.threads:
        thread.join(WAIT)
        assert not thread.is_alive()
    made = [traced, *(meddling.split("+") if meddle.fired else [])]
    made += second[1].split("+") if second is not None and meddle.second_fired else []
    closes = made.count("close-mine")
    if not closes:
        outbox.accept()
        call("send-mine", 3)  # after all that, a send still goes out
    drain()
    where = f"({traced}, {meddling} at {at}, then {then})"
    for name, target in targets.items():
        sent = [m for m in target.got if m != CLOSED and m not in uncertain]
        assert sorted(sent) == sorted(m for m in accepted if m.startswith(name.encode())), f"{target.got} {where}"
        assert len(set(target.got) - {CLOSED}) == len(target.got) - target.got.count(CLOSED), f"twice {where}"
    mine = targets["mine"].got
    assert mine.count(CLOSED) == closes and (not closes or mine[-1] == CLOSED), f"{mine} {where}"
    assert mine[0] == b"mine 0", f"{mine} {where}"
    return meddle.fired, meddle.interrupted, meddle.second_fired


@pytest.mark.parametrize(
    ("traced", "meddling"),
    [
        (traced, meddling)
        for traced in ["send-mine", "send-other", "close-mine", "drain"]
        for meddling in CALLS
        if not (traced == "drain" and "drain" in meddling)  # drains run in the reactor thread only: one at a time
    ],
)
def test_another_thread_acting_at_any_point_of_a_call_loses_misroutes_and_duplicates_nothing(
    traced: str, meddling: str
) -> None:
    at = 1
    while meddled_run(traced, meddling, at)[0]:
        at += 1
        assert at < 2000, "the call never finished"


@pytest.mark.parametrize("meddling", ["drain", "send-other+drain"])
def test_a_send_interrupted_after_another_thread_acted_leaves_no_wake_up_lost(meddling: str) -> None:
    """A drain that takes a fast send's message before the send claims its wake-up, then Ctrl-C in that claim:
    the next send must still wake the reactor."""
    at = 1
    while True:
        then = 1
        while True:
            fired, interrupted, _ = meddled_run("send-mine", meddling, at, then)
            if not interrupted:
                break
            then += 1
        if not fired:
            break
        at += 1
        assert at < 2000, "the call never finished"


@pytest.mark.parametrize("first", ["send-other", "close-mine"])
@pytest.mark.parametrize("traced", ["send-mine", "send-other"])
def test_a_send_stopped_twice_while_other_threads_change_the_run_and_drain_loses_and_misroutes_nothing(
    traced: str, first: str
) -> None:
    """Two other threads' calls land at any two instructions of the lock-free part of one send: the first
    changes the open run, the second drains (so a message appended to a run that closed under it may already be
    gone). Past the first ``LOCK_FREE`` instructions a send holds the lock, where one meddling is enough."""
    for at in range(1, LOCK_FREE):
        for second in range(at + 1, at + LOCK_FREE):
            if not meddled_run(traced, first, at, second=(second, "drain"))[2]:
                break  # the call ended before the second point


#: More instructions than a send runs before it takes the lock, or appends and returns.
LOCK_FREE = 40


class Pause(Tracer):
    """Holds the traced thread at its ``at``-th instruction until ``go`` is set."""

    every_instruction = True

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at
        self.paused = threading.Event()
        self.go = threading.Event()

    def at_point(self, signal_check: bool) -> None:
        self.seen += 1
        if self.seen == self.at:
            self.paused.set()
            self.go.wait(WAIT)


def paused_send_run(paused_at: int, resumed_at: int) -> tuple[bool, bool]:
    """A send to the open run is held at its ``paused_at``-th instruction; the reactor drains; another thread's
    send to another target is stopped at its ``resumed_at``-th instruction while the held send goes on. Returns
    whether the send was held (it had that many instructions) and the other was stopped."""
    wakeups: list[Callable[[], None]] = []
    outbox = Outbox(wakeups.append)
    mine, other = Target("mine"), Target("other")
    outbox.put(mine, b"mine 0")
    outbox.put(mine, b"mine 1")  # the open run holds two: the held send takes the fast path
    accepted = [b"mine 0", b"mine 1"]
    pause = Pause(paused_at)

    def held_send() -> None:
        with pause:
            outbox.put(mine, b"mine 2")
        accepted.append(b"mine 2")

    held = threading.Thread(target=held_send, daemon=True)
    held.start()
    if not pause.paused.wait(1.0):
        held.join(WAIT)
        return False, False  # the send ended before that instruction
    while wakeups:
        wakeups.pop(0)()  # the reactor drains while the send is held: the open run is empty now

    def resume() -> None:
        pause.go.set()
        held.join(0.002)

    meddle = Meddle(resumed_at, resume)
    with meddle:
        outbox.put(other, b"other 0")
    pause.go.set()
    held.join(WAIT)
    assert not held.is_alive()
    while wakeups:
        wakeups.pop(0)()
    where = f"(held at {paused_at}, the other stopped at {resumed_at})"
    assert mine.got == [m for m in accepted if m.startswith(b"mine")], f"{mine.got} {where}"
    assert other.got == [b"other 0"], f"{other.got} {where}"
    return True, meddle.fired


def test_a_send_held_while_the_reactor_drains_and_another_thread_ends_the_run_is_never_lost() -> None:
    """The open run, emptied by a drain, ends while a send that saw it holding messages appends to it."""
    for paused_at in range(1, LOCK_FREE):  # the held send's lock-free part, and a little of what follows
        if not paused_send_run(paused_at, 1)[0]:
            break
        resumed_at = 2
        while paused_send_run(paused_at, resumed_at)[1]:
            resumed_at += 1
            assert resumed_at < 2000, "the other send never finished"
