"""The hub's one way across threads: how a send or a close made in another thread reaches the reactor thread.

A hub never waits and starts no thread; what it needs from whoever carries work over to its reactor thread is
declared here as ``Handoff``. ``ReactorHandoff`` is the plain one a hub has by itself (each send becomes a
``callFromThread``, unbounded, never waiting), enough for Twisted programs and the daemon, whose work is all
in the reactor thread. The thread facade gives its hubs the ``Outbox`` instead: bounded, batched, and able to
hold senders while a link is full.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Protocol

from twisted.logger import Logger

_log = Logger(namespace="leads_twisted.handoff")


class HandoffTarget(Protocol):
    """What a handoff delivers to, in the reactor thread: a link, a hub, or a broadcast."""

    def write_messages(self, messages: list[bytes]) -> None:
        """Write checked messages, in order."""

    def close_now(self) -> None:
        """Close after everything written before."""


class DirectSender(Protocol):
    """A link that a sending thread may write to itself when nothing is queued before its message."""

    def send_from_thread(self, message: bytes) -> bool:
        """Put ``message`` on the wire from the calling thread, or return False to have it queued."""


class Handoff(Protocol):
    """Carries sends and closes from other threads to the reactor thread, each thread's in order."""

    #: Bytes it may hold on their way (0: no bound): a client's link counts them in its buffer bound.
    max_queued: int

    def put(self, target: HandoffTarget, message: bytes, direct: DirectSender | None = None) -> None:
        """From another thread: deliver ``message`` to ``target``; ``OSError`` while sends are refused."""

    def put_close(self, target: HandoffTarget, refuse: str | None = None) -> None:
        """From another thread: close ``target`` after what was put for it; with ``refuse``, refuse later sends."""

    def refuse(self, reason: str) -> None:
        """Refuse every send from now on with ``OSError(reason)``, until ``accept``."""

    def refusing(self) -> bool:
        """True while sends are refused."""

    def accept(self) -> None:
        """Take sends again."""

    def pause(self) -> None:
        """The link is full: senders may be held until ``resume`` (reactor thread)."""

    def resume(self) -> None:
        """Let held senders go on (reactor thread)."""

    def flush(self) -> None:
        """Deliver everything handed over so far, now (reactor thread)."""


class ReactorHandoff:
    """A hub's own handoff: what other threads hand over waits in a queue, and each handing-over asks the reactor
    thread, with ``callFromThread``, to deliver everything waiting.

    It never holds a sender, so nothing bounds what other threads hand over: a program that sends from its own
    threads at length should use the facade's ``Server``/``Client``, whose ``Outbox`` does. A refusal and a
    send are ordered by one lock, so a send either raises or is delivered before what follows the refusal.
    """

    max_queued: int = 0

    def __init__(self, call_from_thread: Callable[[Callable[[], None]], object]) -> None:
        self._call_from_thread = call_from_thread
        self._lock = threading.Lock()
        #: ``(target, message)``, or ``(target, None)`` for a close.
        self._waiting: deque[tuple[HandoffTarget, bytes | None]] = deque()
        self._refusal: str | None = None

    def put(self, target: HandoffTarget, message: bytes, direct: DirectSender | None = None) -> None:
        self._hand_over(target, message, None)

    def put_close(self, target: HandoffTarget, refuse: str | None = None) -> None:
        self._hand_over(target, None, refuse)

    def _hand_over(self, target: HandoffTarget, message: bytes | None, refuse: str | None) -> None:
        """Queue a message (or, with None, a close) and wake the reactor. A ``KeyboardInterrupt`` landing
        anywhere here leaves no queued item without a wake-up: the ``except`` makes one (a flush too many finds
        nothing to do)."""
        try:
            with self._lock:
                if message is not None and self._refusal is not None:
                    raise OSError(self._refusal)
                self._waiting.append((target, message))
                if refuse is not None:
                    self._refusal = refuse
            self._call_from_thread(self.flush)
        except BaseException:
            if self._waiting:
                self._call_from_thread(self.flush)
            raise

    def refuse(self, reason: str) -> None:
        with self._lock:
            self._refusal = reason

    def refusing(self) -> bool:
        return self._refusal is not None

    def accept(self) -> None:
        with self._lock:
            self._refusal = None

    def pause(self) -> None:
        """Nothing to hold: a full link's ``slow_policy`` acts instead."""

    def resume(self) -> None:
        """Nothing is held."""

    def flush(self) -> None:
        """Deliver everything waiting, in order; a delivery that fails is logged and the rest still go."""
        waiting = self._waiting
        while waiting:
            target, message = waiting.popleft()
            try:
                if message is None:
                    target.close_now()
                else:
                    target.write_messages([message])
            except Exception:
                _log.failure("delivering a message handed over from another thread failed")
