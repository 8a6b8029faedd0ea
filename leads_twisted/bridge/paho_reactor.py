"""paho-mqtt driven by the Twisted reactor: its socket among the reactor's readers and writers, its keep-alive
on a reactor timer, and no thread of its own.

paho offers exactly this seam for outside event loops: it says when its socket opens and closes and when it
has bytes to write, and ``loop_read``, ``loop_write`` and ``loop_misc`` do the work when the loop says so.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

from paho.mqtt.client import Client
from twisted.internet.interfaces import IReadDescriptor, IWriteDescriptor
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure
from zope.interface import implementer

#: Seconds between paho's ``loop_misc`` calls (keep-alive pings and the broker's silence), while a socket is open.
MISC_INTERVAL: float = 1.0


@implementer(IReadDescriptor, IWriteDescriptor)
class PahoSocket:
    """One socket of a paho client, as the reactor sees it: readable calls ``loop_read``, writable
    ``loop_write``. paho closes the socket itself; it tells us first, and we leave the reactor then."""

    def __init__(self, client: Client, sock: Any) -> None:
        self._client = client
        self._sock = sock
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
        self._client.loop_write()

    def connectionLost(self, reason: Failure) -> None:
        """The reactor gave the socket up (at shutdown): nothing to do, paho owns it."""


class ReactorDriver:
    """Puts ``client``'s socket on ``reactor`` while it is open. Set up once, before the client connects.

    ``written`` is called each time paho has written everything it held (from the reactor's write event, or
    from paho's own calls to ``loop_write``).
    """

    def __init__(self, client: Client, reactor: Any, written: Callable[[], None] = lambda: None) -> None:
        self._client = client
        self._reactor = reactor
        self._all_written = written
        self._socket: PahoSocket | None = None
        self._misc = LoopingCall(client.loop_misc)
        self._misc.clock = reactor
        client.on_socket_open = self._opened
        client.on_socket_close = self._closed
        client.on_socket_register_write = self._want_write
        client.on_socket_unregister_write = self._written

    def _opened(self, client: Client, userdata: Any, sock: Any) -> None:
        self._socket = PahoSocket(client, sock)
        self._reactor.addReader(self._socket)
        if not self._misc.running:
            self._misc.start(MISC_INTERVAL, now=False)

    def _closed(self, client: Client, userdata: Any, sock: Any) -> None:
        if self._socket is not None:
            self._reactor.removeReader(self._socket)
            self._reactor.removeWriter(self._socket)
            self._socket = None
        if self._misc.running:
            self._misc.stop()

    def _want_write(self, client: Client, userdata: Any, sock: Any) -> None:
        if self._socket is not None:
            self._reactor.addWriter(self._socket)

    def _written(self, client: Client, userdata: Any, sock: Any) -> None:
        if self._socket is not None:
            self._reactor.removeWriter(self._socket)
            self._all_written()
