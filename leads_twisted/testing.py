"""Test your own callbacks without a network: a real server and client joined in memory, on a fake clock.

::

    from leads_twisted.testing import connect_in_memory

    def test_my_callbacks():
        net = connect_in_memory(MyServerCallback(), MyClientCallback())
        net.client.send(b"hello")
        net.flush()
        assert net.server_seen.received == [b"hello"]
        net.drop()  # the link breaks without a goodbye, as a pulled cable would
        net.flush()
        assert net.client_seen.kinds()[-1] == "disconnect"

The services are the real hubs of a server and a client (``ServerHub``, ``ClientHub``: what ``Server`` and
``Client`` are without their thread facade), with their protocol, framing and closing; only the world
around them is simulated: a ``MemoryReactorClock`` stands in for the reactor, and Twisted's in-memory
transports (``twisted.test.iosim``) for the sockets. Everything runs in the calling thread, so no test needs
threads or a running reactor, and nothing happens until ``flush()`` moves the bytes or ``advance()`` the
clock. TLS is not simulated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar, Unpack, cast

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ConnectionLost, ConnectionRefusedError
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.test.iosim import FakeTransport, IOPump, connect

from leads_twisted.comm.callback import Callback
from leads_twisted.comm.client_hub import ClientHub
from leads_twisted.comm.connection import Connection, ConnectionBase
from leads_twisted.comm.handoff import Handoff
from leads_twisted.comm.hub import State
from leads_twisted.comm.link_policy import Backoff, LinkOptions
from leads_twisted.comm.reactor_thread import ReactorRunner
from leads_twisted.comm.reactor_types import IHubReactor
from leads_twisted.comm.server_hub import ServerHub
from leads_twisted.comm.views import LinkView, ServiceView

__all__ = ["MemoryNetwork", "MemoryRunner", "Recorder", "connect_in_memory"]

#: How many rounds ``flush`` pumps before it decides the services will never fall quiet.
MAX_FLUSH_ROUNDS: int = 100_000

_LOOPBACK = "127.0.0.1"

#: What a ``Recorder`` notes with each call: None (initialize), a connection (connect, disconnect), a message
#: (receive) or an error (fail).
Detail = ConnectionBase | bytes | Exception | None

_T = TypeVar("_T")


class SharedOptions(LinkOptions, total=False):
    """Options ``connect_in_memory`` gives both services: framing and the link policy."""

    separator: bytes
    max_message: int
    slow_callback: float | None


class ServerOptions(SharedOptions, total=False):
    """A ``ServerHub``'s keyword options that mean something in memory."""

    max_connections: int | None
    allow: Sequence[str] | None
    max_memory: int | None
    handoff: Handoff | None


class ClientOptions(SharedOptions, total=False):
    """A ``ClientHub``'s keyword options that mean something in memory."""

    connect_timeout: float
    reconnect: bool
    backoff: Backoff | None
    queue_while_disconnected: int
    handoff: Handoff | None


class Recorder(Callback):
    """A callback that notes every call it gets, in order, then hands it on to the callback bound behind it.

    Put it in front of your callback with ``service.set_callback(Recorder())``, or use it as the callback.
    ``events`` holds ``(kind, detail)`` pairs: ``("initialize", None)``, ``("connect", connection)``,
    ``("receive", msg)``, ``("fail", error)``, ``("disconnect", connection)``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, Detail]] = []
        #: The connection each received message came from, in the order of ``received``.
        self.senders: list[LinkView] = []
        self._waiters: list[tuple[Callable[[Recorder], bool], Deferred[Recorder]]] = []

    def __repr__(self) -> str:
        return f"<Recorder {self.kinds()}>"

    def kinds(self) -> list[str]:
        """The kind of each call so far, in order."""
        return [kind for kind, _ in self.events]

    def of(self, kind: str) -> list[Detail]:
        """The details of the calls of one kind, in order."""
        return [detail for seen, detail in self.events if seen == kind]

    @property
    def received(self) -> list[bytes]:
        """Every message delivered to ``on_receive``, in order."""
        return cast("list[bytes]", self.of("receive"))

    @property
    def connections(self) -> list[ConnectionBase]:
        """Every connection given to ``on_connect``."""
        return cast("list[ConnectionBase]", self.of("connect"))

    @property
    def disconnections(self) -> list[ConnectionBase]:
        """Every connection given to ``on_disconnect``."""
        return cast("list[ConnectionBase]", self.of("disconnect"))

    @property
    def failures(self) -> list[Exception]:
        """Every error given to ``on_fail``."""
        return cast("list[Exception]", self.of("fail"))

    def when(self, predicate: Callable[[Recorder], bool]) -> Deferred[Recorder]:
        """A Deferred that fires with this recorder once ``predicate(recorder)`` holds, checked after each call.

        It never times out by itself: bound the wait with ``addTimeout`` when it depends on a real network.
        """
        waiter: Deferred[Recorder] = Deferred()
        if predicate(self):
            waiter.callback(self)
        else:
            self._waiters.append((predicate, waiter))
        return waiter

    @contextmanager
    def _noting(self, kind: str, detail: Detail) -> Iterator[None]:
        """Note a call, let the block hand it on, and only then wake the waiters, so that they see the work of
        the callbacks behind this one done. (``self.super`` must be called in the ``on_*`` method itself.)"""
        self.events.append((kind, detail))
        try:
            yield
        finally:
            for entry in list(self._waiters):
                predicate, waiter = entry
                if waiter.called:  # cancelled, or timed out
                    self._waiters.remove(entry)
                elif predicate(self):
                    self._waiters.remove(entry)
                    waiter.callback(self)

    def on_initialize(self, service: ServiceView) -> None:
        with self._noting("initialize", None):
            self.super(service)

    def on_connect(self, service: ServiceView, connection: ConnectionBase) -> None:
        with self._noting("connect", connection):
            self.super(service, connection)

    def on_receive(self, service: ServiceView, msg: bytes) -> None:
        self.senders.append(service.sender())
        with self._noting("receive", msg):
            self.super(service, msg)

    def on_fail(self, service: ServiceView, error: Exception) -> None:
        with self._noting("fail", error):
            self.super(service, error)

    def on_disconnect(self, service: ServiceView, connection: ConnectionBase) -> None:
        with self._noting("disconnect", connection):
            self.super(service, connection)


class MemoryRunner(ReactorRunner):
    """Runs services under test on a ``MemoryReactorClock``, in the calling thread.

    The calling thread counts as the reactor thread, so sends write at once and nothing ever waits; use it
    from one thread only. Pass it as ``runner=`` to a ``Server`` or ``Client`` of your own.
    """

    def __init__(self, reactor: MemoryReactorClock | None = None) -> None:
        super().__init__(reactor if reactor is not None else MemoryReactorClock())

    def in_reactor_thread(self) -> bool:
        return True


class _Transport(FakeTransport):
    """iosim's transport, where shutting the write side ends the link once the bytes before are delivered,
    as a TCP peer that does not half-close sees it."""

    def loseWriteConnection(self) -> None:
        self.loseConnection()


class _Wire:
    """One simulated TCP connection: its pump and the two ends."""

    def __init__(self, pump: IOPump, client_end: _Transport, server_end: _Transport) -> None:
        self.pump = pump
        self.client_end = client_end
        self.server_end = server_end

    def gone(self) -> bool:
        return bool(self.client_end.disconnected and self.server_end.disconnected)

    def cut(self) -> None:
        for end in (self.client_end, self.server_end):
            end.stream.clear()
            end.disconnectReason = ConnectionLost("the link was cut")  # type: ignore[assignment]  # Twisted's hint is narrower than what it takes
            end.disconnecting = True  # from now on, what either side writes is lost


class MemoryNetwork:
    """One server and any number of clients joined by in-memory links, and the clock they share.

    ``server_seen`` and each client's ``Recorder`` note what the callbacks were told; your own callbacks are
    called behind them as usual. Bytes move only in ``flush()``; time passes only in ``advance()``. The
    server listens on its port, as by default; other endpoints (``endpoint=``) and TLS are not simulated.
    """

    def __init__(
        self,
        server_callback: Callback | None = None,
        *,
        port: int = 16900,
        max_queued: int | None = None,
        **server_options: Unpack[ServerOptions],
    ) -> None:
        """``max_queued`` is taken as a ``Server`` takes it, and ignored: the in-memory hubs have no thread
        facade whose queue it would bound."""
        self.clock: MemoryReactorClock = MemoryReactorClock()
        #: A runner on this clock, for a ``Server`` or ``Client`` of your own (``runner=net.runner``).
        self.runner: MemoryRunner = MemoryRunner(self.clock)
        # The in-memory reactor provides every part of a hub's reactor but IReactorThreads: nothing here calls
        # callFromThread, since every call is made in the one thread that counts as the reactor's.
        self._hub_reactor = cast("IHubReactor", self.clock)
        self.server_seen: Recorder = Recorder()
        self.server: ServerHub = ServerHub(port, server_callback, reactor=self._hub_reactor, **server_options)
        self.server.set_callback(self.server_seen)
        self._wires: list[_Wire] = []
        self._clients: list[tuple[ClientHub, Recorder]] = []
        self._next_port = 50000
        _outcome(self.server.start_in_reactor(), "the server")

    @property
    def client(self) -> ClientHub:
        """The first client added."""
        return self._first()[0]

    @property
    def client_seen(self) -> Recorder:
        """What the first client's callback was told."""
        return self._first()[1]

    def add_client(
        self,
        callback: Callback | None = None,
        *,
        max_queued: int | None = None,
        **client_options: Unpack[ClientOptions],
    ) -> tuple[ClientHub, Recorder]:
        """Start one more client of the server with ``callback``, connect it, and return it with its recorder.

        Raises the client's start-up error (``ConnectionRefusedError`` once the server is closed), unless
        ``reconnect=True`` is among the options. ``max_queued`` is taken, and ignored, as by ``MemoryNetwork``.
        """
        seen = Recorder()
        port = self.server.port()
        endpoint = TCP4ClientEndpoint(self.clock, _LOOPBACK, port)
        client = ClientHub(port, callback, reactor=self._hub_reactor, endpoint=endpoint, **client_options)
        client.set_callback(seen)
        self._clients.append((client, seen))
        started = client.start_in_reactor(_LOOPBACK)
        self.flush()
        _outcome(started, "the client")
        return client, seen

    def flush(self) -> None:
        """Deliver everything in flight, both ways, and every link event, until all is quiet.

        Also runs what is due on the clock now (``callLater(0, ...)``). Raises ``RuntimeError`` if the
        services are still busy after ``MAX_FLUSH_ROUNDS`` rounds (callbacks answering each other forever).
        """
        for _ in range(MAX_FLUSH_ROUNDS):
            self.clock.advance(0)
            moved = self._complete_connection_attempts()
            for wire in list(self._wires):
                if wire.pump.pump():
                    moved = True
                elif wire.gone():
                    self._wires.remove(wire)
            if not moved:
                return
        raise RuntimeError(f"the services were still busy after {MAX_FLUSH_ROUNDS} rounds; do callbacks loop?")

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass on the shared clock (timeouts, heartbeats, reconnect delays), then ``flush()``."""
        self.flush()
        self.clock.advance(seconds)
        self.flush()

    def drop(self, client: ClientHub | None = None) -> None:
        """Break the link of ``client`` (the first client by default) without a goodbye, as a pulled cable
        would: the bytes in flight are lost, and both sides hear of it at the next ``flush()``."""
        self._wire_of(client).cut()

    def server_connection(self, client: ClientHub | None = None) -> ConnectionBase:
        """The server's connection to ``client`` (the first client by default), to send to it alone."""
        wire = self._wire_of(client)
        for connection in self.server.connections():
            if isinstance(connection, Connection) and connection.transport is wire.server_end:
                return connection
        raise LookupError("the server has no connection to that client (yet, or any more)")

    def close(self) -> None:
        """Close every client and the server, then ``flush()``: each side sees its links end."""
        for client, _ in self._clients:
            client.close()
        self.server.close()
        self.flush()

    def _first(self) -> tuple[ClientHub, Recorder]:
        if not self._clients:
            raise LookupError("no client yet; add one with add_client()")
        return self._clients[0]

    def _wire_of(self, client: ClientHub | None) -> _Wire:
        client = client if client is not None else self.client
        connection = client.connection()
        transport = connection.transport if connection is not None else None
        for wire in self._wires:
            if wire.client_end is transport and not wire.gone():
                return wire
        raise LookupError(f"{client!r} has no link now")

    def _complete_connection_attempts(self) -> bool:
        """Answer the clients' pending connection attempts: a link if the server listens, else a refusal."""
        reactor = self.clock
        attempted = False
        while reactor.tcpClients:
            host, port, factory, _, _ = reactor.tcpClients.pop(0)
            connector = reactor.connectors.pop(0)
            attempted = True
            listening = [entry[1] for entry in reactor.tcpServers if entry[0] == port]
            if not listening or self.server.state not in (State.STARTING, State.RUNNING):
                refusal = ConnectionRefusedError(string=f"nothing listens on port {port} in memory")
                factory.clientConnectionFailed(connector, Failure(refusal))
                continue
            self._next_port += 1
            client_address = IPv4Address("TCP", _LOOPBACK, self._next_port)
            server_address = IPv4Address("TCP", host, port)
            server_protocol = listening[-1].buildProtocol(client_address)
            refused = server_protocol is None
            if refused:  # the server turned the link away (max_connections): accepted, then closed at once
                server_protocol = Protocol()
            client_protocol = factory.buildProtocol(server_address)
            server_end = _Transport(server_protocol, True, server_address, client_address)
            client_end = _Transport(client_protocol, False, client_address, server_address)
            pump = connect(server_protocol, server_end, client_protocol, client_end, greet=False, clock=reactor)
            self._wires.append(_Wire(pump, client_end, server_end))
            if refused:
                server_end.loseConnection()
        return attempted


def connect_in_memory(
    server_callback: Callback | None = None,
    client_callback: Callback | None = None,
    *,
    server_options: ServerOptions | None = None,
    client_options: ClientOptions | None = None,
    **options: Unpack[SharedOptions],
) -> MemoryNetwork:
    """A started server with ``server_callback`` and one client with ``client_callback``, linked in memory.

    ``options`` go to both services (``separator``, ``max_message``, ``framing``, ``heartbeat``, ...);
    ``server_options`` and ``client_options`` to one side only (``max_connections``, ``reconnect``, ...).
    """
    # A key given both in ``options`` and for one side is the caller's mistake: Python refuses it (TypeError),
    # which is what mypy warns of here, as both may hold any of the shared keys.
    network = MemoryNetwork(server_callback, **options, **(server_options or {}))  # type: ignore[misc]
    network.add_client(client_callback, **options, **(client_options or {}))  # type: ignore[misc]
    return network


def _outcome(started: Deferred[_T], what: str) -> _T:
    """The result a Deferred already has; raises its error, or ``RuntimeError`` if it has none yet."""
    results: list[_T | Failure] = []
    started.addBoth(results.append)
    if not results:
        raise RuntimeError(f"{what} did not start in memory; is a connection attempt left unanswered?")
    result = results[0]
    if isinstance(result, Failure):
        result.raiseException()
    return result
