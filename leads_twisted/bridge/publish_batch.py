"""MQTT 3.1.1 PUBLISH packets at QoS 0 for one topic, many messages encoded in one go.

At QoS 0 a PUBLISH has no packet id and needs no answer: a first byte, the remaining length, the topic and the
payload. paho would spend a ``publish`` call, a lock and a message-info object on each; the bridge writes a
whole chunk of ``up`` messages as one buffer instead (paho still connects, subscribes, pings and does QoS 1).
"""

from __future__ import annotations

from collections.abc import Iterable

#: PUBLISH, QoS 0, no DUP: the high nibble 3, flags 0 (retain adds 1).
_PUBLISH: int = 0x30
#: The largest remaining length MQTT can express (four length bytes).
MAX_REMAINING: int = 268_435_455
#: Payload lengths whose headers are kept, so the usual sizes cost one dictionary look-up.
_CACHED_LENGTHS: int = 4096


def remaining_length(value: int) -> bytes:
    """``value`` in MQTT's variable-length encoding (7 bits a byte, low first, high bit = more follows)."""
    if not 0 <= value <= MAX_REMAINING:
        raise ValueError(f"an MQTT packet cannot hold {value} bytes after its header (at most {MAX_REMAINING})")
    out = bytearray()
    while True:
        value, digit = divmod(value, 128)
        out.append(digit | 0x80 if value else digit)
        if not value:
            return bytes(out)


class PublishEncoder:
    """Encodes payloads as QoS 0 PUBLISH packets to ``topic`` (``retain`` sets the flag on each)."""

    __slots__ = ("_first", "_heads", "_topic")

    def __init__(self, topic: str, retain: bool = False) -> None:
        name = topic.encode("utf-8")
        if len(name) > 0xFFFF:
            raise ValueError(f"an MQTT topic is at most 65535 bytes, not {len(name)}")
        self._first = bytes((_PUBLISH | (1 if retain else 0),))
        self._topic = len(name).to_bytes(2, "big") + name
        self._heads: dict[int, bytes] = {}

    def head(self, size: int) -> bytes:
        """Everything of a packet before a payload of ``size`` bytes: first byte, length, topic."""
        head = self._heads.get(size)
        if head is None:
            head = self._first + remaining_length(len(self._topic) + size) + self._topic
            if size < _CACHED_LENGTHS:
                self._heads[size] = head
        return head

    def packet_size(self, msg: bytes) -> int:
        """Bytes of the packet that carries ``msg``."""
        return len(self.head(len(msg))) + len(msg)

    def encode(self, messages: Iterable[bytes]) -> bytes:
        """One buffer with a packet per message, in order."""
        heads, head = self._heads, self.head
        parts: list[bytes] = []
        append = parts.append
        for msg in messages:
            append(heads.get(len(msg)) or head(len(msg)))
            append(msg)
        return b"".join(parts)

    def written(self, messages: list[bytes], sent: int) -> int:
        """How many of ``messages``, encoded in order, are whole within the first ``sent`` bytes."""
        done = 0
        for msg in messages:
            sent -= self.packet_size(msg)
            if sent < 0:
                break
            done += 1
        return done
