"""Hands messages from any thread to the reactor thread in batches, keeping each thread's order.

A sending thread appends to a list under a lock and, only if no drain is scheduled yet, schedules one reactor
wake-up; the drain takes the whole list at once. So a burst of sends costs one wake-up, not one per message.
The queue is bounded in bytes: a thread that sends faster than the reactor can write waits for room. A client
also pauses its queue while its link's transport is full, so its senders wait for the peer; a server never
pauses (one slow client must not stop the others): its ``slow_policy`` acts on that client instead. A client
whose link has ended refuses (``refuse``): every sender, waiting or new, gets ``OSError``.

A message to one link, sent when the queue has been empty and quiet for a moment (a request, a reply to a
reply, a reading every few milliseconds), skips the queue: the sending thread writes it to the socket itself
if the link lets it (``DirectSender``), which saves waking the reactor thread. A burst is queued and batched.

Ctrl-C: a ``KeyboardInterrupt`` may be raised in a sending thread (the main one) at any call or function entry.
So every lock is taken with ``with``; each message goes into the queue in one step that cannot be interrupted
halfway (``list +=``), and a sender that may have been interrupted between claiming the wake-up and making it
makes it again on its way out (a second drain finds the queue empty and does nothing). A waiting sender waits
on a gate (a lock the reactor releases) rather than on a ``Condition``, whose Python-level wait could be left
half-done by an interrupt.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from twisted.logger import Logger

from leads_twisted.comm.handoff import DirectSender, HandoffTarget
from leads_twisted.comm.write_batch import WriteBatch

_log = Logger(namespace="leads_twisted.outbox")

#: Queued in place of a message: close the target after everything queued before it.
CLOSE: Any = object()

#: Bytes a service may hold queued across threads before senders wait.
DEFAULT_MAX_QUEUED: int = 16 * 1024 * 1024

#: The bookkeeping cost counted for each queued message besides its payload.
_ENTRY_COST: int = 64

#: A message skips the queue only after the queue has been empty and untouched this long: within a burst,
#: messages come microseconds apart and are worth batching, one write and one wake-up for many.
DIRECT_SEND_AFTER_QUIET_SECONDS: float = 50e-6


#: What the outbox delivers to: a link, a hub, or a broadcast (declared with the hub's ``Handoff``).
OutboxTarget = HandoffTarget


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
        #: Closed (locked) by a sender that must wait; opened by the reactor when there is room, the link
        #: resumes, or sends are refused. Waiting is ``with gate: pass``.
        self._gate = threading.Lock()
        #: The messages queued, in order, and where each target's run of them starts: ``(target, index)``,
        #: added only when the target changes (``_last_target``). An interrupt between adding a run and its
        #: message leaves an empty run, which the drain skips.
        self._messages: list[Any] = []
        self._runs: list[tuple[OutboxTarget, int]] = []
        self._last_target: OutboxTarget | None = None
        self._queued = 0
        self._has_controls = False
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
            while True:
                with self._lock:
                    if direct is not None and not self._messages and not self._draining and not self._held_back:
                        clock = self._clock  # a local, not a method-style call: as fast as a global
                        now = clock()
                        quiet = now - self._quiet_since >= DIRECT_SEND_AFTER_QUIET_SECONDS
                        self._quiet_since = now
                        if quiet and direct.send_from_thread(message):
                            return
                    queued = self._queued + len(message) + _ENTRY_COST
                    # A single message larger than the whole bound goes in once the queue is empty.
                    if (queued <= self.max_queued or not self._queued) and not self._held_back:
                        if target is not self._last_target:
                            # Forgotten first: after an interrupt anywhere in these three lines, the next
                            # message starts a run of its own (this one may stay empty), never joins a wrong one.
                            self._last_target = None
                            self._runs.append((target, len(self._messages)))
                            self._last_target = target
                        self._messages.append(message)
                        self._queued = queued
                        if self._scheduled:
                            return
                        self._scheduled = True
                        break
                    if self._refusal is not None:
                        raise OSError(self._refusal)
                    # Full or paused: close the gate, make sure a drain is coming, and wait outside the lock.
                    # A gate, not a mutex: no code runs holding it, and the reactor opens it (``_open_gate``) on
                    # every drain, resume and refusal. A Ctrl-C after this line reaches the ``except`` below,
                    # which makes a drain if anything is queued, so the gate cannot stay shut on a waiter.
                    self._gate.acquire(False)
                    wake = bool(self._messages) and not self._scheduled
                    if wake:
                        self._scheduled = True
                if wake:
                    self.call_from_thread(self._drain)
                with self._gate:
                    pass
            self.call_from_thread(self._drain)
        except BaseException:
            # Interrupted (or refused) anywhere above: a message this call queued, or a wake-up it claimed, may
            # be left without its drain. Make one if anything waits: a drain too many finds nothing to do.
            if self._messages:
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
                if target is not self._last_target:
                    self._last_target = None
                    self._runs.append((target, len(self._messages)))
                    self._last_target = target
                self._messages.append(CLOSE)
                self._queued += _ENTRY_COST
                self._has_controls = True
                if refuse is not None:
                    self._refuse_locked(refuse)
            if wake:
                self.call_from_thread(self._drain)
        except BaseException:
            if wake:
                self.call_from_thread(self._drain)
            raise

    # The reactor thread's side.

    def pause(self) -> None:
        """Hold senders until ``resume``: the transport has as much buffered as it should.

        No lock: it is called while a link's write lock is held, which a sender may hold while it waits for
        this outbox's lock; senders read the two flags under their lock and wait at the gate.
        """
        self._paused = True
        self._held_back = True

    def resume(self) -> None:
        """Let held senders go on."""
        with self._lock:
            self._paused = False
            self._held_back = self._refusal is not None
            self._open_gate()

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
        self._open_gate()

    def _open_gate(self) -> None:
        if self._gate.locked():
            self._gate.release()

    def _drain(self) -> None:
        """Deliver everything queued so far, in order: one write per link, at the end of the batch."""
        with self._lock:
            messages, self._messages = self._messages, []
            runs, self._runs = self._runs, []
            self._last_target = None
            has_controls, self._has_controls = self._has_controls, False
            self._queued = 0
            self._scheduled = False
            if not self._held_back:
                self._open_gate()
            if not messages:
                return
            self._draining = True
        batch = self._write_batch
        batch.begin()
        try:
            if len(runs) == 1 and not has_controls:
                _deliver(runs[0][0].write_messages, messages)
            else:
                self._deliver_runs(runs, messages)
        finally:
            batch.end()
            # Everything taken is with the transports now. A sender that comes next is mid-burst, most likely:
            # the quiet starts here.
            clock = self._clock
            self._quiet_since = clock()
            self._draining = False

    @staticmethod
    def _deliver_runs(runs: list[tuple[OutboxTarget, int]], messages: list[Any]) -> None:
        ends = [start for _, start in runs[1:]] + [len(messages)]
        for (target, start), end in zip(runs, ends, strict=True):
            while start < end:
                if messages[start] is CLOSE:
                    _deliver(target.close_now)
                    start += 1
                    continue
                stop = start + 1
                while stop < end and messages[stop] is not CLOSE:
                    stop += 1
                _deliver(target.write_messages, messages[start:stop])
                start = stop


def _deliver(action: Callable[..., None], *args: Any) -> None:
    """Run one delivery; a failure is logged and does not keep the rest of the batch from its targets."""
    try:
        action(*args)
    except Exception:
        _log.failure("delivering queued messages failed")
