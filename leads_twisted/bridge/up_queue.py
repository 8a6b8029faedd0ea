"""The bridge's outgoing queue: messages waiting for the broker, bounded in bytes, oldest dropped first.

Pure bookkeeping, no I/O: the vehicle keeps producing while the broker is away, so what waits must stay within
a fixed memory bound, and what no longer fits is the oldest data (the newest is what a dashboard wants).
"""

from __future__ import annotations

from collections import deque

#: The default bound of the queue: 8 MiB of message bytes.
DEFAULT_QUEUE_BYTES: int = 8 * 1024 * 1024


class UpQueue:
    """Messages in arrival order, at most ``limit`` bytes of them; ``dropped`` counts what had to go."""

    __slots__ = ("_messages", "bytes", "dropped", "limit")

    def __init__(self, limit: int = DEFAULT_QUEUE_BYTES) -> None:
        if limit < 0:
            raise ValueError(f"the bridge queue bound must be 0 bytes or more, not {limit}")
        self.limit: int = limit
        self.bytes: int = 0  #: message bytes held now
        self.dropped: int = 0  #: messages dropped since the start, oldest first, to stay within ``limit``
        self._messages: deque[bytes] = deque()

    def __len__(self) -> int:
        return len(self._messages)

    def __bool__(self) -> bool:
        return bool(self._messages)

    def push(self, msg: bytes) -> None:
        """Add ``msg`` at the end, dropping the oldest messages (``msg`` itself if it alone is too big)."""
        self._messages.append(msg)
        self.bytes += len(msg)
        while self.bytes > self.limit:
            self.bytes -= len(self._messages.popleft())
            self.dropped += 1

    def push_front(self, messages: list[bytes]) -> None:
        """Put ``messages`` (oldest first) back before the others, as the next to go; the bound still holds."""
        self._messages.extendleft(reversed(messages))
        self.bytes += sum(map(len, messages))
        while self.bytes > self.limit:
            self.bytes -= len(self._messages.popleft())
            self.dropped += 1

    def pop(self) -> bytes:
        """The oldest message, taken out. Raises ``IndexError`` when empty."""
        msg = self._messages.popleft()
        self.bytes -= len(msg)
        return msg

    def take(self, limit: int) -> list[bytes]:
        """The oldest messages, taken out, as many as fit in ``limit`` bytes (always one, if any)."""
        messages = self._messages
        if self.bytes <= limit:
            taken = list(messages)
            messages.clear()
            self.bytes = 0
            return taken
        taken = []
        size = 0
        while messages and (not taken or size + len(messages[0]) <= limit):
            msg = messages.popleft()
            size += len(msg)
            taken.append(msg)
        self.bytes -= size
        return taken
