"""A client: one connection to a server, reported through one ``Callback``."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, clientFromString

from leads_twisted.comm.callback import Callback
from leads_twisted.comm.connection import Connection
from leads_twisted.comm.framing import DEFAULT_MAX_MESSAGE
from leads_twisted.comm.outbox import DEFAULT_MAX_QUEUED
from leads_twisted.comm.protocol import LeadsClientFactory
from leads_twisted.comm.reactor_thread import ReactorRunner
from leads_twisted.comm.service import Service

#: Seconds a connection attempt may take before it fails with ``TimeoutError``.
DEFAULT_CONNECT_TIMEOUT: float = 10.0


class Client(Service):
    """Connects to one server and holds that one connection until either side closes it.

    Create it with ``create_client`` and start it with ``start_client``.
    """

    def __init__(
        self,
        port: int = 16900,
        callback: Callback | None = None,
        separator: bytes = b";",
        max_message: int = DEFAULT_MAX_MESSAGE,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        endpoint: Any = None,
        max_queued: int = DEFAULT_MAX_QUEUED,
        runner: ReactorRunner | None = None,
    ) -> None:
        super().__init__(port, callback, separator, max_message, max_queued, runner)
        self._connect_timeout: float = connect_timeout
        self._endpoint: Any = endpoint
        self._address: str | None = None
        self._connection: Connection | None = None
        self._connecting: Deferred[Any] | None = None

    def describe_target(self) -> str:
        """Where this client connects, for messages."""
        if isinstance(self._endpoint, str):
            return f"endpoint {self._endpoint!r}"
        return f"{self._address}:{self._port}"

    def start(self, parallel: bool = False, server_address: str = "127.0.0.1") -> Client:  # type: ignore[override]
        """Connect to ``server_address`` (a host name or an IP address); see ``Service.start``."""
        if not isinstance(server_address, str) or not server_address:
            raise ValueError(f"the server address must be a host name or an IP address, not {server_address!r}")
        return super().start(parallel, server_address)

    def connection(self) -> Connection | None:
        """The open connection, or ``None`` before it is made and after it is gone."""
        return self._connection

    def send(self, msg: bytes) -> None:
        """Send ``msg`` to the server, from any thread; each thread's messages keep their order.

        Raises ``ValueError`` if ``msg`` contains the separator and ``IOError`` when not connected.
        """
        connection = self._connection
        if connection is None:
            raise OSError(f"the client is not connected to {self.describe_target()}; start it with start_client()")
        connection.send(msg)

    # Reactor thread from here on.

    def _write_messages(self, messages: list[bytes]) -> None:
        if self._connection is not None:
            self._connection._write_messages(messages)

    def _start_in_reactor(self, server_address: str) -> Deferred[Any]:
        self._address = server_address
        self._invoke(self._callback.on_initialize, self)
        endpoint = self._endpoint
        if endpoint is None:
            endpoint = HostnameEndpoint(self._reactor, server_address, self._port, timeout=self._connect_timeout)
        elif isinstance(endpoint, str):
            endpoint = clientFromString(self._reactor, endpoint)
        connecting: Deferred[Any] = endpoint.connect(LeadsClientFactory(self))
        self._connecting = connecting
        connecting.addBoth(self._attempt_settled)
        return connecting

    def _attempt_settled(self, result: Any) -> Any:
        self._connecting = None
        return result

    def _shut_down(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
        elif self._connection is not None:
            self._connection._close_now()
        else:
            self._finish()

    def _add_connection(self, connection: Connection) -> None:
        self._connection = connection

    def _remove_connection(self, connection: Connection) -> None:
        if self._connection is connection:
            self._connection = None

    def _after_connection_lost(self, connection: Connection) -> None:
        self._finish()

    def _peer_is_slow(self, connection: Connection, slow: bool) -> None:
        if slow:
            self._outbox.pause()
        else:
            self._outbox.resume()
