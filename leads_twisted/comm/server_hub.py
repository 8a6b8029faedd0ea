"""The server's hub: the links accepted on one or more listening endpoints, reported through one ``Callback``."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import sys
from collections.abc import Callable, Sequence
from threading import get_ident
from typing import Any, Unpack

from twisted.internet.defer import Deferred, DeferredList, FirstError, maybeDeferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.interfaces import IAddress, IListeningPort, IProtocolFactory, IStreamServerEndpoint
from twisted.logger import Logger

from leads_twisted.comm.callback import Callback
from leads_twisted.comm.connection import Connection, ConnectionBase
from leads_twisted.comm.endpoints import ServerEndpointLike, server_endpoint
from leads_twisted.comm.framing import DEFAULT_MAX_MESSAGE, DEFAULT_SEPARATOR
from leads_twisted.comm.handoff import Handoff
from leads_twisted.comm.hub import Hub, State
from leads_twisted.comm.link_policy import LinkOptions
from leads_twisted.comm.log_guard import escape
from leads_twisted.comm.memory_budget import DEFAULT_MAX_MEMORY, MemoryBudget, check_max_memory
from leads_twisted.comm.protocol import LeadsServerFactory
from leads_twisted.comm.reactor_types import IHubReactor
from leads_twisted.comm.tls import TLSOptions
from leads_twisted.comm.write_batch import WriteBatch

_log = Logger(namespace="leads_twisted.server")

#: Pending connections the kernel may hold for us (it caps this at net.core.somaxconn).
DEFAULT_BACKLOG: int = 4096


class ServerHub(Hub):
    """Listens on a port (all interfaces by default, as LEADS does) and keeps every connection it accepts.

    A hub: use it in the reactor thread (``start_in_reactor``, ``close_in_reactor``), as the daemon does;
    ``Server`` is the same with the thread facade on top.
    """

    def __init__(
        self,
        port: int = 16900,
        callback: Callback | None = None,
        separator: bytes = DEFAULT_SEPARATOR,
        max_message: int = DEFAULT_MAX_MESSAGE,
        *,
        interface: str = "",
        backlog: int = DEFAULT_BACKLOG,
        endpoint: ServerEndpointLike | Sequence[ServerEndpointLike] | None = None,
        max_connections: int | None = None,
        tls: TLSOptions | None = None,
        allow: Sequence[str] | None = None,
        max_memory: int | None = DEFAULT_MAX_MEMORY,
        slow_callback: float | None = None,
        reactor: IHubReactor | None = None,
        handoff: Handoff | None = None,
        write_batch: WriteBatch | None = None,
        **link_options: Unpack[LinkOptions],
    ) -> None:
        super().__init__(
            port,
            callback,
            separator,
            max_message,
            reactor=reactor,
            handoff=handoff,
            write_batch=write_batch,
            slow_callback=slow_callback,
            **link_options,
        )
        if max_connections is not None and (not isinstance(max_connections, int) or max_connections < 1):
            raise ValueError(f"max_connections must be a positive number or None, not {max_connections!r}")
        self._listen = Listen(interface, backlog, endpoint, max_connections, tls, parse_allow(allow))
        budget = check_max_memory(max_memory)
        self.memory_budget = MemoryBudget(budget) if budget is not None else None
        self.refused_connections: int = 0
        self._connections: dict[Connection, None] = {}
        #: Links taken out of the count by ``remove_connection``: still closed with the server.
        self._removed: dict[Connection, None] = {}
        self._listening: list[IListeningPort] = []
        self._listening_stopped: bool = False

    def describe_target(self) -> str:
        """Where this server listens, for messages."""
        if self._listen.endpoint is None:
            return f"{self._listen.interface or 'all interfaces'} port {self._port}"
        return f"endpoint {self._listen.endpoint!r}"

    def num_connections(self) -> int:
        """How many connections are open now."""
        return len(self._connections)

    def remove_connection(self, connection: Connection) -> None:
        """Stop counting ``connection`` and leave it out of broadcasts (LEADS's meaning), from any thread.

        The link stays open: its messages still arrive, and it closes by itself, by ``connection.close()`` or
        with the server. A connection the server does not count is ignored.
        """
        if connection in self._connections:
            self._removed[connection] = None
            self._connections.pop(connection, None)

    def connections(self) -> list[Connection]:
        """The open connections, oldest first (a snapshot)."""
        return list(self._connections)

    def broadcast(self, msg: bytes, exclude: ConnectionBase | None = None) -> None:
        """Send ``msg`` to every connected client but ``exclude`` (none by default), from any thread; each
        thread's messages keep their order.

        Raises ``ValueError`` if ``msg`` contains the separator. Before start or after close it sends nothing.
        """
        self._encoder.check(msg)
        if get_ident() == self._reactor_thread:  # set once begun, in the reactor thread; before, nothing is sent
            self._broadcast_now([msg], exclude)
        elif self._state is State.RUNNING:
            self._handoff.put(self if exclude is None else _BroadcastExcept(self._broadcast_now, exclude), msg)

    # Reactor thread from here on.

    def write_messages(self, messages: list[bytes]) -> None:
        self._broadcast_now(messages, None)

    def _broadcast_now(self, messages: list[bytes], exclude: ConnectionBase | None) -> None:
        """Write messages to every link but ``exclude``: framed once, the same bytes for each Twisted link."""
        data = None
        count = len(messages)
        for connection in list(self._connections):
            if connection is exclude:
                continue
            if connection.takes_framed:
                if data is None:
                    data = self._encoder.encode_all(messages)
                connection.write_framed(data, count)
            else:
                connection.write_messages(messages)

    def _endpoints(self) -> list[IStreamServerEndpoint]:
        """The endpoints to listen on: the port by default, else each one given (descriptions parsed)."""
        given = self._listen.endpoint
        if given is None:
            return [TCP4ServerEndpoint(self.reactor, self._port, self._listen.backlog, self._listen.interface)]
        if isinstance(given, str) or not isinstance(given, Sequence):
            given = [given]
        return [server_endpoint(self.reactor, e) if isinstance(e, str) else e for e in given]

    def _factory(self) -> IProtocolFactory:
        """Our factory; with ``tls``, wrapped in TLS here so every endpoint, given or default, gets it."""
        factory: IProtocolFactory = LeadsServerFactory(self)
        if self._listen.tls is not None:
            from twisted.protocols.tls import TLSMemoryBIOFactory

            factory = TLSMemoryBIOFactory(self._listen.tls.server_options(), False, factory)
        return factory

    def _start_in_reactor(self) -> Deferred[Any]:
        factory = self._factory()
        attempts = [maybeDeferred(endpoint.listen, factory) for endpoint in self._endpoints()]
        listening: Deferred[Any] = DeferredList(attempts, fireOnOneErrback=True, consumeErrors=True)
        listening.addCallbacks(self._now_listening, self._listening_failed, errbackArgs=(attempts,))
        return listening

    def _now_listening(self, results: list[tuple[bool, IListeningPort]]) -> None:
        ports = [port for _, port in results]
        if self._state in (State.CLOSING, State.CLOSED):
            # Closed while the endpoints were still opening: they must not stay open behind a closed server.
            for port in ports:
                port.stopListening()
            return
        self._listening = ports
        host = self._listening[0].getHost()
        if hasattr(host, "port"):
            self._port = host.port
        self._warn_if_open_to_strangers()
        self._invoke(self._callback.on_initialize, self)

    def _listening_failed(self, failure: Any, attempts: list[Deferred[Any]]) -> Any:
        """One endpoint failed: stop the ones that succeeded and report the first failure."""
        for attempt in attempts:
            attempt.addCallback(lambda port: port.stopListening()).addErrback(lambda _: None)
        return failure.value.subFailure if isinstance(failure.value, FirstError) else failure

    def listening_ports(self) -> list[IListeningPort]:
        """The Twisted listening ports, one per endpoint, once the server listens."""
        return list(self._listening)

    def _shut_down(self) -> None:
        for port in self._listening:
            _stop_accepting(port)
        for connection in [*self._connections, *self._removed]:
            connection.close_now()
        stopping = [maybeDeferred(port.stopListening) for port in self._listening]
        DeferredList(stopping, consumeErrors=True).addBoth(self._stopped_listening)

    def _stopped_listening(self, _: object) -> None:
        self._listening_stopped = True
        self._finish_if_done()

    def _finish_if_done(self) -> None:
        if self._state is State.CLOSING and self._listening_stopped and not self._connections:
            self._finish()

    def _warn_if_open_to_strangers(self) -> None:
        """Say once, at start, if anyone who can reach a port beyond loopback may send to every client."""
        exposed = [
            describe_listening(port)
            for port in self._listening
            if not _loopback_only(port.getHost()) and not (self._listen.tls is not None or _speaks_tls(port))
        ]
        if not exposed:
            return
        allow = self._listen.allow
        limited = f" (--allow lets only {', '.join(map(str, allow))} in)" if allow else ""
        _log.warn(
            "listening on {where} without TLS{limited}: anyone who can reach it can send messages that every "
            "client acts on; require client certificates (tls= with ca_certificate, or --tls-certificate, "
            "--tls-key and --tls-ca), restrict peers with allow= / --allow CIDR, or listen on loopback only",
            where=", ".join(exposed),
            limited=limited,
        )

    def admission(self, address: IAddress | None) -> str | None:
        """Why a new link may not join, or None if it may: ``"allow"`` for a peer outside ``allow``,
        ``"closing"`` once closed, or ``"max_connections"`` when full. One that comes while the server closes
        joins and is closed at once, gracefully: what its peer sent before it heard ``disconnect`` is still
        read and delivered, as on every other link (a client reconnecting to a stopping server loses nothing).

        Links still in their TLS handshake take at most half of ``max_connections``: past that, the oldest of
        them is dropped to make room, so silent peers cannot keep real clients out.
        """
        allow = self._listen.allow
        if allow is not None and not _allowed(address, allow):
            self.refused_connections += 1
            if self._observers.active:
                self._observers.refused(self, address, "allow")
            self._warnings.warn("allow", "refused {peer}: not in allow", peer=describe_address(address))
            return "allow"
        if self._state is State.CLOSED:
            if self._observers.active:
                self._observers.refused(self, address, "closing")
            return "closing"
        limit = self._listen.max_connections
        if limit is None:
            return None
        opening = self._opening
        if opening and len(opening) >= max(1, limit // 2):
            self._drop_oldest_handshake()
        if len(self._connections) + len(opening) >= limit:
            self.refused_connections += 1
            if self._observers.active:
                self._observers.refused(self, address, "max_connections")
            self._warnings.warn(
                "max_connections",
                "refused {peer}: already {limit} connections (max_connections)",
                peer=describe_address(address),
                limit=limit,
            )
            return "max_connections"
        return None

    def _drop_oldest_handshake(self) -> None:
        """Unfinished TLS handshakes fill their half of ``max_connections``: drop the oldest, counted as refused
        (reason ``"handshakes"``)."""
        oldest = min(self._opening, key=lambda protocol: protocol.opened_at)
        oldest.failure_note = "dropped to make room: too many unfinished TLS handshakes (max_connections)"
        self._opening.discard(oldest)
        self.refused_connections += 1
        transport: Any = oldest.transport
        if self._observers.active:
            self._observers.refused(self, transport.getPeer(), "handshakes")
        transport.abortConnection()

    def _links(self) -> list[ConnectionBase]:
        return list(self._connections)

    def _add_connection(self, connection: Connection) -> None:
        self._connections[connection] = None

    def _remove_connection(self, connection: Connection) -> None:
        self._connections.pop(connection, None)
        self._removed.pop(connection, None)

    def _after_connection_lost(self, connection: Connection) -> None:
        self._finish_if_done()


def _stop_accepting(port: IListeningPort) -> None:
    """Take every connection waiting in a listening port's backlog, then refuse any more at once.

    Peers the kernel has already connected wait in the backlog, and are sending; closing the listening socket
    would reset them, and what they sent would be lost. So they are taken now (each joins, and is closed
    gracefully like every link), and the socket stops listening in the same step: a peer that connects after
    it is refused at once instead of being accepted by the kernel and reset a moment later. Twisted closes the
    socket itself on its next turn (``stopListening``).
    """
    accept = getattr(port, "doRead", None)
    listening = getattr(port, "socket", None)  # a tcp.Port's (or unix.Port's) listening socket
    if accept is None or not isinstance(listening, socket.socket) or not getattr(port, "connected", False):
        return
    for _ in range(8):  # each call accepts up to the port's batch size (100 and more), until the backlog is empty
        accept()
    with contextlib.suppress(OSError):
        listening.shutdown(socket.SHUT_RD)  # Linux: stops listening; new connections are refused


class Listen:
    """Where and whom a server listens for: read when it starts and when a peer connects, never per message."""

    __slots__ = ("allow", "backlog", "endpoint", "interface", "max_connections", "tls")

    def __init__(
        self,
        interface: str,
        backlog: int,
        endpoint: ServerEndpointLike | Sequence[ServerEndpointLike] | None,
        max_connections: int | None,
        tls: TLSOptions | None,
        allow: tuple[IPNetwork, ...] | None,
    ) -> None:
        self.interface = interface
        self.backlog = backlog
        self.endpoint = endpoint
        self.max_connections = max_connections
        self.tls = tls
        self.allow = allow


class _BroadcastExcept:
    """The outbox target of a broadcast from another thread that leaves one connection out."""

    def __init__(
        self, broadcast: Callable[[list[bytes], ConnectionBase | None], None], exclude: ConnectionBase
    ) -> None:
        self._broadcast = broadcast
        self._exclude = exclude

    def write_messages(self, messages: list[bytes]) -> None:
        self._broadcast(messages, self._exclude)

    def close_now(self) -> None:
        """Never queued with ``CLOSE``; present for the outbox's target protocol."""


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allow(allow: Sequence[str] | None) -> tuple[IPNetwork, ...] | None:
    """The networks of ``allow`` (CIDR texts such as ``10.0.0.0/8`` or ``::1``), or None for everyone.

    Raises ``ValueError`` naming the text that is not a network.
    """
    if allow is None:
        return None
    if isinstance(allow, str):
        allow = [allow]
    networks = []
    for text in allow:
        try:
            networks.append(ipaddress.ip_network(str(text).strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"allow: {text!r} is not a network; write an address or CIDR such as 192.168.1.0/24 or ::1"
            ) from None
    if not networks:
        raise ValueError("allow is empty, so nobody could connect; leave it out to let everyone in")
    return tuple(networks)


def _allowed(address: IAddress | None, networks: tuple[IPNetwork, ...]) -> bool:
    """Whether a peer's address is in one of ``networks``; a peer with no IP address (a unix socket) is,
    since the socket file's permissions decide who reaches it."""
    host = getattr(address, "host", None)
    if host is None:
        return True
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def _loopback_only(address: IAddress) -> bool:
    """Whether a listening address is reachable from this machine only (loopback, or a unix socket)."""
    host = getattr(address, "host", None)
    if host is None:
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _speaks_tls(port: IListeningPort) -> bool:
    """Whether a listening port wraps its links in TLS (an ``ssl:`` endpoint description)."""
    tls = sys.modules.get("twisted.protocols.tls")
    return tls is not None and isinstance(getattr(port, "factory", None), tls.TLSMemoryBIOFactory)


def describe_listening(port: IListeningPort) -> str:
    """``host:port`` of a listening port, or its unix socket path."""
    return describe_address(port.getHost())


def describe_address(address: IAddress | None) -> str:
    """``host:port`` (``[host]:port`` for IPv6) or the unix socket name of an address, safe to log."""
    host, port = getattr(address, "host", None), getattr(address, "port", None)
    if host is not None and port is not None:
        return f"[{escape(host)}]:{port}" if ":" in host else f"{escape(host)}:{port}"
    name = getattr(address, "name", None)
    if name:
        return escape(name.decode(errors="backslashreplace") if isinstance(name, bytes) else name)
    return type(address).__name__
