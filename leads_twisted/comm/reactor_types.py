"""Types for "a reactor": Twisted splits one into many small interfaces, and has no name for the whole.

A function that uses one part of its reactor takes that part's interface (``IReactorTime`` for a clock,
``IReactorFDSet`` for readers and writers). One that only calls a few methods of several parts takes a
``Protocol`` naming exactly those (``ClockFromThreads``). One that hands its reactor on to Twisted code needing
several parts (endpoints, ``SerialPort``, ``LoopingCall`` beside ``addReader``) takes ``IHubReactor``, as
Twisted itself types its global reactor (``_IReactorCommon``). These are annotations: nothing here runs per call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, cast

from twisted.internet.interfaces import (
    IDelayedCall,
    IReactorCore,
    IReactorFDSet,
    IReactorPluggableNameResolver,
    IReactorSocket,
    IReactorSSL,
    IReactorTCP,
    IReactorThreads,
    IReactorTime,
    IReactorUNIX,
)


class IHubReactor(
    IReactorCore,
    IReactorTime,
    IReactorThreads,
    IReactorFDSet,
    IReactorTCP,
    IReactorUNIX,
    IReactorSSL,
    IReactorSocket,
    IReactorPluggableNameResolver,
):
    """The parts of a reactor that hubs, their endpoints and the daemon use; Twisted's reactors on Linux (epoll,
    poll, select) provide them all. For type checking only: no class declares it, so test with the parts'
    own ``providedBy``, never with this one's."""


def global_reactor() -> IHubReactor:
    """Twisted's global reactor (installing the default one if none is yet), typed as the whole it is."""
    from twisted.internet import reactor

    return cast(IHubReactor, reactor)


class ClockFromThreads(Protocol):
    """A clock that other threads can hand calls to: a reactor, as a WebSocket link or the MQTT bridge use it.
    The names are ``IReactorTime``'s and ``IReactorFromThreads``', so any reactor (and ``IHubReactor``) fits."""

    def seconds(self) -> float: ...

    def callLater(
        self, delay: float, callable: Callable[..., object], *args: object, **kwargs: object
    ) -> IDelayedCall: ...

    def callFromThread(self, callable: Callable[..., object], *args: object, **kwargs: object) -> None: ...
