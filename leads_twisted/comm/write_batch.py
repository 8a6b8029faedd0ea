"""Writes made while the reactor handles one batch of work leave together at its end, without a reactor turn.

Twisted's ``transport.write`` only buffers: the bytes go out on the reactor's next turn, after another
``epoll_wait`` and a start/stop of write polling. That is one wasted turn per hop of a request and its reply.
So while the library handles a batch (a chunk from a peer and the callbacks it runs, or a drain of messages
sent from other threads), each link's writes are held and joined; at the end of the batch each link gets one
write, straight to its socket when it can be (see ``direct_write``).
"""

from __future__ import annotations

from typing import Protocol

from twisted.logger import Logger

_log = Logger(namespace="leads_twisted.write_batch")


class BatchedLink(Protocol):
    """A link whose writes wait for the end of the batch under way."""

    def write_batched(self) -> None:
        """Write what was held, now."""


class WriteBatch:
    """Counts the batches under way in the reactor thread and has the joined links write when the outermost ends.

    Use it from the reactor thread only: ``begin()``, then ``end()`` in a ``finally``.
    """

    def __init__(self) -> None:
        self._depth = 0
        self._joined: list[BatchedLink] = []

    @property
    def open(self) -> bool:
        """True while a batch is under way: writes should be held."""
        return self._depth > 0

    def join(self, link: BatchedLink) -> None:
        """``link`` has writes waiting: have it write them when the batch ends (call once per batch)."""
        self._joined.append(link)

    def begin(self) -> None:
        self._depth += 1

    def end(self) -> None:
        self._depth -= 1
        if self._depth or not self._joined:
            return
        joined, self._joined = self._joined, []
        for link in joined:
            try:
                link.write_batched()
            except Exception:
                _log.failure("writing out a batch's messages failed")


#: The batch of the process's reactor, which every hub on it shares unless it is given another.
shared_write_batch: WriteBatch = WriteBatch()
