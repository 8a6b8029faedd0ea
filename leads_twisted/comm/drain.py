"""A closing link drains: what it still holds for the peer, and when to give up on a peer that takes nothing.

A link that is closing still delivers everything written before the close, however slowly the peer reads.
It is cut only after ``close_timeout`` seconds in which the peer took no bytes at all: what this side holds
for it (Twisted's buffer, and the socket's send queue, which shrinks as the peer's kernel acknowledges what
the peer's program read room for) did not shrink, and nothing came from the peer either.
"""

from __future__ import annotations

import array
import fcntl
import socket
import termios
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime, ITransport

#: How many times per ``close_timeout`` a draining link is looked at.
CHECKS_PER_TIMEOUT: int = 5


@dataclass(frozen=True)
class Unsent:
    """What a link still held for its peer: bytes, and the messages among them where they can be counted."""

    bytes: int
    messages: int | None

    def describe(self) -> str:
        if self.messages is None:
            return f"{self.bytes} bytes"
        return f"{self.bytes} bytes (about {self.messages} messages)"


class _WriteBuffer(Protocol):
    """What Twisted's file-descriptor transports (``abstract.FileDescriptor``) keep of the bytes not yet written;
    Twisted declares no interface for it, so it is read where it is found."""

    dataBuffer: bytes
    offset: int


def _socket_of(transport: ITransport) -> socket.socket | None:
    """The socket under a Twisted TCP/unix transport, also under a TLS layer; None for any other."""
    for layer in (transport, getattr(transport, "transport", None)):
        handle = getattr(layer, "getHandle", None)
        if handle is not None:
            try:
                sock = handle()
            except Exception:  # a transport without a real handle (in memory)
                return None
            if isinstance(sock, socket.socket):
                return sock
    return None


def _buffer_layer(transport: ITransport) -> _WriteBuffer | None:
    """The file-descriptor transport holding Twisted's write buffer (under a TLS layer too), or None."""
    for layer in (transport, getattr(transport, "transport", None)):
        if layer is not None and hasattr(layer, "dataBuffer") and hasattr(layer, "offset"):
            return layer
    return None


def _buffered(transport: ITransport) -> list[bytes]:
    """The bytes Twisted still buffers for the peer, oldest first."""
    layer = _buffer_layer(transport)
    if layer is None:
        return []
    return [bytes(layer.dataBuffer[layer.offset :]), *getattr(layer, "_tempDataBuffer", [])]


def pending_bytes(transport: ITransport) -> int:
    """How many bytes this side still holds for the peer: Twisted's buffer and the socket's send queue."""
    layer = _buffer_layer(transport)
    buffered = 0 if layer is None else len(layer.dataBuffer) - layer.offset + getattr(layer, "_tempDataLen", 0)
    return buffered + socket_unsent(_socket_of(transport))


def socket_unsent(sock: socket.socket | None) -> int:
    """Bytes in the socket's send queue the peer has not acknowledged (0 where that cannot be read)."""
    if sock is None or sock.fileno() < 0:
        return 0
    room = array.array("i", [0])
    try:
        fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, room, True)
    except OSError:
        return 0
    return max(room[0], 0)


def unsent(transport: ITransport, separator: bytes | None) -> Unsent:
    """What ``transport`` still holds for the peer. Messages are counted in Twisted's buffer by ``separator``
    (None: not countable), and those in the socket's queue estimated from the size of the ones counted."""
    chunks = _buffered(transport)
    in_buffer = sum(len(chunk) for chunk in chunks)
    in_socket = socket_unsent(_socket_of(transport))
    total = in_buffer + in_socket
    if separator is None:
        return Unsent(total, None)
    counted = sum(chunk.count(separator) for chunk in chunks)
    if in_socket and counted:
        counted += round(in_socket * counted / in_buffer)
    elif in_socket:
        return Unsent(total, None)
    return Unsent(total, counted)


class DrainWatch:
    """Looks at a closing link every ``timeout / CHECKS_PER_TIMEOUT`` seconds and calls ``cut`` once the
    peer has taken nothing for ``timeout`` seconds. ``progress()`` says bytes came from the peer."""

    def __init__(self, clock: IReactorTime, timeout: float, held: Callable[[], int], cut: Callable[[], None]) -> None:
        self._clock = clock
        self._timeout = timeout
        self._held = held
        self._cut = cut
        self._last_held = held()
        self._since = clock.seconds()
        self._call: IDelayedCall | None = clock.callLater(timeout / CHECKS_PER_TIMEOUT, self._check)

    def progress(self) -> None:
        """The peer did something: the timeout starts again."""
        self._since = self._clock.seconds()

    def stop(self) -> None:
        """The link ended: no more checks."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _check(self) -> None:
        self._call = None
        held = self._held()
        if held < self._last_held:
            self.progress()
        self._last_held = held
        if self._clock.seconds() - self._since >= self._timeout - 1e-9:
            self._cut()
            return
        self._call = self._clock.callLater(self._timeout / CHECKS_PER_TIMEOUT, self._check)
