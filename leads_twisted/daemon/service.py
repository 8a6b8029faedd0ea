"""The daemon as a Twisted service: listen before privileges are dropped, tell systemd, close cleanly on stop.

It keeps the contract of Twisted's endpoint services, so ``twistd`` and ``twist`` both run it: the listeners
open in ``privilegedStartService`` when the host calls it (twistd, before dropping privileges), else in
``startService`` (twist).
"""

from __future__ import annotations

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress, IReactorCore
from twisted.logger import Logger
from twisted.python.failure import Failure

from leads_twisted.comm import ServerHub
from leads_twisted.daemon.descriptors import raise_descriptor_limit
from leads_twisted.daemon.readiness import Notifier

_log = Logger(namespace="leads_twisted.daemon")


def describe_address(address: IAddress) -> str:
    """``host:port``, ``[host]:port`` or ``unix:path`` for a listening port's address."""
    host, port = getattr(address, "host", None), getattr(address, "port", None)
    if host is not None and port is not None:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    name = getattr(address, "name", None)
    if name is not None:
        return f"unix:{name.decode(errors='replace') if isinstance(name, bytes) else name}"
    return str(address)


class CommService(Service):
    """Runs one ``Server`` inside twistd.

    It listens before the reactor runs, so a port in use ends the start at once with status 1 (the library has
    logged the one-line reason). Once the reactor runs it sends systemd ``READY=1``; on stop, ``STOPPING=1``,
    then every client is told ``disconnect`` and the host waits until all links have ended.

    ``stop_within`` bounds the stop: links still draining that many seconds after it began are cut (see
    ``stopping``). ``foreground`` is twistd's ``--nodaemon``: a daemonizing twistd must see the start fail
    with an exception so that the process waiting for it hears of it (``SystemExit`` would leave it waiting
    forever).
    """

    name = "leads-comm"

    def __init__(
        self,
        server: ServerHub,
        reactor: IReactorCore,
        notifier: Notifier,
        mode: str,
        foreground: bool = True,
        stop_within: float | None = None,
    ) -> None:
        self.server: ServerHub = server
        self._stop_within: float | None = stop_within
        self._reactor = reactor
        self._notifier: Notifier = notifier
        self._mode: str = mode
        self._foreground: bool = foreground
        self._starting: bool = False
        self._failure: Failure | None = None
        self._listen_begun: bool = False

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._listen(logging_started=True)

    def startService(self) -> None:
        super().startService()
        if not self._listen_begun:
            # twist: its log output starts only once the reactor runs, so a failure here must speak itself.
            self._listen(logging_started=False)

    def _listen(self, logging_started: bool) -> None:
        """Open every listener, in this thread: the one that runs the reactor (twistd's or twist's main thread)."""
        self._listen_begun = True
        raise_descriptor_limit(self._reactor)
        self._starting = True
        try:
            self.server.start_in_reactor().addCallbacks(self._listening, self._cannot_listen)
        finally:
            self._starting = False
        if self._failure is not None:
            if not logging_started:
                raise SystemExit(f"leads-comm could not start: {self._failure.getErrorMessage()}")
            if self._foreground:
                raise SystemExit(1)  # the reason is logged in one line; a traceback would only bury it
            self._failure.raiseException()

    def _listening(self, _: object) -> None:
        self._reactor.callWhenRunning(self._announce)

    def _cannot_listen(self, failure: Failure) -> None:
        """The reason is logged by the library; end twistd. Only a late failure gets here with it running."""
        self._failure = failure
        if not self._starting:
            # An endpoint that failed after the start returned: stop without ever having said READY=1, which
            # systemd counts as a failed start.
            self._reactor.callWhenRunning(self._reactor.stop)

    def _announce(self) -> None:
        where = ", ".join(describe_address(port.getHost()) for port in self.server.listening_ports())
        _log.info("leads-comm ({mode}) listening on {where}", mode=self._mode, where=where)
        self._notifier.ready(f"{self._mode} on {where}")

    def stopService(self) -> Deferred[None]:
        super().stopService()
        count = self.server.num_connections()
        self._notifier.stopping(f"telling {count} clients to disconnect")
        _log.info("stopping: telling {count} clients to disconnect", count=count)
        return self.server.close_in_reactor(within=self._stop_within).addCallback(self._closed)

    def _closed(self, _: object) -> None:
        _log.info("every link has ended")
