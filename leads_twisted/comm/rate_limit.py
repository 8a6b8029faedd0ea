"""A per-peer bound on messages per second, kept by pausing reading from the peer rather than by dropping.

TCP then slows the peer down: nothing it sent is lost, and a peer sending faster than ``max_rate`` only waits.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime


class ReadRateLimit:
    """Keeps one peer at ``rate`` messages per second on average, with bursts of up to a second's worth.

    ``spend(count)`` is told how many messages a chunk of the peer's bytes held; once the peer is over its
    allowance, ``pause`` is called, and ``resume`` once the allowance has grown back. Reactor thread only.
    """

    __slots__ = ("_allowance", "_burst", "_clock", "_pause", "_rate", "_resume", "_stamp", "_timer")

    def __init__(self, rate: float, clock: IReactorTime, pause: Callable[[], None], resume: Callable[[], None]) -> None:
        self._rate: float = rate
        self._burst: float = max(rate, 1.0)
        self._clock = clock
        self._pause = pause
        self._resume = resume
        self._allowance: float = self._burst
        self._stamp: float = clock.seconds()
        self._timer: IDelayedCall | None = None

    @property
    def paused(self) -> bool:
        """Whether reading from the peer is paused now."""
        return self._timer is not None

    def spend(self, count: int) -> None:
        """The peer sent ``count`` more messages."""
        now = self._clock.seconds()
        allowance = min(self._burst, self._allowance + (now - self._stamp) * self._rate) - count
        self._stamp = now
        self._allowance = allowance
        if allowance < 0 and self._timer is None:
            self._pause()
            self._timer = self._clock.callLater(-allowance / self._rate, self._wake)

    def _wake(self) -> None:
        self._timer = None
        self._resume()

    def stop(self) -> None:
        """The link has ended: no resume will come."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
