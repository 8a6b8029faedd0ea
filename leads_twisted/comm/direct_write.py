"""The write path of one link: how its bytes reach the socket, from the reactor thread and from sending threads.

Twisted's ``transport.write`` only buffers: the bytes leave on the reactor's next turn. For a plain TCP or
unix link a ``DirectWriter`` may write the socket itself instead: the reactor thread at the end of a write
batch, and a sending thread when nothing is queued before its message (which spares waking the reactor, most
of a quiet message's latency). It is the only way bytes reach a socket from a thread other than the reactor's.

Order is kept: a socket is written directly only while Twisted's own buffer for it is empty, and what the
socket does not take is written by the reactor before anything else. That test reads Twisted's private
buffer attributes (``TWISTED_INTERNALS``); the first link checks once that they exist, and if they do not,
every link writes through ``transport.write`` only, with one log line saying so. The ``direct_writes=False``
link option does the same on purpose.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from typing import Any

from twisted.internet import tcp
from twisted.logger import Logger

_log = Logger(namespace="leads_twisted.direct_write")

#: The attributes of Twisted's ``tcp.Connection`` that tell whether it still buffers bytes and still writes;
#: they are not Twisted's public API, so their presence is checked before they are relied on.
TWISTED_INTERNALS: tuple[str, ...] = (
    "_tempDataLen",
    "dataBuffer",
    "offset",
    "_writeDisconnected",
    "connected",
    "disconnecting",
)

#: Whether the installed Twisted has ``TWISTED_INTERNALS``: None until the first plain socket link asks.
_internals_usable: bool | None = None


def twisted_internals_present(transport: Any) -> bool:
    """True if ``transport`` has every attribute in ``TWISTED_INTERNALS``."""
    return all(hasattr(transport, name) for name in TWISTED_INTERNALS)


def twisted_internals_usable(transport: Any) -> bool:
    """Whether Twisted's buffer of a ``tcp.Connection`` can be read: checked on the first one, once per process;
    if it cannot, one warning says that links fall back to Twisted's own writes."""
    global _internals_usable
    usable = _internals_usable
    if usable is None:
        usable = _internals_usable = twisted_internals_present(transport)
        if not usable:
            missing = [name for name in TWISTED_INTERNALS if not hasattr(transport, name)]
            _log.warn(
                "this Twisted's tcp.Connection lacks {missing}: every link writes through transport.write only "
                "(no direct socket writes; thread sends wake the reactor)",
                missing=", ".join(missing),
            )
    return usable


def direct_socket(transport: Any) -> socket.socket | None:
    """The socket of a plain TCP or unix transport of Twisted's posix reactors, or None for any other
    (TLS, in-memory, serial, Windows' IOCP), which is then only written through ``transport.write``; None too
    if this Twisted lacks ``TWISTED_INTERNALS``."""
    if isinstance(transport, tcp.Connection) and not getattr(transport, "TLS", False):
        handle = transport.getHandle()
        if isinstance(handle, socket.socket) and twisted_internals_usable(transport):
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
    """Write ``data`` now if the socket takes it, else (and whatever it did not take) through the transport;
    reactor thread. ``sock`` is the transport's ``direct_socket``, or None to write through the transport."""
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
    if not isinstance(transport, tcp.Connection) or not twisted_internals_usable(transport):
        return 0
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


class DirectWriter:
    """Every write of one link, and the one way its bytes reach the socket from a thread.

    The reactor thread writes with ``write`` (or ``write_locked`` under ``lock``); a sending thread offers a
    message to ``write_from_thread``. For a link whose socket can be written directly (``direct``), the lock
    keeps the two from interleaving their bytes; sending threads write on a descriptor of their own (see
    ``ThreadDescriptors``), asked of the reactor by the first thread send and given back by ``stop``. What a
    sending thread's write leaves unsent, the reactor writes before anything else. Any other link (TLS,
    serial, in memory; ``direct_writes=False``; a Twisted without ``TWISTED_INTERNALS``) is written by the
    reactor through ``transport.write`` alone, and needs no lock.
    """

    __slots__ = (
        "_asked",
        "_call_from_thread",
        "_socket",
        "_thread_send",
        "_thread_socket",
        "_transport",
        "lock",
        "threads_may_write",
        "unsent_tail",
    )

    def __init__(self, transport: Any, call_from_thread: Callable[[Callable[[], None]], None], direct: bool) -> None:
        """``direct``: whether this link may be written past Twisted's buffer at all (the ``direct_writes``
        option); ``call_from_thread`` runs a function in the reactor thread."""
        sock = direct_socket(transport) if direct else None
        self._transport: Any = transport
        #: Twisted's descriptor of the socket, written by the reactor thread; None: write through the transport.
        self._socket: socket.socket | None = sock
        self._call_from_thread = call_from_thread
        #: Held by whoever writes the socket or changes what waits to be written to it.
        self.lock: Any = threading.RLock() if sock is not None else contextlib.nullcontext()
        #: False while sending threads must queue: no socket to write, no descriptor to spare, or the link ended.
        self.threads_may_write: bool = sock is not None
        #: The sending threads' own descriptor of the socket, once the reactor has made it, and its bound
        #: ``send`` (made once here rather than on every message).
        self._thread_socket: socket.socket | None = None
        self._thread_send: Callable[[bytes], int] | None = None
        #: The reactor has been asked to make ``_thread_socket`` (it is asked once).
        self._asked: bool = False
        #: The part of a message a sending thread wrote that the socket did not take: written before anything else.
        self.unsent_tail: bytes | None = None

    @property
    def direct(self) -> bool:
        """Whether the socket is written directly (else everything goes through ``transport.write``)."""
        return self._socket is not None

    # The reactor thread's side.

    def write(self, data: bytes, at_once: bool) -> None:
        """``write_locked``, taking the lock."""
        with self.lock:
            self.write_locked(data, at_once)

    def write_locked(self, data: bytes, at_once: bool) -> None:
        """Write ``data`` after anything a sending thread left unsent: with ``at_once``, to the socket now if
        Twisted holds nothing for it, and whatever it does not take into Twisted's buffer; else all into the
        buffer, for the reactor's next turn. The caller holds ``lock``."""
        tail = self.unsent_tail
        if tail is not None:
            self.unsent_tail = None
            data = tail + data
        if at_once:
            write_out(self._transport, self._socket, data)
        else:
            self._transport.write(data)

    def make_thread_socket(self) -> None:
        """Give sending threads a descriptor of their own, unless the link has ended or descriptors are short."""
        with self.lock:
            if not self.threads_may_write or self._thread_socket is not None or self._socket is None:
                return
            thread_socket = thread_descriptors.take(self._socket)
            if thread_socket is None:
                self.threads_may_write = False  # every send of this link's threads queues, as on TLS
                return
            self._thread_socket, self._thread_send = thread_socket, thread_socket.send

    def write_unsent_tail(self) -> None:
        """Write what a sending thread left unsent, unless something else has written it first."""
        with self.lock:
            if self.unsent_tail is not None:
                self.write_locked(b"", at_once=False)

    def stop(self) -> None:
        """The link has ended: threads queue from now on (where the link drops their messages), whatever was left
        unsent is forgotten, and the threads' descriptor is closed."""
        with self.lock:
            self.unsent_tail = None
            self.threads_may_write = False
            thread_socket, self._thread_socket, self._thread_send = self._thread_socket, None, None
            if thread_socket is not None:
                thread_descriptors.give_back(thread_socket)

    # A sending thread's side.

    def write_from_thread(self, msg: bytes, frame: Callable[[bytes], bytes]) -> bool:
        """Write ``frame(msg)`` from the calling thread if nothing waits to be written before it; else False, and
        the caller queues it for the reactor. The caller holds ``lock`` and has checked that the link takes
        sends and holds nothing of its own.

        A ``KeyboardInterrupt`` may land at any call here: the socket's answer is kept by the same C call that
        gets it (``list.extend``), so a message cut short by an interrupt still has its rest written after it.
        """
        transport = self._transport
        if (  # ``twisted_holds_nothing`` written out: a call fewer on every thread send (~2% of its work)
            self.unsent_tail is not None
            or transport._tempDataLen
            or len(transport.dataBuffer) != transport.offset
            or not transport.connected
            or transport.disconnecting
            or transport._writeDisconnected
        ):
            return False
        send = self._thread_send
        if send is None:
            if not self._asked:
                self._call_from_thread(self.make_thread_socket)
                self._asked = True  # after the call: asking twice is harmless, never is not
            return False
        data = frame(msg)
        taken: list[int] = []
        try:
            # A plain ``try``, not ``contextlib.suppress``: this runs once per message, and the context manager's
            # object and calls made this write about a third slower.
            try:  # noqa: SIM105
                taken.extend(map(send, (data,)))
            except OSError:
                pass  # full, or broken: the reactor's write finds out which and acts as usual
            sent = taken[0] if taken else 0
            if sent < len(data):
                self.unsent_tail = data[sent:]
                self._call_from_thread(self.write_unsent_tail)
        except BaseException:
            if taken and self.unsent_tail is None and taken[0] < len(data):
                self.unsent_tail = data[taken[0] :]
            if self.unsent_tail is not None:
                self._call_from_thread(self.write_unsent_tail)
            raise
        return True
