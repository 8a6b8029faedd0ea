"""One bound on the bytes a server holds for all its peers together: unfinished incoming messages and outgoing
bytes waiting for peers that stopped reading.

Each link bounds itself (``max_message``, ``max_buffered``), but many links at their bounds add up to more than a
vehicle computer has; the budget bounds the sum. Holders report changes once per chunk of bytes, not per message.
Past the budget the holders holding the most are dropped first, until the rest fit again.
"""

from __future__ import annotations

from typing import Protocol

#: The default bound on what a server holds for all its peers: 256 MiB.
DEFAULT_MAX_MEMORY: int = 256 * 1024 * 1024


class MemoryHolder(Protocol):
    """Something that holds bytes for one peer and can let go of all of them by dropping that peer."""

    def drop_for_memory(self, held: int, total: int, limit: int) -> None:
        """Drop the peer: it held ``held`` bytes when all together held ``total``, over ``limit``.

        It must tell the budget it holds nothing (``release``) before it returns, or soon after.
        """


class MemoryBudgetExceeded(OSError):
    """A peer was dropped because all peers together held more than ``max_memory`` bytes."""


def check_max_memory(max_memory: int | None) -> int | None:
    """Return ``max_memory`` if it is a usable bound (or None for no bound), else raise ``ValueError``."""
    if max_memory is None:
        return None
    if not isinstance(max_memory, int) or isinstance(max_memory, bool) or max_memory < 1:
        raise ValueError(f"max_memory must be a positive number of bytes or None, not {max_memory!r}")
    return max_memory


class MemoryBudget:
    """The bytes held per holder and in all, against ``limit``; used in the reactor thread only."""

    __slots__ = ("_dropping", "_held", "limit", "total")

    def __init__(self, limit: int) -> None:
        self.limit: int = limit
        self.total: int = 0
        self._held: dict[MemoryHolder, int] = {}
        self._dropping: bool = False

    def held_by(self, holder: MemoryHolder) -> int:
        """The bytes ``holder`` holds now, as last reported."""
        return self._held.get(holder, 0)

    def set(self, holder: MemoryHolder, held: int) -> None:
        """``holder`` now holds ``held`` bytes; past the limit, the biggest holders are dropped."""
        before = self._held.get(holder, 0)
        if held == before:
            return
        if held:
            self._held[holder] = held
        else:
            del self._held[holder]
        self.total += held - before
        if self.total > self.limit and not self._dropping:
            self._drop_biggest()

    def add(self, holder: MemoryHolder, size: int) -> None:
        """``holder`` holds ``size`` bytes more (called per write to a peer that is not reading: kept short)."""
        if size <= 0:
            if size:
                self.set(holder, self._held.get(holder, 0) + size)
            return
        held = self._held
        held[holder] = held.get(holder, 0) + size
        self.total += size
        if self.total > self.limit and not self._dropping:
            self._drop_biggest()

    def release(self, holder: MemoryHolder) -> None:
        """``holder`` holds nothing any more."""
        held = self._held.pop(holder, 0)
        self.total -= held

    def _drop_biggest(self) -> None:
        """Drop holders, the biggest first, until the total is back under the limit."""
        self._dropping = True
        try:
            for holder, held in sorted(self._held.items(), key=lambda item: item[1], reverse=True):
                if self.total <= self.limit:
                    break
                total = self.total
                holder.drop_for_memory(held, total, self.limit)
                self.release(holder)
        finally:
            self._dropping = False
