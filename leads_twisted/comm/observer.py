"""The observer seam: what happens on a service's links, told to any number of observers.

Metrics, recorders and bridges watch a service through this seam and never touch its inside. A service with no
observer pays one truth test per event site; each observer is called in the reactor thread, in the order they
were added, and one that raises is logged and skipped, so it can never break a link.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from twisted.logger import Logger

from leads_twisted.comm.views import LinkView, ServiceView

_log = Logger(namespace="leads_twisted.observer")


class LinkEnd(enum.StrEnum):
    """Why a link ended, as ``Observer.link_down`` is told."""

    CLOSED = "closed"  #: either side closed it in order
    LOST = "lost"  #: the transport broke (reset, unreachable) without an orderly close
    SLOW = "slow"  #: the peer stopped reading past ``max_buffered`` (``slow_policy="disconnect"``)
    IDLE = "idle"  #: nothing came from the peer for ``idle_timeout`` seconds
    OVERSIZE = "oversize"  #: the peer broke the framing (a message over ``max_message``)
    CUT = "cut"  #: a closing link did not finish in time and was cut


class Observer:
    """Override the events you need; each is a no-op by default. Add one with ``service.add_observer``.

    Every method runs in the reactor thread and must not block. ``service`` is the server or client that
    owns the link, so one observer can watch several services.
    """

    def link_up(self, service: ServiceView, connection: LinkView) -> None:
        """A link is up; ``on_connect`` has run."""

    def link_down(self, service: ServiceView, connection: LinkView, reason: LinkEnd) -> None:
        """A link has ended; ``on_disconnect`` has run."""

    def message_in(self, service: ServiceView, connection: LinkView, msg: bytes) -> None:
        """A message arrived from ``connection``'s peer, just before ``on_receive`` gets it."""

    def messages_in(self, service: ServiceView, connection: LinkView, messages: Sequence[bytes]) -> None:
        """The messages of one chunk from ``connection``'s peer, in order, before ``on_receive`` gets the first.

        For observers that count: one call per chunk instead of one per message. An observer that overrides
        it is not told ``message_in`` (unless it overrides that too).
        """

    def message_out(self, service: ServiceView, connection: LinkView, count: int, size: int) -> None:
        """``count`` messages of ``size`` bytes in all (framing included) were accepted for ``connection``.

        A broadcast to ten links is ten calls: one per delivery; while the service handles a chunk from a
        peer, the deliveries to each link are told in one call when the chunk is done. Controls (``disconnect``,
        heartbeats) are not counted. While a service has observers, its links' sends from other threads go
        through the reactor thread, so that every delivery is told here.
        """

    def dropped(self, service: ServiceView, connection: LinkView, count: int) -> None:
        """``count`` messages for a peer that stopped reading were dropped (``slow_policy="drop"``)."""

    def refused(self, service: ServiceView, address: object, reason: str) -> None:
        """A server turned away a new peer at ``address``: why, in a word (``closing``, ``max_connections``)."""

    def failure(self, service: ServiceView, error: Exception) -> None:
        """``on_fail`` was told ``error``."""


class Observers:
    """The observers of one service; a tuple swapped whole, so adding one from any thread is safe.

    Event sites test ``active`` (a plain attribute, the cheapest test there is) before they call. While it is
    true, the links count their own traffic (``ConnectionBase.messages_in`` and the like: a few integer
    additions where the bytes are handled), and only the observers that override an event about messages are
    called for it: a counter such as ``Stats`` reads the links' counts instead of being called per chunk.
    """

    __slots__ = ("_all", "active", "each_message", "per_chunk", "sending")

    def __init__(self) -> None:
        self._all: tuple[Observer, ...] = ()
        #: True while at least one observer is added.
        self.active: bool = False
        #: The observers told ``message_in`` for each message, and those told ``messages_in`` per chunk.
        self.each_message: tuple[Observer, ...] = ()
        self.per_chunk: tuple[Observer, ...] = ()
        #: The observers told ``message_out``: those that override it.
        self.sending: tuple[Observer, ...] = ()

    def add(self, observer: Observer) -> None:
        """Tell ``observer`` every event from now on; adding one twice does nothing."""
        if not isinstance(observer, Observer):
            raise TypeError(f"an observer must be a leads_twisted.comm.Observer, not {type(observer).__name__}")
        if observer not in self._all:
            self._sort((*self._all, observer))

    def remove(self, observer: Observer) -> None:
        """Stop telling ``observer``; removing one that was never added does nothing."""
        self._sort(tuple(o for o in self._all if o is not observer))

    def _sort(self, observers: tuple[Observer, ...]) -> None:
        """Keep ``observers``, and which of them hear of messages: one by one or per chunk in, and out."""
        chunked = tuple(o for o in observers if _overrides(o, "messages_in"))
        each = tuple(o for o in observers if _overrides(o, "message_in"))
        sending = tuple(o for o in observers if _overrides(o, "message_out"))
        self.per_chunk, self.each_message, self.sending, self._all = chunked, each, sending, observers
        self.active = bool(observers)

    def link_up(self, service: ServiceView, connection: LinkView) -> None:
        for observer in self._all:
            try:
                observer.link_up(service, connection)
            except Exception:
                _raised(observer, "link_up")

    def link_down(self, service: ServiceView, connection: LinkView, reason: LinkEnd) -> None:
        for observer in self._all:
            try:
                observer.link_down(service, connection, reason)
            except Exception:
                _raised(observer, "link_down")

    def message_in(self, service: ServiceView, connection: LinkView, msg: bytes) -> None:
        for observer in self.each_message:
            try:
                observer.message_in(service, connection, msg)
            except Exception:
                _raised(observer, "message_in")

    def messages_in(self, service: ServiceView, connection: LinkView, messages: Sequence[bytes]) -> None:
        for observer in self.per_chunk:
            try:
                observer.messages_in(service, connection, messages)
            except Exception:
                _raised(observer, "messages_in")

    def message_out(self, service: ServiceView, connection: LinkView, count: int, size: int) -> None:
        """Count the deliveries on ``connection`` and tell the observers that want them."""
        connection.messages_out += count
        connection.bytes_out += size
        for observer in self.sending:
            try:
                observer.message_out(service, connection, count, size)
            except Exception:
                _raised(observer, "message_out")

    def dropped(self, service: ServiceView, connection: LinkView, count: int) -> None:
        for observer in self._all:
            try:
                observer.dropped(service, connection, count)
            except Exception:
                _raised(observer, "dropped")

    def refused(self, service: ServiceView, address: object, reason: str) -> None:
        for observer in self._all:
            try:
                observer.refused(service, address, reason)
            except Exception:
                _raised(observer, "refused")

    def failure(self, service: ServiceView, error: Exception) -> None:
        for observer in self._all:
            try:
                observer.failure(service, error)
            except Exception:
                _raised(observer, "failure")


def _overrides(observer: Observer, event: str) -> bool:
    return getattr(type(observer), event) is not getattr(Observer, event)


def _raised(observer: Observer, event: str) -> None:
    _log.failure("observer {observer!r} raised in {event}; skipped for this event", observer=observer, event=event)
