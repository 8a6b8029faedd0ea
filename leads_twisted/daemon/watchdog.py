"""systemd's watchdog and status line, kept from the reactor thread.

With ``WatchdogSec=`` in the unit, systemd sets ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``) and restarts the
service if ``WATCHDOG=1`` does not come within that time. The ping is sent by the reactor itself, at half the
interval: a callback that holds the reactor stops the pings, and systemd restarts the daemon. ``STATUS=`` is
refreshed every few seconds with the clients and the message rates (``systemctl status`` shows it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

from twisted.application.service import Service as TwistedService
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from leads_twisted.comm import ServerHub
from leads_twisted.daemon.readiness import Notifier
from leads_twisted.daemon.service import describe_address

_log = Logger(namespace="leads_twisted.daemon")

#: Seconds between two refreshes of ``STATUS=``.
STATUS_SECONDS: float = 5.0


def watchdog_interval(environ: Mapping[str, str] = os.environ, pid: int | None = None) -> float | None:
    """Seconds between pings that systemd asked for (half of ``WATCHDOG_USEC``), or None if it asked none.

    ``WATCHDOG_PID``, when set, names the process meant: any other process (a child) does not ping.
    """
    usec = environ.get("WATCHDOG_USEC", "")
    if not usec:
        return None
    meant = environ.get("WATCHDOG_PID", "")
    if meant and meant != str(pid if pid is not None else os.getpid()):
        return None
    try:
        interval = int(usec) / 2_000_000
    except ValueError:
        interval = 0.0
    if not interval > 0:
        _log.warn("WATCHDOG_USEC={usec!r} is not a positive number of microseconds; no watchdog pings", usec=usec)
        return None
    return interval


class Watchdog(TwistedService):
    """Sends ``WATCHDOG=1`` every ``interval`` seconds from the reactor, from the start until the end."""

    def __init__(self, notifier: Notifier, clock: IReactorTime, interval: float) -> None:
        self._notifier = notifier
        self.interval = interval
        self._ping = LoopingCall(notifier.notify, "WATCHDOG=1")
        self._ping.clock = clock

    def startService(self) -> None:
        super().startService()
        _log.info("systemd watchdog: pinging every {interval:.1f} s", interval=self.interval)
        self._ping.start(self.interval, now=False)

    def stopService(self) -> None:
        super().stopService()
        if self._ping.running:
            self._ping.stop()


def status_line(where: str, mode: str, clients: int, rate_in: float, rate_out: float) -> str:
    """``relay on [::]:16900: 12 clients, 850 msg/s in, 9,400 msg/s out``."""
    noun = "client" if clients == 1 else "clients"
    return f"{mode} on {where}: {clients:,} {noun}, {rate_in:,.0f} msg/s in, {rate_out:,.0f} msg/s out"


class StatusRefresh(TwistedService):
    """Sends ``STATUS=`` every ``STATUS_SECONDS`` with the clients and the rates since the last one."""

    def __init__(
        self,
        server: ServerHub,
        notifier: Notifier,
        clock: IReactorTime,
        mode: str,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._server = server
        self._notifier = notifier
        self._mode = mode
        self._now = now
        self._last: tuple[float, int, int] | None = None
        self._refresh = LoopingCall(self.refresh)
        self._refresh.clock = clock

    def startService(self) -> None:
        super().startService()
        stats = self._server.stats()  # counting begins here, if nothing began it before
        self._last = (self._now(), stats.messages_in, stats.messages_out)
        self._refresh.start(STATUS_SECONDS, now=False)

    def stopService(self) -> None:
        super().stopService()
        if self._refresh.running:
            self._refresh.stop()

    def refresh(self) -> None:
        """Send the status line now (the first one has no rates yet: it says 0)."""
        stats = self._server.stats()
        now = self._now()
        rate_in = rate_out = 0.0
        if self._last is not None:
            then, sent_in, sent_out = self._last
            elapsed = max(now - then, 1e-9)
            rate_in = (stats.messages_in - sent_in) / elapsed
            rate_out = (stats.messages_out - sent_out) / elapsed
        self._last = (now, stats.messages_in, stats.messages_out)
        where = ", ".join(describe_address(port.getHost()) for port in self._server.listening_ports())
        self._notifier.notify(f"STATUS={status_line(where, self._mode, stats.connections, rate_in, rate_out)}")
