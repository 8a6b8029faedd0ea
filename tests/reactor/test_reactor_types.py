"""``IHubReactor`` tells the truth about the reactor it is cast from, and is a ``ClockFromThreads``.

``global_reactor()`` casts Twisted's reactor to ``IHubReactor`` without a check: here the real reactor is
checked to provide every part that interface names. mypy checks this module too (pyproject), so ``_fits``
proves statically that an ``IHubReactor`` fits where a ``ClockFromThreads`` or a single part is asked for.
"""

from __future__ import annotations

from typing import cast

from twisted.internet.interfaces import IReactorFDSet, IReactorTime
from twisted.internet.testing import MemoryReactorClock
from zope.interface.interface import InterfaceClass

from leads_twisted.comm.reactor_types import ClockFromThreads, IHubReactor, global_reactor


def _parts_missing(reactor: object) -> list[str]:
    parts = cast("tuple[InterfaceClass, ...]", IHubReactor.__bases__)
    return [part.__name__ for part in parts if not part.providedBy(reactor)]


def _fits(reactor: IHubReactor) -> tuple[ClockFromThreads, IReactorTime, IReactorFDSet]:
    return reactor, reactor, reactor  # static: every IHubReactor is a ClockFromThreads, and each of its parts


def test_the_global_reactor_provides_every_part_of_the_hub_reactor() -> None:
    assert _parts_missing(global_reactor()) == []


def test_the_check_can_fail_a_reactor_without_threads() -> None:
    # The control: Twisted's in-memory reactor has no callFromThread, and the check says so.
    assert _parts_missing(MemoryReactorClock()) == ["IReactorThreads"]


def test_a_hub_reactor_serves_as_a_clock() -> None:
    clock, timer, watcher = _fits(global_reactor())
    call = clock.callLater(60, lambda: None)
    try:
        assert call.active() and call.getTime() >= timer.seconds() + 59
        assert isinstance(watcher.getReaders(), list)
    finally:
        call.cancel()
