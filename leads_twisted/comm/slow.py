"""Warns when a callback holds the reactor thread too long: every link stalls meanwhile, without a word.

A service with ``slow_callback`` set times each chunk of bytes it hands to ``on_receive`` (not each message:
the cost is two clock reads per chunk) and each ``on_connect``/``on_disconnect``. Past the threshold it logs a
warning naming the callback and the time, at most once per callback every ``interval`` seconds; the warnings
left out meanwhile are counted in the next one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from twisted.logger import Logger

_log = Logger(namespace="leads_twisted.slow_callback")

#: Seconds between two warnings about the same callback.
WARNING_INTERVAL_SECONDS: float = 10.0


def check_threshold(seconds: float | None) -> float | None:
    """Return ``seconds`` if it is a usable threshold (None: off), or raise ``ValueError``."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
        raise ValueError(f"slow_callback must be a positive number of seconds or None, not {seconds!r}")
    return float(seconds)


def qualified_name(callback: object, method: str) -> str:
    """``module.Class.method`` of a callback; for a chain of callbacks (one with a ``callbacks`` tuple, like the
    daemon's), each member's, joined with ``+``: the time is the whole chain's."""
    members = getattr(callback, "callbacks", None)
    if isinstance(members, tuple) and members:
        return " + ".join(qualified_name(member, method) for member in members)
    cls = type(callback)
    return f"{cls.__module__}.{cls.__qualname__}.{method}"


class SlowCallbacks:
    """Times callbacks against a threshold and logs the slow ones, rate-limited; reactor thread only."""

    def __init__(
        self,
        threshold: float,
        clock: Callable[[], float] = time.perf_counter,
        interval: float = WARNING_INTERVAL_SECONDS,
    ) -> None:
        self.threshold = threshold
        self.clock = clock
        self._interval = interval
        #: Per callback name: when it was last logged, and how many slow calls went unlogged since.
        self._last: dict[str, tuple[float, int]] = {}
        self.warnings = 0

    def finished(self, started: float, callback: object, method: str, what: str) -> None:
        """A call that began at ``started`` (this object's clock) has returned: warn if it was too long."""
        now = self.clock()
        held = now - started
        if held <= self.threshold:
            return
        name = qualified_name(callback, method)
        last, skipped = self._last.get(name, (None, 0))
        if last is not None and now - last < self._interval:
            self._last[name] = (last, skipped + 1)
            return
        self._last[name] = (now, 0)
        self.warnings += 1
        more = f"; {skipped} more such since the last warning" if skipped else ""
        _log.warn(
            "callback {name} held the reactor for {ms:.0f} ms ({what}), over the slow-callback limit of "
            "{limit:.0f} ms: every link waited meanwhile; hand slow work to a thread{more}",
            name=name,
            ms=held * 1000,
            what=what,
            limit=self.threshold * 1000,
            more=more,
        )
