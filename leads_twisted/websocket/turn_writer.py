"""Writes what the browsers' links are given during one reactor turn once per link, at the end of the turn.

A relay hands a burst of messages to every link one message at a time; a TCP link holds them for one write per
batch, and this does the same for WebSocket links: each delivery is a list append, and each link gets one
transport write per turn instead of one per message.
"""

from __future__ import annotations

from typing import Any, Protocol


class Wire(Protocol):
    """What a link offers the writer: the bytes go on its wire, unless it has ended."""

    def put_on_wire(self, data: bytes) -> None: ...


class TurnWriter:
    """Holds writes per link until the reactor's next turn (``callLater(0)``), shared by every link of a site.

    Order per link is kept. ``flush(link)`` writes a link's held bytes at once (before its close frame);
    ``forget(link)`` drops them (the link is gone). Reactor thread only.
    """

    __slots__ = ("_held", "_reactor", "_scheduled")

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self._held: dict[Wire, list[bytes]] = {}
        self._scheduled = False

    def write(self, link: Wire, data: bytes) -> None:
        held = self._held.get(link)
        if held is not None:
            held.append(data)
            return
        self._held[link] = [data]
        if not self._scheduled:
            self._scheduled = True
            self._reactor.callLater(0, self._flush_all)

    def flush(self, link: Wire) -> None:
        held = self._held.pop(link, None)
        if held:
            link.put_on_wire(held[0] if len(held) == 1 else b"".join(held))

    def forget(self, link: Wire) -> None:
        self._held.pop(link, None)

    def _flush_all(self) -> None:
        self._scheduled = False
        held, self._held = self._held, {}
        for link, chunks in held.items():
            link.put_on_wire(chunks[0] if len(chunks) == 1 else b"".join(chunks))
