"""paho-mqtt driven by the Twisted reactor: its socket among the reactor's readers and writers, its keep-alive
on a reactor timer, and no thread of its own.

paho offers exactly this seam for outside event loops: it says when its socket opens and closes and when it
has bytes to write, and ``loop_read``, ``loop_write`` and ``loop_misc`` do the work when the loop says so.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from paho.mqtt.client import Client
from twisted.internet.interfaces import IReadDescriptor, IWriteDescriptor
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure
from zope.interface import implementer

from leads_twisted.comm.reactor_types import IHubReactor

if TYPE_CHECKING:
    import socket

    from paho.mqtt.client import SocketLike

#: Seconds between paho's ``loop_misc`` calls (keep-alive pings and the broker's silence), while a socket is open.
MISC_INTERVAL: float = 1.0


@implementer(IReadDescriptor, IWriteDescriptor)
class PahoSocket:
    """One socket of a paho client, as the reactor sees it: readable calls ``loop_read``, writable lets the
    driver write. paho closes the socket itself; it tells us first, and we leave the reactor then."""

    def __init__(self, client: Client, sock: SocketLike, writable: Callable[[], None]) -> None:
        self._client = client
        self._sock = sock
        self._writable = writable
        self._fileno: int = sock.fileno()

    def fileno(self) -> int:
        return self._fileno

    def logPrefix(self) -> str:
        return "mqtt-bridge"

    def doRead(self) -> None:
        self._client.loop_read()
        # TLS may hold decrypted bytes the kernel no longer reports as readable: read them now.
        sock = self._sock
        if isinstance(sock, ssl.SSLSocket):
            while sock.pending() and self._client.socket() is sock:
                self._client.loop_read()

    def doWrite(self) -> None:
        self._writable()

    def connectionLost(self, reason: Failure) -> None:
        """The reactor gave the socket up (at shutdown): nothing to do, paho owns it."""


class ReactorDriver:
    """Puts ``client``'s socket on ``reactor`` while it is open. Set up once, before the client connects.

    Besides paho's packets, the driver writes ready-made buffers of the owner's (``write``), one at a time and
    only while paho holds nothing unwritten, so both kinds go out whole and in the order they were given.
    ``sent(count)`` is called when a buffer of ``count`` messages is written; ``idle()`` whenever everything,
    paho's and the owner's, has been written.
    """

    def __init__(
        self,
        client: Client,
        reactor: IHubReactor,
        idle: Callable[[], None] = lambda: None,
        sent: Callable[[int], None] = lambda count: None,
    ) -> None:
        self._client = client
        self._reactor = reactor
        self._idle = idle
        self._sent = sent
        self._socket: PahoSocket | None = None
        self._sock: socket.socket | None = None
        #: The owner's buffer being written: bytes left, the messages in it, and the bytes written so far.
        self._buffer: memoryview | None = None
        self._messages: list[bytes] = []
        self._done = 0
        #: A write failed on this socket: nothing more is written to it; paho will close it.
        self._broken = False
        #: The messages of a buffer cut short by the socket's close, with the bytes that got out.
        self._cut: tuple[list[bytes], int] = ([], 0)
        self._misc = LoopingCall(client.loop_misc)
        self._misc.clock = reactor
        client.on_socket_open = self._opened
        client.on_socket_close = self._closed
        client.on_socket_register_write = self._paho_wants
        client.on_socket_unregister_write = self._paho_written

    @property
    def buffered(self) -> int:
        """Messages in the owner's buffer not yet wholly written."""
        return len(self._messages) if self._buffer is not None else 0

    def can_write(self) -> bool:
        """True when ``write`` may be called: the socket is open and nothing of paho's or ours waits."""
        return self._socket is not None and self._buffer is None and not self._client.want_write()

    def write(self, data: bytes, messages: list[bytes]) -> bool:
        """Write ``data`` (``messages``, encoded) now or as the socket allows; True if it is already all out.

        Only when ``can_write()``; ``sent`` is called once it is all out, unless this returns True.
        """
        if not self.can_write():
            raise RuntimeError("the bridge's socket is busy or closed")
        self._buffer, self._messages, self._done = memoryview(data), messages, 0
        if self._flush(report=False):
            return True
        if not self._broken and self._socket is not None:
            self._reactor.addWriter(self._socket)
        return False

    def take_cut(self) -> tuple[list[bytes], int]:
        """The messages of the buffer the last close cut short (oldest first) and how many bytes of it got out."""
        cut, self._cut = self._cut, ([], 0)
        return cut

    def _flush(self, report: bool = True) -> bool:
        """Write what the socket takes of the owner's buffer; True when none is left."""
        buffer, sock = self._buffer, self._sock
        assert buffer is not None and sock is not None
        while buffer:
            try:
                count = sock.send(buffer)
            except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                break
            except OSError:
                # The link is broken: paho's read or keep-alive notices and closes it; until then, no busy loop.
                self._broken = True
                if self._socket is not None:
                    self._reactor.removeWriter(self._socket)
                break
            buffer = buffer[count:]
            self._done += count
        if buffer:
            self._buffer = buffer
            return False
        count = len(self._messages)
        self._buffer, self._messages, self._done = None, [], 0
        if report:
            self._sent(count)
        return True

    def _writable(self) -> None:
        socket = self._socket
        if socket is None or self._broken:
            return
        if self._buffer is not None and not self._flush():
            return
        if self._client.want_write():
            self._client.loop_write()  # paho tells us when it has written all (``_paho_written``)
        else:
            self._reactor.removeWriter(socket)
            self._idle()

    def _opened(self, client: Client, userdata: object, sock: SocketLike) -> None:
        # paho opens a plain or a TLS socket (an ``ssl.SSLSocket`` is a ``socket.socket``): its ``send`` takes
        # the memoryviews ``_flush`` writes, which paho's ``SocketLike`` hint (bytes only) leaves out.
        self._sock = cast("socket.socket", sock)
        self._broken = False
        self._socket = PahoSocket(client, sock, self._writable)
        self._reactor.addReader(self._socket)
        if not self._misc.running:
            self._misc.start(MISC_INTERVAL, now=False)

    def _closed(self, client: Client, userdata: object, sock: SocketLike) -> None:
        if self._socket is not None:
            self._reactor.removeReader(self._socket)
            self._reactor.removeWriter(self._socket)
            self._socket = self._sock = None
        if self._buffer is not None:
            self._cut = (self._messages, self._done)
            self._buffer, self._messages, self._done = None, [], 0
        if self._misc.running:
            self._misc.stop()

    def _paho_wants(self, client: Client, userdata: object, sock: SocketLike) -> None:
        if self._socket is not None and not self._broken:
            self._reactor.addWriter(self._socket)

    def _paho_written(self, client: Client, userdata: object, sock: SocketLike) -> None:
        if self._socket is not None and self._buffer is None:
            self._reactor.removeWriter(self._socket)
            self._idle()
