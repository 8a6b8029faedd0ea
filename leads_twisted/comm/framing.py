"""Separator framing of a byte stream into messages, with no I/O.

The wire format is the one of LEADS 0.9.x: every message is followed by the separator (``b";"`` by default),
and the message ``b"disconnect"`` asks the peer to close. This module only turns bytes into messages and
messages into bytes; sockets, threads and callbacks live elsewhere.
"""

from __future__ import annotations

DEFAULT_SEPARATOR: bytes = b";"
DISCONNECT: bytes = b"disconnect"
DEFAULT_MAX_MESSAGE: int = 8 * 1024 * 1024


class MessageTooLong(ValueError):
    """A peer sent more than ``max_message`` bytes without a separator.

    ``complete`` holds the messages that arrived whole before the one too long, still to be delivered.
    """

    def __init__(self, length: int, max_message: int, complete: list[bytes] | None = None) -> None:
        super().__init__(
            f"a message of at least {length} bytes exceeds the limit of {max_message} bytes; "
            f"raise max_message on both ends if such messages are expected"
        )
        self.length: int = length
        self.max_message: int = max_message
        self.complete: list[bytes] = complete if complete is not None else []


def check_separator(separator: bytes) -> bytes:
    """Return ``separator`` if it can frame messages, or raise ``ValueError`` saying why not."""
    if not isinstance(separator, bytes):
        raise TypeError(f"the separator must be bytes, not {type(separator).__name__}")
    if not separator:
        raise ValueError("the separator must not be empty")
    return separator


def check_max_message(max_message: int) -> int:
    """Return ``max_message`` if it is a usable bound, or raise ``ValueError``."""
    if not isinstance(max_message, int) or isinstance(max_message, bool) or max_message < 1:
        raise ValueError(f"max_message must be a positive number of bytes, not {max_message!r}")
    return max_message


class Encoder:
    """Turns messages into wire bytes, refusing any message the peer would not read back as sent."""

    __slots__ = ("_overlap_tail", "separator")

    def __init__(self, separator: bytes = DEFAULT_SEPARATOR) -> None:
        self.separator: bytes = check_separator(separator)
        # With a multi-byte separator, the end of a message followed by the first bytes of the separator can
        # contain the separator too (b"a" + b"aa" with separator b"aa"); those bytes are checked as well.
        self._overlap_tail: bytes = separator[:-1]

    def check(self, msg: bytes) -> None:
        """Raise ``TypeError`` or ``ValueError`` if ``msg`` cannot be sent as one message.

        It runs on every send: ``find`` is used rather than ``in``, which costs CPython a failed integer
        lookup first, and plain bytes with a separator that cannot overlap itself take the first test alone.
        """
        separator = self.separator
        tail = self._overlap_tail
        if type(msg) is bytes and not tail:
            if msg.find(separator) < 0:
                return
        elif not isinstance(msg, bytes):
            raise TypeError(f"a message must be bytes, not {type(msg).__name__}; convert it with bytes(...)")
        if msg.find(separator) >= 0 or (tail and (bytes(msg[-len(tail) :]) + tail).find(separator) >= 0):
            raise ValueError(
                f"the message contains the separator {separator!r}, so the peer would read it as more than one "
                f"message; escape or encode the payload (base64, for instance), or choose another separator"
            )

    def frame(self, msg: bytes) -> bytes:
        """Return the wire bytes of one message already checked."""
        return msg + self.separator

    def encode(self, msg: bytes) -> bytes:
        """Return the wire bytes of one message."""
        self.check(msg)
        return bytes(msg) + self.separator

    def encode_all(self, msgs: list[bytes]) -> bytes:
        """Return the wire bytes of messages already checked, in order, as one write."""
        separator = self.separator
        return separator.join(msgs) + separator


class Decoder:
    """Splits a byte stream into messages, whatever the chunking, with at most ``max_message`` bytes held.

    Feed it chunks in arrival order; each call returns the messages completed by that chunk. The cost is one
    split per chunk that completes a message, and one append per chunk that does not.
    """

    __slots__ = ("_boundary", "_pending", "_pending_length", "_tail", "max_message", "separator")

    def __init__(self, separator: bytes = DEFAULT_SEPARATOR, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self.separator: bytes = check_separator(separator)
        self.max_message: int = check_max_message(max_message)
        self._pending: list[bytes] = []
        self._pending_length: int = 0
        # How many bytes of the held data might begin a separator that the next chunk completes.
        self._boundary: int = len(separator) - 1
        # The last ``_boundary`` bytes held, however many chunks they came in.
        self._tail: bytes = b""

    @property
    def buffered(self) -> int:
        """How many bytes of an unfinished message are held."""
        return self._pending_length

    def drop_pending(self) -> int:
        """Forget the unfinished message held (``drop_remainder`` of LEADS); return how many bytes it had."""
        dropped = self._pending_length
        self._pending.clear()
        self._pending_length = 0
        self._tail = b""
        return dropped

    def feed(self, data: bytes) -> list[bytes]:
        """Take the next chunk of the stream and return the messages it completes, in order.

        Raises ``MessageTooLong`` once a message grows past ``max_message`` bytes, carrying the messages
        completed before it; the decoder should then be discarded with the connection it served.
        """
        separator = self.separator
        pending = self._pending
        if pending:
            straddles = self._boundary and (self._tail + data[: self._boundary]).find(separator) >= 0
            if not straddles and data.find(separator) < 0:
                return self._hold(data)
            pending.append(data)
            data = b"".join(pending)
            pending.clear()
            self._pending_length = 0
            self._tail = b""
        elif data.find(separator) < 0:
            return self._hold(data) if data else []
        messages = data.split(separator)
        rest = messages.pop()
        if len(data) > self.max_message:
            self._check_lengths(messages)
        if rest:
            try:
                self._hold(rest)
            except MessageTooLong as error:
                error.complete = messages
                raise
        return messages

    def _hold(self, data: bytes) -> list[bytes]:
        self._pending.append(data)
        self._pending_length += len(data)
        if self._boundary:
            self._tail = (self._tail + data[-self._boundary :])[-self._boundary :]
        # The last bytes held may be the start of a separator, not message: a message of exactly max_message
        # bytes whose separator is cut in two must pass. A longer one is caught here or once it ends.
        if self._pending_length > self.max_message + self._boundary:
            raise MessageTooLong(self._pending_length, self.max_message)
        return []

    def _check_lengths(self, messages: list[bytes]) -> None:
        max_message = self.max_message
        for index, msg in enumerate(messages):
            if len(msg) > max_message:
                raise MessageTooLong(len(msg), max_message, messages[:index])
