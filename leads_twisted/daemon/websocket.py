"""The daemon's ``--websocket``: browsers join the relay through a ``WebSocketGate``, started and stopped with it."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from twisted.application.service import IService, MultiService, Service
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure

from leads_twisted.comm import ServerHub, TLSOptions
from leads_twisted.comm.endpoints import server_endpoint
from leads_twisted.comm.reactor_types import IHubReactor

if TYPE_CHECKING:  # the gate needs twisted[websocket], imported only with --websocket
    from leads_twisted.websocket import WebSocketGate

_log = Logger(namespace="leads_twisted.daemon")


class GateService(Service):
    """Listens for browsers once the relay listens: in ``privilegedStartService`` under twistd (before privileges
    are dropped), else in ``startService`` (twist). On the way down it stops listening first, so the relay's
    close then ends the browsers' links with code 1001."""

    name = "leads-comm-websocket"

    def __init__(self, gate: WebSocketGate, foreground: bool) -> None:
        self.gate = gate
        self._foreground = foreground
        self._failure: Failure | None = None
        self._listen_begun = False

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._listen(logging_started=True)

    def startService(self) -> None:
        super().startService()
        if not self._listen_begun:
            self._listen(logging_started=False)

    def _listen(self, logging_started: bool) -> None:
        self._listen_begun = True
        self.gate.listen().addCallbacks(self._listening, self._cannot_listen)
        if self._failure is None:
            return
        reason = f"cannot listen for browsers: {self._failure.getErrorMessage()}"
        if not logging_started:
            raise SystemExit(f"leads-comm {reason}")
        _log.error("{reason}", reason=reason)
        if self._foreground:
            raise SystemExit(1)
        self._failure.raiseException()

    def _listening(self, _: object) -> None:
        _log.info(
            "browsers: page at {page}, stream at {stream}", page=self.gate.url("http"), stream=self.gate.url("ws")
        )

    def _cannot_listen(self, failure: Failure) -> None:
        self._failure = failure

    def stopService(self) -> Deferred[None]:
        super().stopService()
        return self.gate.stop_listening()


def with_websocket(
    options: usage.Options, comm: IService, server: ServerHub, reactor: IHubReactor, foreground: bool
) -> IService:
    """``comm`` alone without ``--websocket``; else ``comm`` and a ``GateService`` for ``server``, in that order."""
    endpoints: list[str] = options.get("websocket", [])
    if not endpoints:
        return comm
    try:
        from leads_twisted.websocket import WebSocketGate
    except ImportError as error:
        _exit(f"--websocket needs {error.name}: pip install 'leads_twisted[websocket]'")
    for description in endpoints:
        try:
            server_endpoint(reactor, description)
        except Exception as error:  # any parser's complaint about the user's text
            _exit(f"--websocket {description}: {error!r}")
    tls: TLSOptions | None = None
    if options.get("tls-certificate"):
        tls = TLSOptions(options["tls-certificate"], options["tls-key"], options.get("tls-ca"))
    gate = WebSocketGate(server, endpoints, origins=options.get("websocket-origin", []), tls=tls)
    parent = MultiService()
    comm.setServiceParent(parent)
    GateService(gate, foreground).setServiceParent(parent)
    return parent


def _exit(message: str) -> NoReturn:
    raise SystemExit(f"twistd leads-comm: {message}")
