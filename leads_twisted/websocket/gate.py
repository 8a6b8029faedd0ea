"""``WebSocketGate``: browsers on a ``Server``, through one more listening endpoint that serves the page too."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.interfaces import IListeningPort, IProtocolFactory
from twisted.python.failure import Failure

from leads_twisted.comm import ServerHub, TLSOptions
from leads_twisted.comm.endpoints import ServerEndpointLike, server_endpoint
from leads_twisted.comm.reactor_thread import ReactorRunner
from leads_twisted.comm.reactor_thread import runner as shared_runner
from leads_twisted.websocket.channel import WebSocketSite
from leads_twisted.websocket.site import STREAM_PATH, make_site

#: How long the blocking ``start`` and ``close`` wait for the reactor.
CALL_TIMEOUT_SECONDS: float = 30.0


class WebSocketGate:
    """Lets browsers (and any WebSocket client) join ``server`` as links, on ``endpoint``.

    ``endpoint`` is a Twisted server endpoint or its description (``tcp:8080``, ``ssl:8443:privateKey=...``,
    ``tcp6:8080:interface=\\:\\:1``), or a list of them. ``origins`` lists the page origins allowed besides
    the endpoint's own (``*`` for any); ``tls`` wraps every endpoint in TLS (wss); ``page=False`` serves the
    stream alone. Each WebSocket message is one message of the server, both ways; the server's callback,
    ``max_message`` (close code 1009), ``max_buffered`` and ``slow_policy`` apply to browsers as to TCP peers.

    Start it once the server has started: ``listen()`` in the reactor thread (Twisted programs), ``start()``
    from any other thread. ``close()`` stops listening; the server's own ``close`` ends the browsers' links.
    """

    def __init__(
        self,
        server: ServerHub,
        endpoint: ServerEndpointLike | Sequence[ServerEndpointLike],
        *,
        origins: Iterable[str] = (),
        tls: TLSOptions | None = None,
        page: bool = True,
        runner: ReactorRunner | None = None,
    ) -> None:
        self._server = server
        self._endpoints = [endpoint] if isinstance(endpoint, str) or not isinstance(endpoint, Sequence) else endpoint
        if not self._endpoints:
            raise ValueError("a WebSocket gate needs at least one endpoint to listen on")
        self._origins = tuple(origins)
        self._tls = tls
        self._page = page
        self._runner = runner if runner is not None else shared_runner
        self._site: WebSocketSite | None = None
        self._ports: list[IListeningPort] = []

    def listen(self) -> Deferred[list[IListeningPort]]:
        """In the reactor thread: listen on every endpoint; fires with the ports, or fails (and listens on
        none) if one cannot listen."""
        reactor = self._server.reactor
        site = self._site = make_site(self._server, self._origins, self._page)
        factory: IProtocolFactory = site
        if self._tls is not None:
            from twisted.protocols.tls import TLSMemoryBIOFactory

            factory = TLSMemoryBIOFactory(self._tls.server_options(), False, site)
        endpoints = [server_endpoint(reactor, e) if isinstance(e, str) else e for e in self._endpoints]
        attempts = [maybeDeferred(endpoint.listen, factory) for endpoint in endpoints]
        listening = DeferredList(attempts, fireOnOneErrback=True, consumeErrors=True)

        def listened(results: list[tuple[bool, IListeningPort]]) -> list[IListeningPort]:
            self._ports = [port for _, port in results]
            return list(self._ports)

        def failed(failure: Failure) -> Failure:
            for attempt in attempts:
                attempt.addCallback(lambda port: port.stopListening()).addErrback(lambda _: None)
            return getattr(failure.value, "subFailure", failure)

        return listening.addCallbacks(listened, failed)

    def stop_listening(self) -> Deferred[None]:
        """In the reactor thread: stop listening and end plain HTTP connections (browsers' links stay up until
        the server closes them)."""
        stopping = [maybeDeferred(port.stopListening) for port in self._ports]
        self._ports = []
        if self._site is not None:
            for channel in self._site.channels():
                if not channel.carries_websocket():
                    channel.loseConnection()  # a page load or a refused upgrade; WebSocket links stay
        return DeferredList(stopping, consumeErrors=True).addCallback(lambda _: None)

    def start(self) -> WebSocketGate:
        """From any thread but the reactor's: listen, and return once listening. Raises ``OSError`` if not."""
        self._runner.call(self.listen, timeout=CALL_TIMEOUT_SECONDS)
        return self

    def close(self) -> None:
        """From any thread but the reactor's: stop listening."""
        self._runner.call(self.stop_listening, timeout=CALL_TIMEOUT_SECONDS)

    def listening_ports(self) -> list[IListeningPort]:
        """The ports listened on, once listening."""
        return list(self._ports)

    def url(self, scheme: str = "http") -> str:
        """The page's address on the first port, for messages and tests (``ws`` gives the stream's)."""
        # A browser reaches only TCP endpoints (tcp:, tcp6:, ssl:): their ports have a host and a port number.
        host = cast("IPv4Address | IPv6Address", self._ports[0].getHost())
        secure = self._tls is not None
        scheme = {"http": "https", "ws": "wss"}.get(scheme, scheme) if secure else scheme
        address = f"[{host.host}]" if ":" in host.host else host.host
        if address in ("0.0.0.0", "[::]"):
            address = "127.0.0.1" if address == "0.0.0.0" else "[::1]"
        path = f"/{STREAM_PATH.decode()}" if scheme in ("ws", "wss") else "/"
        return f"{scheme}://{address}:{host.port}{path}"
