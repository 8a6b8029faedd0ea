"""Writes made while the reactor handles one batch of work leave together at its end, without a reactor turn.

Twisted's ``transport.write`` only buffers: the bytes go out on the reactor's next turn, after another
``epoll_wait`` and a start/stop of write polling. That is one wasted turn per hop of a request and its reply.
So while the library handles a batch (a chunk from a peer and the callbacks it runs, or a drain of messages
sent from other threads), each link's writes are held and joined; at the end of the batch each link gets one
write, straight to its socket when Twisted has nothing queued for it, else (or for what the socket did not
take) through ``transport.write`` as usual. Order is kept: the socket is written directly only when Twisted's
own buffer is empty, and everything after a partial send goes through that buffer.
"""

from __future__ import annotations

import socket
from typing import Any, Protocol

from twisted.internet import tcp
from twisted.logger import Logger

_log = Logger(namespace="leads_twisted.write_batch")


class HeldWrites(Protocol):
    """A link whose writes a batch holds until its end."""

    def _flush_held(self) -> None:
        """Write what was held, now."""


class WriteBatch:
    """Counts the batches under way in the reactor thread and flushes held writes when the outermost ends.

    Use it from the reactor thread only: ``begin()``, then ``end()`` in a ``finally``.
    """

    def __init__(self) -> None:
        self._depth = 0
        self._held: list[HeldWrites] = []

    @property
    def open(self) -> bool:
        """True while a batch is under way: writes should be held."""
        return self._depth > 0

    def hold(self, link: HeldWrites) -> None:
        """``link`` holds writes: flush it when the batch ends (call once per batch)."""
        self._held.append(link)

    def begin(self) -> None:
        self._depth += 1

    def end(self) -> None:
        self._depth -= 1
        if self._depth or not self._held:
            return
        held, self._held = self._held, []
        for link in held:
            try:
                link._flush_held()
            except Exception:
                _log.failure("writing out held messages failed")


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
