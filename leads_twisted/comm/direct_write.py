"""Writing a link's socket without Twisted's buffer: when it may be done, and from which descriptor.

Order is kept: a socket is written directly only when Twisted's own buffer for it is empty, and what the
socket does not take goes through ``transport.write``, ahead of anything later.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import tcp


def direct_socket(transport: Any) -> socket.socket | None:
    """The socket of a plain TCP or unix transport of Twisted's posix reactors, or None for any other
    (TLS, in-memory, serial, Windows' IOCP), which is then only written through ``transport.write``."""
    if isinstance(transport, tcp.Connection) and not getattr(transport, "TLS", False):
        handle = transport.getHandle()
        if isinstance(handle, socket.socket):
            return handle
    return None


def descriptor_limit() -> int:
    """The process's soft limit on open descriptors (0 where there is none to read: no direct sends there)."""
    try:
        import resource
    except ImportError:  # not POSIX: there are no tcp.Connection sockets to write directly either
        return 0
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class ThreadDescriptors:
    """Second descriptors of sockets, for threads other than the reactor's to send on; reactor thread only.

    Twisted closes its descriptor of a socket when the link ends, at a moment of its own; a thread writing
    to that number afterwards could hit whatever socket reuses it. A descriptor of our own is made and closed
    by us, under the link's lock. They are few by design: at most a quarter of the process's limit, and none
    once half of it is in use, so that accepting and connecting keep the rest.
    """

    def __init__(self) -> None:
        self.open = 0

    def take(self, sock: socket.socket) -> socket.socket | None:
        """A new descriptor of ``sock``, or None if the budget is spent or descriptors are short."""
        limit = descriptor_limit()
        if self.open >= limit // 4:
            return None
        try:
            duplicate = sock.dup()
        except OSError:
            return None
        if duplicate.fileno() >= limit // 2:
            duplicate.close()
            return None
        self.open += 1
        return duplicate

    def give_back(self, duplicate: socket.socket) -> None:
        """Close a descriptor from ``take``."""
        duplicate.close()
        self.open -= 1


#: The process's budget of sending threads' descriptors.
thread_descriptors = ThreadDescriptors()


def twisted_holds_nothing(transport: Any) -> bool:
    """True when a ``tcp.Connection`` has no bytes buffered and still writes: its socket may be written now."""
    return (
        not transport._tempDataLen
        and len(transport.dataBuffer) == transport.offset
        and transport.connected
        and not transport.disconnecting
        and not transport._writeDisconnected
    )


def write_out(transport: Any, sock: socket.socket | None, data: bytes) -> None:
    """Write ``data`` now if the socket takes it, else (and whatever it did not take) through the transport."""
    if sock is not None and twisted_holds_nothing(transport):
        try:
            sent = sock.send(data)
        except OSError:
            # Full (EAGAIN), or the link broke: Twisted's own write finds out and reports it the usual way.
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    transport.write(data)


def transport_buffered(transport: Any) -> int:
    """Bytes a ``tcp.Connection`` holds unwritten; 0 for a transport whose buffer cannot be read (TLS...)."""
    if not isinstance(transport, tcp.Connection):
        return 0
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
