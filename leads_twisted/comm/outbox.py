"""Hands messages from any thread to the reactor thread in batches, keeping each thread's order.

A sending thread appends to a list under a lock and, only if no drain is scheduled yet, schedules one reactor
wake-up; the drain takes the whole list at once. So a burst of sends costs one wake-up, not one per message.
The queue is bounded in bytes: a thread that sends faster than the reactor can write waits for room. A client
also pauses its queue while its link's transport is full, so its senders wait for the peer; a server never
pauses (one slow client must not stop the others): its ``slow_policy`` acts on that client instead.

A message to one link, sent when the queue has been empty and quiet for a moment (a request, a reply to a
reply, a reading every few milliseconds), skips the queue: the sending thread writes it to the socket itself
if the link lets it (``DirectSender``), which saves waking the reactor thread. A burst is queued and batched.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from time import monotonic
from typing import Any, Protocol

from twisted.logger import Logger

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


class OutboxTarget(Protocol):
    """Something the outbox delivers to: a connection, or a server broadcasting to all of its connections."""

    def _write_messages(self, messages: list[bytes]) -> None:
        """Write checked messages, in order, from the reactor thread."""

    def _close_now(self) -> None:
        """Close, from the reactor thread, after everything written before."""


class DirectSender(Protocol):
    """A link that a sending thread may write to itself when nothing is queued before its message."""

    def _send_from_thread(self, message: bytes) -> bool:
        """Put ``message`` on the wire from the calling thread, or return False to have it queued."""


class Outbox:
    """A bounded, thread-safe queue of ``(target, message)`` drained in the reactor thread."""

    def __init__(
        self,
        call_from_thread: Callable[[Callable[[], None]], Any],
        max_queued: int = DEFAULT_MAX_QUEUED,
        write_batch: WriteBatch | None = None,
    ) -> None:
        self._call_from_thread = call_from_thread
        self._write_batch: WriteBatch = write_batch if write_batch is not None else WriteBatch()
        self.max_queued: int = max_queued
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._targets: list[OutboxTarget] = []
        self._messages: list[Any] = []
        self._queued = 0
        self._has_controls = False
        self._scheduled = False
        self._paused = False
        self._waiting = 0
        #: True from taking a batch until it has been written: a message sent meanwhile must queue behind it.
        self._draining = False
        #: When a sender last found the queue empty, or the reactor last finished writing what it took.
        self._quiet_since = 0.0

    def put(self, target: OutboxTarget, message: bytes, direct: DirectSender | None = None) -> None:
        """Queue ``message`` for ``target``; wait while the queue is full or the link paused.

        ``direct`` is the link ``target`` writes to, if it is one: when nothing is queued or being written and
        the queue has been quiet, it is offered the message first (see ``DirectSender``).

        Never call this from the reactor thread: it may wait for the reactor. The wait ends when the reactor
        makes room, the link drains, or the service ends (which resumes every waiter).
        """
        cost = len(message) + _ENTRY_COST
        # acquire/release rather than ``with``: this runs once per message, and the context manager costs more.
        lock = self._lock
        lock.acquire()
        try:
            if direct is not None and not self._targets and not self._draining and not self._paused:
                now = monotonic()
                quiet = now - self._quiet_since >= DIRECT_SEND_AFTER_QUIET_SECONDS
                self._quiet_since = now
                if quiet and direct._send_from_thread(message):
                    return
            if self._queued + cost > self.max_queued or self._paused:
                self._wait_for_room(cost)
            self._targets.append(target)
            self._messages.append(message)
            self._queued += cost
            if self._scheduled:
                return
            self._scheduled = True
        finally:
            lock.release()
        self._call_from_thread(self._drain)

    def put_close(self, target: OutboxTarget) -> None:
        """Queue a close of ``target`` after what is queued for it; it never waits, so it reaches even a peer
        that stopped reading."""
        with self._lock:
            self._targets.append(target)
            self._messages.append(CLOSE)
            self._queued += _ENTRY_COST
            self._has_controls = True
            if self._scheduled:
                return
            self._scheduled = True
        self._call_from_thread(self._drain)

    def _wait_for_room(self, cost: int) -> None:
        self._waiting += 1
        try:
            # A single message larger than the whole bound goes in once the queue is empty.
            self._room.wait_for(
                lambda: not self._paused and (self._queued == 0 or self._queued + cost <= self.max_queued)
            )
        finally:
            self._waiting -= 1

    def pause(self) -> None:
        """Hold senders until ``resume``: the transport has as much buffered as it should."""
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        """Let held senders go on."""
        with self._lock:
            self._paused = False
            if self._waiting:
                self._room.notify_all()

    def _drain(self) -> None:
        """Deliver everything queued so far, in order: one write per link, at the end of the batch."""
        with self._lock:
            targets, self._targets = self._targets, []
            messages, self._messages = self._messages, []
            has_controls, self._has_controls = self._has_controls, False
            self._queued = 0
            self._scheduled = False
            self._draining = True
            if self._waiting:
                self._room.notify_all()
        batch = self._write_batch
        batch.begin()
        try:
            self._deliver_all(targets, messages, has_controls)
        finally:
            batch.end()
            # Everything taken is with the transports now. A sender that comes next is mid-burst, most likely:
            # the quiet starts here.
            self._quiet_since = monotonic()
            self._draining = False

    def _deliver_all(self, targets: list[OutboxTarget], messages: list[Any], has_controls: bool) -> None:
        first = targets[0]
        if not has_controls and targets.count(first) == len(targets):
            _deliver(first._write_messages, messages)
            return
        start = 0
        count = len(targets)
        while start < count:
            target = targets[start]
            if messages[start] is CLOSE:
                _deliver(target._close_now)
                start += 1
                continue
            end = start + 1
            while end < count and targets[end] is target and messages[end] is not CLOSE:
                end += 1
            _deliver(target._write_messages, messages[start:end])
            start = end


def _deliver(action: Callable[..., None], *args: Any) -> None:
    """Run one delivery; a failure is logged and does not keep the rest of the batch from its targets."""
    try:
        action(*args)
    except Exception:
        _log.failure("delivering queued messages failed")
