"""Log lines a peer cannot forge or flood: text it controls is escaped, and repeated warnings are summarised.

A peer chooses its unix socket name and, over some networks, what its address looks like; printed as is, a
newline in it would start a forged log line. A flood of connections or refusals would otherwise write one line
each; here the first of a kind is logged at once and the rest in one summary line per interval.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

#: Seconds between summary lines of one kind of repeated warning.
SUMMARY_INTERVAL: float = 10.0


def escape(text: object) -> str:
    """``str(text)`` with every character that is not printable (and the backslash) written as an escape."""
    value = str(text)
    if value.isprintable() and "\\" not in value:
        return value
    return value.encode("unicode_escape").decode("ascii")


class RateLimitedWarnings:
    """Warnings of one kind (``key``) logged at most once per ``interval``: the first at once, then one line
    saying how many more there were, if any. In the reactor thread only."""

    def __init__(self, log: Logger, clock: IReactorTime, interval: float = SUMMARY_INTERVAL) -> None:
        self._log = log
        self._clock = clock
        self._interval = interval
        self._suppressed: dict[str, int] = {}

    def warn(self, key: str, format: str, **fields: object) -> None:
        """Log ``format`` with ``fields`` now, or count it for the summary of ``key`` if one was logged lately."""
        count = self._suppressed.get(key)
        if count is not None:
            self._suppressed[key] = count + 1
            return
        self._log.warn(format, **fields)
        self._suppressed[key] = 0
        self._clock.callLater(self._interval, self._summarise, key)

    def _summarise(self, key: str) -> None:
        count = self._suppressed.pop(key, 0)
        if count:
            self._log.warn(
                "{count} more like the last {kind} warning in {interval:.0f} s",
                count=count,
                kind=key,
                interval=self._interval,
            )
            # Still flooding: keep summarising instead of logging the next one at once.
            self._suppressed[key] = 0
            self._clock.callLater(self._interval, self._summarise, key)


def about_peer(error: Exception, peer: str, *, logged: bool) -> Exception:
    """Mark ``error`` as the failure of one peer's link (``peer`` names it), and say whether the library has
    logged it already, so whoever logs what ``on_fail`` reports does not log it twice. Returns ``error``."""
    error.peer = peer  # type: ignore[attr-defined]
    error.logged = logged  # type: ignore[attr-defined]
    return error


def peer_of(error: Exception) -> str | None:
    """The peer whose link ``error`` is about (see ``about_peer``), or None."""
    peer = getattr(error, "peer", None)
    return peer if isinstance(peer, str) else None


def already_logged(error: Exception) -> bool:
    """Whether the library logged ``error`` itself, at warning or above, before reporting it."""
    return getattr(error, "logged", False) is True
