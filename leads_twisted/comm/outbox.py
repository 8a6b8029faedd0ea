"""Hands messages from any thread to the reactor thread in batches, keeping each thread's order.

A sending thread appends its message to the open run (a list of messages for one target) and, only if no drain
is scheduled yet, schedules one reactor wake-up; the drain takes everything at once. So a burst of sends costs
one wake-up, not one per message. The queue is bounded in bytes: a thread that sends faster than the reactor can
write waits for room. A client also pauses its queue while its link's transport is full, so its senders wait
for the peer; a server never pauses (one slow client must not stop the others): its ``slow_policy`` acts on that
client instead. A client whose link has ended refuses (``refuse``): every sender, waiting or new, gets
``OSError``.

A message to one link, sent when the queue has been empty and quiet for a moment (a request, a reply to a
reply, a reading every few milliseconds), skips the queue: the sending thread writes it to the socket itself
if the link lets it (``DirectSender``), which saves waking the reactor thread. A burst is queued and batched.

Mid-burst, a send takes no lock (the fast path): while the open run is for its target, holds something and has
room, a small message is appended to it with one ``list.append``, which the GIL makes atomic. The open run is
one ``(target, messages)`` pair, read once, so a message can only join a run for its own target. Everything
else (the first message of a run, a new target, a large message, waiting, a close, a refusal) goes through the
lock. The lock ends a run by listing it with the closed runs and then putting a new pair in its place; the
drain takes each run's messages with one slice and deletes just those (so it empties the open run in place).
A sender that appended to a run just ended sees the pair replaced and looks under the lock: its message was
either taken (it goes out with the run) or is still there (it takes it back and sends it again). A close is a
run of its own after the run it ends, so nothing appended late can slip in behind it. None of this depends on
where the interpreter switches threads, so a garbage collector's finalizer running mid-send changes nothing.

Memory: a message the lock counts costs its length plus ``_ENTRY_COST``; one appended without the lock is
counted as ``_FAST_COST`` (it is at most ``_FAST_SIZE`` bytes). Each sending thread can overshoot the bound by
one fast message (it tests the room, then appends).

Ctrl-C: a ``KeyboardInterrupt`` may be raised in a sending thread (the main one) at any function entry, after
any call, or at a jump back. So every lock is taken with ``with``; each message goes into a run in one step that
cannot be interrupted halfway (``list.append``); a run ended halfway is at worst listed twice, and the drain's
slice takes each message once; and a sender interrupted after queueing or after claiming the wake-up makes a
wake-up on its way out (a second drain finds the queue empty and does nothing). An interrupted refusing close
leaves sends refused, perhaps with the close not queued: its caller saw the interrupt and may close again. A
waiting sender waits at a gate (a ``Latch`` the reactor opens) rather than on a ``Condition``, whose
Python-level wait could be left half-done by an interrupt.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from twisted.logger import Logger

from leads_twisted.comm.handoff import DirectSender, HandoffTarget
from leads_twisted.comm.latch import Latch
from leads_twisted.comm.write_batch import WriteBatch

_log = Logger(namespace="leads_twisted.outbox")

#: Queued in place of a message: close the target after everything queued before it.
CLOSE: Any = object()

#: Bytes a service may hold queued across threads before senders wait.
DEFAULT_MAX_QUEUED: int = 16 * 1024 * 1024

#: The bookkeeping cost counted for each queued message besides its payload.
_ENTRY_COST: int = 64

#: The largest message the fast path takes; each it takes is counted as ``_FAST_COST`` bytes.
_FAST_SIZE: int = 256
_FAST_COST: int = _FAST_SIZE + _ENTRY_COST

#: A message skips the queue only after the queue has been empty and untouched this long: within a burst,
#: messages come microseconds apart and are worth batching, one write and one wake-up for many.
DIRECT_SEND_AFTER_QUIET_SECONDS: float = 50e-6


#: What the outbox delivers to: a link, a hub, or a broadcast (declared with the hub's ``Handoff``).
OutboxTarget = HandoffTarget


#: A run: the target, and the messages for it in order (or ``[CLOSE]``).
_Run = tuple[OutboxTarget | None, list[Any]]


def _take(run: list[Any]) -> list[Any]:
    """Remove and return what ``run`` holds now; a message appended meanwhile stays, at its end."""
    count = len(run)
    taken = run[:count]
    del run[:count]
    return taken


def _take_back(run: list[Any], message: bytes) -> bool:
    """Remove ``message`` (this very object) from ``run`` if it is still there; say whether it was."""
    for index in range(len(run) - 1, -1, -1):
        if run[index] is message:
            del run[index]
            return True
    return False


class Outbox:
    """A bounded, thread-safe queue of ``(target, message)`` drained in the reactor thread: the facade's ``Handoff``."""

    def __init__(
        self,
        call_from_thread: Callable[[Callable[[], None]], Any],
        max_queued: int = DEFAULT_MAX_QUEUED,
        write_batch: WriteBatch | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.call_from_thread = call_from_thread
        #: Seconds from any fixed start; only differences count (the direct send's quiet window).
        self._clock = clock
        self._write_batch: WriteBatch = write_batch if write_batch is not None else WriteBatch()
        self.max_queued: int = max_queued
        self._lock = threading.Lock()
        #: What a sender that must wait waits at: a fresh closed latch put here by the first such sender, opened
        #: by the reactor when there is room, the link resumes, or sends are refused.
        self._gate = Latch()
        self._gate.open()
        #: The open run: ``(target, messages)``, one object, so that a send never pairs one run's messages with
        #: another's target. Replaced when it ends (the drain empties it in place); target ``None`` until a send.
        self._open: _Run = (None, [])
        #: The open run's length up to which the fast path may append (the byte bound, in fast messages).
        self._fast_limit = 0
        #: Runs closed before the open one, in order: ``(target, messages)``, or ``(target, [CLOSE])``.
        self._closed: list[_Run] = []
        #: Bytes counted under the lock (closed runs, and the open run's first ``_open_counted`` messages'
        #: worth); the open run's other messages came by the fast path and count ``_FAST_COST`` each.
        self._counted = 0
        self._open_counted = 0
        self._scheduled = False
        self._paused = False
        #: Why sends are refused, while they are.
        self._refusal: str | None = None
        #: Paused or refusing: the one flag a sender tests on its way in.
        self._held_back = False
        #: True from taking a batch until it has been written: a message sent meanwhile must queue behind it.
        self._draining = False
        #: When a sender last found the queue empty, or the reactor last finished writing what it took.
        self._quiet_since = 0.0

    def put(self, target: OutboxTarget, message: bytes, direct: DirectSender | None = None) -> None:
        """Queue ``message`` for ``target``; wait while the queue is full or the link paused.

        ``direct`` is the link ``target`` writes to, if it is one: when nothing is queued or being written and
        the queue has been quiet, it is offered the message first (see ``DirectSender``).

        Raises ``OSError`` if sends are refused (``refuse``), also to a sender that was waiting. Never call
        this from the reactor thread: it may wait for the reactor. The wait ends when the reactor makes room,
        the link drains, sends are refused, or the service ends (which resumes every waiter).
        """
        try:
            open_run = self._open
            run_target, run = open_run
            if (
                run
                and run_target is target
                and not self._held_back
                and len(run) < self._fast_limit
                and len(message) <= _FAST_SIZE
            ):
                run.append(message)
                if self._open is open_run:
                    if not self._scheduled:
                        self._scheduled = True
                        self.call_from_thread(self._drain)
                    return
                # The run closed around the append: sent with it if the drain took it, else taken back here.
                with self._lock:
                    if not _take_back(run, message):
                        return
            # Through the lock: a direct send, the start of a run, a large message, or a wait for room.
            while True:
                with self._lock:
                    if (
                        direct is not None
                        and not self._open[1]
                        and not self._closed
                        and not self._draining
                        and not self._held_back
                    ):
                        clock = self._clock  # a local, not a method-style call: as fast as a global
                        now = clock()
                        quiet = now - self._quiet_since >= DIRECT_SEND_AFTER_QUIET_SECONDS
                        self._quiet_since = now
                        if quiet and direct.send_from_thread(message):
                            return
                    cost = len(message) + _ENTRY_COST
                    queued = self._queued_bytes()
                    # A single message larger than the whole bound goes in once the queue is empty.
                    if (queued + cost <= self.max_queued or not queued) and not self._held_back:
                        if target is not self._open[0]:
                            self._close_open_run(target)
                        self._open[1].append(message)
                        self._open_counted += 1
                        self._counted += cost
                        self._set_fast_limit()
                        if self._scheduled:
                            return
                        self._scheduled = True
                        break
                    if self._refusal is not None:
                        raise OSError(self._refusal)
                    # Full or paused: close the gate, make sure a drain is coming, and wait outside the lock. The
                    # reactor opens the gate on every drain, resume and refusal; a Ctrl-C after this reaches the
                    # ``except`` below, which makes a drain if anything is queued, so no waiter stays shut in.
                    if self._gate.is_open():
                        self._gate = Latch()
                    gate = self._gate
                    wake = not self._is_empty() and not self._scheduled
                    if wake:
                        self._scheduled = True
                if wake:
                    self.call_from_thread(self._drain)
                gate.wait()
            self.call_from_thread(self._drain)
        except BaseException:
            # Interrupted (or refused) anywhere above: a message this call queued, or a wake-up it claimed, may
            # be left without its drain (even with nothing queued: a drain may have taken what this call added
            # before it claimed the wake-up). Make one: a drain too many finds nothing to do.
            if self._scheduled or not self._is_empty():
                self.call_from_thread(self._drain)
            raise

    def put_close(self, target: OutboxTarget, refuse: str | None = None) -> None:
        """Queue a close of ``target`` after what is queued for it; it never waits, so it reaches even a peer
        that stopped reading. With ``refuse``, every later (and waiting) ``put`` raises ``OSError(refuse)``."""
        wake = False
        try:
            with self._lock:
                if not self._scheduled:
                    self._scheduled = True
                    wake = True
                if refuse is not None:
                    self._refuse_locked(refuse)
                self._close_open_run(None)
                self._closed.append((target, [CLOSE]))
                self._counted += _ENTRY_COST
                self._set_fast_limit()
            if wake:
                self.call_from_thread(self._drain)
        except BaseException:
            if wake:
                self.call_from_thread(self._drain)
            raise

    # Under the lock.

    def _is_empty(self) -> bool:
        return not self._open[1] and not self._closed

    def _queued_bytes(self) -> int:
        return self._counted + self._open_fast_bytes()

    def _open_fast_bytes(self) -> int:
        """What the open run's messages that came by the fast path count for."""
        fast = len(self._open[1]) - self._open_counted
        return _FAST_COST * fast if fast > 0 else 0

    def _set_fast_limit(self) -> None:
        room = self.max_queued - self._counted
        self._fast_limit = (room // _FAST_COST if room > 0 else 0) + self._open_counted

    def _close_open_run(self, target: OutboxTarget | None) -> None:
        """End the open run and open one for ``target``. The run is listed before it is replaced, even empty, so
        a message appended to it until then is taken with it, and one appended after finds it replaced and is
        taken back. Stopped halfway, the run may be listed twice or stay open as well; the drain's slices take
        each message once."""
        run = self._open
        self._counted += self._open_fast_bytes()
        if run[0] is not None:
            self._closed.append(run)
        self._open = (target, [])
        self._open_counted = 0

    # The reactor thread's side.

    def pause(self) -> None:
        """Hold senders until ``resume``: the transport has as much buffered as it should.

        No lock: it is called while a link's write lock is held, which a sender may hold while it waits for
        this outbox's lock; senders read the two flags under their lock (or, on the fast path, on their way
        in) and wait at the gate.
        """
        self._paused = True
        self._held_back = True

    def resume(self) -> None:
        """Let held senders go on."""
        with self._lock:
            self._paused = False
            self._held_back = self._refusal is not None
            self._gate.open()

    def refuse(self, reason: str) -> None:
        """Refuse every send from now on with ``OSError(reason)``, waiting senders included, until ``accept``."""
        with self._lock:
            self._refuse_locked(reason)

    def refusing(self) -> bool:
        """True while sends are refused."""
        return self._refusal is not None

    def accept(self) -> None:
        """Take sends again after ``refuse``."""
        with self._lock:
            self._refusal = None
            self._held_back = self._paused

    def flush(self) -> None:
        """Deliver everything queued so far, now (reactor thread): before a link closes, say."""
        self._drain()

    def _refuse_locked(self, reason: str) -> None:
        self._refusal = reason
        self._held_back = True
        self._gate.open()

    def _drain(self) -> None:
        """Deliver everything queued so far, in order: one write per link, at the end of the batch."""
        with self._lock:
            self._scheduled = False  # before taking: a message appended after the take then makes a wake-up
            closed, self._closed = self._closed, []
            runs = [
                (run_target, taken) for run_target, run in closed if run_target is not None and (taken := _take(run))
            ]
            target, run = self._open
            messages = _take(run)
            self._counted = 0
            self._open_counted = 0
            self._set_fast_limit()
            if not self._held_back:
                self._gate.open()
            if not messages and not runs:
                return
            self._draining = True
        batch = self._write_batch
        batch.begin()
        try:
            if not runs and target is not None:
                _deliver(target.write_messages, messages)
            else:
                if messages and target is not None:
                    runs.append((target, messages))
                for run_target, run in runs:
                    if run[0] is CLOSE:
                        _deliver(run_target.close_now)
                    else:
                        _deliver(run_target.write_messages, run)
        finally:
            batch.end()
            # Everything taken is with the transports now. A sender that comes next is mid-burst, most likely:
            # the quiet starts here.
            clock = self._clock
            self._quiet_since = clock()
            self._draining = False


def _deliver(action: Callable[..., None], *args: Any) -> None:
    """Run one delivery; a failure is logged and does not keep the rest of the batch from its targets."""
    try:
        action(*args)
    except Exception:
        _log.failure("delivering queued messages failed")
