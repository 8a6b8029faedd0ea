"""WebSocket frames the relay handles itself (RFC 6455 §5.2), pure and without I/O.

wsproto (under ``twisted.web.websocket``) does the handshake and reads the browsers' frames; two jobs are kept
here because the relay needs them done its own way:

- ``server_frames``: a server's frames are never masked, so a broadcast is framed once and the same bytes go
  to every browser, as the TCP links share one encoding;
- ``FrameMeter``: reads only the headers of the frames coming in, so a message over ``max_message`` is refused
  from its first header, before anyone has buffered it.
"""

from __future__ import annotations

import struct

OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2


def server_frame(msg: bytes) -> bytes:
    """One unfragmented, unmasked frame carrying ``msg``: text when it is UTF-8 (what a page reads most easily),
    else binary."""
    try:
        msg.decode()
        opcode = OPCODE_TEXT
    except UnicodeDecodeError:
        opcode = OPCODE_BINARY
    length = len(msg)
    if length < 126:
        header = bytes((0x80 | opcode, length))
    elif length < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, length)
    return header + msg


def server_frames(messages: list[bytes]) -> bytes:
    """The frames of ``messages``, in order, as one string of bytes."""
    if len(messages) == 1:
        return server_frame(messages[0])
    return b"".join([server_frame(msg) for msg in messages])


class FrameCache:
    """Frames the messages of one broadcast once for all the browsers it goes to.

    A broadcast hands the same list to each link in turn; a link compares it with ``messages`` (element by
    element, the elements being the same objects: a pointer check each, never trusting the list's identity
    alone) and takes ``data`` when they are equal, else calls ``frames``. Both attributes are read-only
    outside.
    """

    __slots__ = ("data", "messages")

    def __init__(self) -> None:
        #: The messages framed last (a copy of the list given), and their frames.
        self.messages: list[bytes] | None = None
        self.data: bytes = b""

    def frames(self, messages: list[bytes]) -> bytes:
        if self.messages is not None and messages == self.messages:
            return self.data
        self.data = server_frames(messages)
        self.messages = list(messages)
        return self.data


class FrameMeter:
    """Follows the frames a peer sends and says when one message (its data frames added up) grows past
    ``limit`` bytes; control frames do not count. It looks at headers and skips payloads by length.

    ``held`` is what the peer has sent so far of a message not yet whole: what the WebSocket layer buffers for
    it, for the server's memory budget.
    """

    __slots__ = ("_data_frame", "_fin", "_head", "_limit", "_message", "_payload_left", "held")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._head = bytearray()
        self._payload_left = 0
        self._data_frame = False
        self._fin = False
        self._message = 0
        self.held = 0

    def feed(self, data: bytes) -> int | None:
        """Account for ``data``: None if every message in it is within the limit, else how many of its bytes
        come before the header of the frame that went over (the meter is then done)."""
        index, end = 0, len(data)
        while index < end:
            if self._payload_left:
                taken = min(self._payload_left, end - index)
                self._payload_left -= taken
                index += taken
                if self._data_frame:
                    self.held += taken
                    if not self._payload_left:
                        self._frame_done()
                continue
            header_start = index - len(self._head)
            need = self._header_length() - len(self._head)
            self._head += data[index : index + need]
            index += need
            if len(self._head) < self._header_length():
                continue  # the header is longer than its first bytes said, or its rest comes with the next data
            if not self._frame_started():
                return max(header_start, 0)
        return None

    def _header_length(self) -> int:
        head = self._head
        if len(head) < 2:
            return 2
        size = head[1] & 0x7F
        extended = 2 if size == 126 else 8 if size == 127 else 0
        return 2 + extended + (4 if head[1] & 0x80 else 0)

    def _frame_started(self) -> bool:
        head, self._head = self._head, bytearray()
        size = head[1] & 0x7F
        if size == 126:
            size = struct.unpack_from("!H", head, 2)[0]
        elif size == 127:
            size = struct.unpack_from("!Q", head, 2)[0]
        self._payload_left = size
        self._data_frame = (head[0] & 0x0F) < 0x8  # ping, pong, close: at most 125 bytes, never part of a message
        if not self._data_frame:
            return True
        self._fin = bool(head[0] & 0x80)
        self._message += size
        if self._message > self._limit:
            return False
        if not size:
            self._frame_done()
        return True

    def _frame_done(self) -> None:
        """A data frame's payload is all in; after the last frame of a message, the next one starts anew."""
        if self._fin:
            self._message = 0
            self.held = 0
