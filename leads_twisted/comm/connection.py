"""The handle of one link, given to callbacks: send to that peer alone, or close it, from any thread."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from leads_twisted.comm.framing import DISCONNECT, Encoder
from leads_twisted.comm.outbox import CLOSE

if TYPE_CHECKING:
    from twisted.internet.interfaces import ITransport

    from leads_twisted.comm.service import Service

_log = Logger(namespace="leads_twisted.connection")

#: How long a closing connection may take to flush before it is cut.
CLOSE_GRACE_SECONDS: float = 2.0


def _describe_peer(peer: object, transport: object) -> str:
    """A name for a peer without host and port: a unix socket path, a serial device, the transport's kind."""
    name = getattr(peer, "name", None)
    if name:
        return name.decode(errors="replace") if isinstance(name, bytes) else str(name)
    return type(peer if peer is not None else transport).__name__


class ConnectionBase(ABC):
    """One link between a service and a peer.

    The contract a transport must meet: ``send`` frames and delivers one message, in order, from any thread;
    ``close`` tells the peer ``disconnect`` after everything sent before and then ends the link; ``closed``
    says whether the link can still send. The service reports the link through ``on_connect`` and
    ``on_disconnect``.
    """

    def __init__(self, separator: bytes = b";") -> None:
        self._encoder: Encoder = Encoder(separator)

    @property
    def separator(self) -> bytes:
        """The bytes that end every message on this link."""
        return self._encoder.separator

    @abstractmethod
    def closed(self) -> bool:
        """True once the link is closing or closed: ``send`` would raise ``IOError``."""

    @abstractmethod
    def send(self, msg: bytes) -> None:
        """Send one message to this peer alone.

        Raises ``ValueError`` if ``msg`` contains the separator and ``IOError`` if the link is closed.
        """

    @abstractmethod
    def close(self) -> None:
        """Tell the peer ``disconnect``, then end the link; calling it again does nothing."""

    def disconnect(self) -> None:
        """Ask the peer to close, without closing this side; nothing happens if the link is already closed."""
        try:
            self.send(DISCONNECT)
        except OSError:
            return


class Connection(ConnectionBase):
    """A link carried by a Twisted transport; ``str()`` gives ``"host:port"`` of the peer."""

    def __init__(self, service: Service, transport: ITransport, separator: bytes = b";") -> None:
        super().__init__(separator)
        self._service: Service = service
        self._in_reactor_thread = service._in_reactor_thread
        self._transport: Any = transport
        self._closing: bool = False
        self._lost: bool = False
        self._cut_timer: Any = None
        peer = transport.getPeer() if hasattr(transport, "getPeer") else None
        host, port = getattr(peer, "host", None), getattr(peer, "port", None)
        self._address: tuple[str, int] | None = (host, port) if host is not None and port is not None else None
        self._description: str = f"{host}:{port}" if self._address is not None else _describe_peer(peer, transport)

    def __str__(self) -> str:
        return self._description

    def __repr__(self) -> str:
        return f"<Connection {self._description}{' closed' if self.closed() else ''}>"

    @property
    def address(self) -> tuple[str, int] | None:
        """``(host, port)`` of the peer, or ``None`` for a link that has no such address (a unix socket)."""
        return self._address

    @property
    def service(self) -> Service:
        """The server or client this link belongs to."""
        return self._service

    def closed(self) -> bool:
        return self._closing or self._lost

    def send(self, msg: bytes) -> None:
        self._encoder.check(msg)
        if self._closing or self._lost:
            raise OSError(f"the connection to {self._description} is closed")
        if self._in_reactor_thread():
            self._transport.write(msg + self._encoder.separator)
        else:
            self._service._outbox.put(self, msg)

    def close(self) -> None:
        if self._closing or self._lost:
            return
        if self._in_reactor_thread():
            self._close_now()
        else:
            self._service._outbox.put(self, CLOSE)

    # The reactor-thread side, used by the service and the outbox.

    def _write_messages(self, messages: list[bytes]) -> None:
        if not (self._closing or self._lost):
            self._transport.write(self._encoder.encode_all(messages))

    def _write_encoded(self, data: bytes) -> None:
        if not (self._closing or self._lost):
            self._transport.write(data)

    def _close_now(self) -> None:
        """Send ``disconnect``, flush, and end the link; cut it if the peer does not take the bytes in time."""
        if self._closing or self._lost:
            return
        self._closing = True
        transport = self._transport
        transport.write(DISCONNECT + self._encoder.separator)
        if getattr(transport, "producer", None) is not None:
            transport.unregisterProducer()
        transport.loseConnection()
        self._cut_timer = self._service._reactor.callLater(CLOSE_GRACE_SECONDS, self._cut)

    def _cut(self) -> None:
        self._cut_timer = None
        _log.warn("{connection} did not close within {grace} s; cutting it", connection=self, grace=CLOSE_GRACE_SECONDS)
        self._transport.abortConnection()

    def _mark_lost(self) -> None:
        self._lost = True
        if self._cut_timer is not None:
            self._cut_timer.cancel()
            self._cut_timer = None
