"""Counters of a service's traffic, kept by an observer: what ``service.stats()``, metrics and ``/connz`` show.

``Stats`` is an ``Observer`` (see ``observer.py``): it counts in the reactor thread, a few additions per chunk
received and per batch of deliveries to a link,
and never touches the service's inside. A snapshot (``ServiceStats``) may be taken from any thread: it copies
plain numbers, so a snapshot taken while messages flow is a moment's view, each number exact for its moment.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from leads_twisted.comm.observer import LinkEnd, Observer

if TYPE_CHECKING:
    from leads_twisted.comm.connection import ConnectionBase
    from leads_twisted.comm.service import Service


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
    """The live counters of one link, with what is needed to read its buffer."""

    __slots__ = ("connection", "overhead", "stats")

    def __init__(self, connection: ConnectionBase, stats: LinkStats, overhead: int) -> None:
        self.connection = connection
        self.stats = stats
        self.overhead = overhead  #: framing bytes around one message on this link


class Stats(Observer):
    """Counts every event of the services it observes (normally one); add it with ``service.add_observer``."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._links: dict[ConnectionBase, _Link] = {}
        self.connections_total = 0
        self.refused_total = 0
        self.received = 0
        self.received_bytes = 0
        self.delivered = 0
        self.delivered_bytes = 0
        self.dropped_total = 0
        self.failures = 0
        self.disconnects: dict[str, int] = dict.fromkeys(LinkEnd, 0)

    # The observer's events, in the reactor thread.

    def link_up(self, service: Service, connection: ConnectionBase) -> None:
        self.connections_total += 1
        stats = LinkStats(str(connection), connection.transport_kind, self._clock())
        self._links[connection] = _Link(connection, stats, len(connection.frame(b"")))

    def link_down(self, service: Service, connection: ConnectionBase, reason: LinkEnd) -> None:
        self._links.pop(connection, None)
        self.disconnects[reason] = self.disconnects.get(reason, 0) + 1

    def messages_in(self, service: Service, connection: ConnectionBase, messages: Sequence[bytes]) -> None:
        count = len(messages)
        link = self._links.get(connection)
        size = sum(map(len, messages)) + (count * link.overhead if link is not None else 0)
        self.received += count
        self.received_bytes += size
        if link is not None:
            stats = link.stats
            stats.messages_in += count
            stats.bytes_in += size

    def message_out(self, service: Service, connection: ConnectionBase, count: int, size: int) -> None:
        self.delivered += count
        self.delivered_bytes += size
        link = self._links.get(connection)
        if link is not None:
            stats = link.stats
            stats.messages_out += count
            stats.bytes_out += size

    def dropped(self, service: Service, connection: ConnectionBase, count: int) -> None:
        self.dropped_total += count
        link = self._links.get(connection)
        if link is not None:
            link.stats.dropped += count

    def refused(self, service: Service, address: object, reason: str) -> None:
        self.refused_total += 1

    def failure(self, service: Service, error: Exception) -> None:
        self.failures += 1

    # Reading, from any thread.

    def snapshot(self) -> ServiceStats:
        """The counters now, with a copy of every link's."""
        links = tuple(self._links.values())  # one C-level copy: safe while the reactor adds or removes links
        return ServiceStats(
            connections=len(links),
            connections_total=self.connections_total,
            refused_total=self.refused_total,
            messages_in=self.received,
            bytes_in=self.received_bytes,
            messages_out=self.delivered,
            bytes_out=self.delivered_bytes,
            dropped=self.dropped_total,
            failures=self.failures,
            disconnects={str(reason): count for reason, count in tuple(self.disconnects.items())},
            links=tuple(replace(link.stats, buffered=link.connection.buffered()) for link in links),
        )
