"""Counters of a service's traffic, kept by an observer: what ``service.stats()``, metrics and ``/connz`` show.

``Stats`` is an ``Observer`` (see ``observer.py``) of the links' ends, refusals and failures. It is not called
per message: while a service has observers its links count their own messages and bytes (plain integers, added
where the bytes are handled), and ``Stats`` reads them on a snapshot, keeping the sums of the links that have
ended. A snapshot (``ServiceStats``) may be taken from any thread: it copies plain numbers, so a snapshot taken
while messages flow is a moment's view, each number exact for its moment and never below an earlier one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from leads_twisted.comm.observer import LinkEnd, Observer
from leads_twisted.comm.views import LinkView, ServiceView


@dataclass
class LinkStats:
    """One link's traffic since it came up; bytes count the framing, as on the wire."""

    peer: str
    transport: str
    connected_since: float  #: wall-clock time (``time.time()``) the link came up
    messages_in: int = 0
    bytes_in: int = 0
    messages_out: int = 0
    bytes_out: int = 0
    dropped: int = 0
    buffered: int = 0  #: bytes waiting to be written to the peer, when the snapshot was taken

    def as_dict(self) -> dict[str, object]:
        """The link as JSON-ready values (what ``/connz`` lists)."""
        return {
            "peer": self.peer,
            "transport": self.transport,
            "connected_since": self.connected_since,
            "messages_in": self.messages_in,
            "bytes_in": self.bytes_in,
            "messages_out": self.messages_out,
            "bytes_out": self.bytes_out,
            "buffered": self.buffered,
            "dropped": self.dropped,
        }


@dataclass(frozen=True)
class ServiceStats:
    """A service's counters at one moment, counted since its ``Stats`` observer was added.

    ``messages_out`` counts deliveries: a message relayed to two peers counts twice. Controls (``disconnect``,
    heartbeats) are not counted, in or out.
    """

    connections: int
    connections_total: int
    refused_total: int
    messages_in: int
    bytes_in: int
    messages_out: int
    bytes_out: int
    dropped: int
    failures: int
    disconnects: dict[str, int] = field(default_factory=dict)
    links: tuple[LinkStats, ...] = ()


class _Link:
    """A link ``Stats`` watches: its connection, whose counters it reads, and what they do not hold."""

    __slots__ = ("connection", "stats")

    def __init__(self, connection: LinkView, stats: LinkStats) -> None:
        self.connection = connection
        self.stats = stats  #: where it came from and when, and its dropped messages

    def now(self) -> LinkStats:
        """The link's numbers now."""
        c = self.connection
        return replace(
            self.stats,
            messages_in=c.messages_in,
            bytes_in=c.bytes_in,
            messages_out=c.messages_out,
            bytes_out=c.bytes_out,
            buffered=c.buffered(),
        )


#: How many times a snapshot from another thread reads again when a link ended while it read.
_SNAPSHOT_TRIES = 100


class Stats(Observer):
    """Counts every event of the services it observes (normally one); add it with ``service.add_observer``.

    Only links that come up after it was added are counted.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._links: dict[LinkView, _Link] = {}
        #: Counts of the links that have ended: messages and bytes in, messages and bytes out.
        self._ended: tuple[int, int, int, int] = (0, 0, 0, 0)
        #: Odd while a link is moved from ``_links`` to ``_ended``: a snapshot then reads again.
        self._moving = 0
        self.connections_total = 0
        self.refused_total = 0
        self.dropped_total = 0
        self.failures = 0
        self.disconnects: dict[str, int] = dict.fromkeys(LinkEnd, 0)

    # The observer's events, in the reactor thread.

    def link_up(self, service: ServiceView, connection: LinkView) -> None:
        self.connections_total += 1
        stats = LinkStats(str(connection), connection.transport_kind, self._clock())
        self._links[connection] = _Link(connection, stats)

    def link_down(self, service: ServiceView, connection: LinkView, reason: LinkEnd) -> None:
        if connection in self._links:
            c = connection
            received, received_bytes, delivered, delivered_bytes = self._ended
            self._moving += 1
            self._ended = (
                received + c.messages_in,
                received_bytes + c.bytes_in,
                delivered + c.messages_out,
                delivered_bytes + c.bytes_out,
            )
            del self._links[connection]
            self._moving += 1
        self.disconnects[reason] = self.disconnects.get(reason, 0) + 1

    def dropped(self, service: ServiceView, connection: LinkView, count: int) -> None:
        self.dropped_total += count
        link = self._links.get(connection)
        if link is not None:
            link.stats.dropped += count

    def refused(self, service: ServiceView, address: object, reason: str) -> None:
        self.refused_total += 1

    def failure(self, service: ServiceView, error: Exception) -> None:
        self.failures += 1

    # Reading, from any thread.

    def snapshot(self) -> ServiceStats:
        """The counters now, with a copy of every link's."""
        for _ in range(_SNAPSHOT_TRIES):
            moving = self._moving
            links = tuple(self._links.values())  # one C-level copy: safe while the reactor adds or removes links
            ended = self._ended
            if self._moving == moving and not moving % 2:
                break
            time.sleep(0)  # a link was moving: let the reactor thread finish, then read again
        now = tuple(link.now() for link in links)
        received, received_bytes, delivered, delivered_bytes = ended
        for link_stats in now:
            received += link_stats.messages_in
            received_bytes += link_stats.bytes_in
            delivered += link_stats.messages_out
            delivered_bytes += link_stats.bytes_out
        return ServiceStats(
            connections=len(links),
            connections_total=self.connections_total,
            refused_total=self.refused_total,
            messages_in=received,
            bytes_in=received_bytes,
            messages_out=delivered,
            bytes_out=delivered_bytes,
            dropped=self.dropped_total,
            failures=self.failures,
            disconnects={str(reason): count for reason, count in tuple(self.disconnects.items())},
            links=now,
        )
