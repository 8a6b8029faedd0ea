"""Opt-in length-prefixed framing, with no I/O: for payloads that may hold any byte, the separator included.

Each message is a 4-byte big-endian length followed by that many bytes. Both ends must choose it; it does not
interoperate with LEADS 0.9.x peers, which expect separator framing. ``b"disconnect"`` keeps its meaning.
"""

from __future__ import annotations

import struct

from leads_twisted.comm.framing import DEFAULT_MAX_MESSAGE, MessageTooLong, check_max_message

_HEADER = struct.Struct(">I")
HEADER_SIZE: int = _HEADER.size
#: The largest length a 4-byte header can announce.
LARGEST_LENGTH: int = 2**32 - 1


class LengthEncoder:
    """Turns messages into length-prefixed wire bytes; any bytes may be sent."""

    __slots__ = ()

    #: Length framing has no separator; kept so the two encoders are interchangeable.
    separator: bytes = b""

    def check(self, msg: bytes) -> None:
        """Raise ``TypeError`` or ``ValueError`` if ``msg`` cannot be sent."""
        if not isinstance(msg, bytes):
            raise TypeError(f"a message must be bytes, not {type(msg).__name__}; convert it with bytes(...)")
        if len(msg) > LARGEST_LENGTH:
            raise ValueError(f"a message of {len(msg)} bytes is longer than a length header can announce")

    def frame(self, msg: bytes) -> bytes:
        """Return the wire bytes of one message already checked."""
        return _HEADER.pack(len(msg)) + msg

    def encode(self, msg: bytes) -> bytes:
        """Return the wire bytes of one message."""
        self.check(msg)
        return self.frame(msg)

    def encode_all(self, msgs: list[bytes]) -> bytes:
        """Return the wire bytes of messages already checked, in order, as one write."""
        pack = _HEADER.pack
        return b"".join([part for msg in msgs for part in (pack(len(msg)), msg)])


class LengthDecoder:
    """Splits a length-prefixed stream into messages, holding at most ``max_message`` bytes of one message."""

    __slots__ = ("_buffer", "max_message")

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self.max_message: int = check_max_message(max_message)
        self._buffer: bytearray = bytearray()

    @property
    def buffered(self) -> int:
        """How many bytes of unfinished messages are held."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Take the next chunk and return the messages it completes, in order.

        Raises ``MessageTooLong`` as soon as a header announces more than ``max_message`` bytes.
        """
        buffer = self._buffer
        buffer += data
        messages: list[bytes] = []
        offset = 0
        available = len(buffer)
        unpack_from = _HEADER.unpack_from
        while available - offset >= HEADER_SIZE:
            (length,) = unpack_from(buffer, offset)
            if length > self.max_message:
                raise MessageTooLong(length, self.max_message, messages)
            end = offset + HEADER_SIZE + length
            if end > available:
                break
            messages.append(bytes(buffer[offset + HEADER_SIZE : end]))
            offset = end
        if offset:
            del buffer[:offset]
        return messages
