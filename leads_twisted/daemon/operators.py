"""What operators see and steer around the relay: versions, ``--check``, the monitor, systemd's watchdog and status.

``tap.py`` declares the options (its ``# --- operators ---`` block); this module puts them to work, so the
tap's ``makeService`` only calls ``with_operator_parts``.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from typing import TypeVar

from twisted.application.service import IService, MultiService
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.logger import Logger
from twisted.python import usage

import leads_twisted
import twisted
from leads_twisted.comm import ServerHub
from leads_twisted.comm.reactor_types import IHubReactor
from leads_twisted.daemon.readiness import Notifier
from leads_twisted.daemon.watchdog import StatusRefresh, Watchdog, watchdog_interval

_log = Logger(namespace="leads_twisted.daemon")

#: ``--slow-callback`` when not given: the longest a callback may hold the reactor, in seconds.
DEFAULT_SLOW_CALLBACK: float = 0.1


def version_line() -> str:
    """``leads-comm 0.1.0 (leads_twisted) on Twisted 24.11.0, Python 3.11.2``."""
    return (
        f"leads-comm {leads_twisted.__version__} (leads_twisted) on Twisted {twisted.__version__}, "
        f"Python {platform.python_version()}"
    )


def log_version() -> None:
    """The first line of the daemon's log: which versions run."""
    _log.info("{version}", version=version_line())


def with_operator_parts(
    comm: IService, server: ServerHub, reactor: IHubReactor, options: usage.Options, notifier: Notifier, mode: str
) -> IService:
    """``comm`` alone, or with the monitor, the watchdog and the status refresh beside it, as asked.

    The watchdog and the status line run when systemd listens (``NOTIFY_SOCKET``; ``WATCHDOG_USEC`` for the
    watchdog); the monitor when ``--monitor`` is given.
    """
    parts: list[IService] = []
    if options["monitor"] is not None:
        from leads_twisted.daemon.monitor import MonitorUnavailable, collectors_in, monitor_service

        endpoint = _monitor_endpoint(reactor, options["monitor"])
        try:
            parts.append(monitor_service(server, reactor, endpoint, options["monitor"], collectors_in(comm)))
        except MonitorUnavailable as error:
            raise SystemExit(f"twistd leads-comm: {error}") from None
    if notifier.enabled:
        interval = watchdog_interval()
        if interval is not None:
            parts.append(Watchdog(notifier, reactor, interval))
        parts.append(StatusRefresh(server, notifier, reactor, mode))
    if not parts:
        return comm
    whole = MultiService()
    whole.setName("leads-comm")
    comm.setServiceParent(whole)
    for part in parts:
        part.setServiceParent(whole)
    return whole


def _monitor_endpoint(reactor: IHubReactor, description: str) -> IStreamServerEndpoint:
    """The monitor's server endpoint; a bare port number means loopback only."""
    from twisted.internet.endpoints import serverFromString

    if description.isdigit():
        description = f"tcp:{description}:interface=127.0.0.1"
    try:
        endpoint: IStreamServerEndpoint = serverFromString(reactor, description)
        return endpoint
    except Exception as error:  # the parser's complaint about the user's text
        raise SystemExit(f"twistd leads-comm: --monitor {description}: {error}") from None


_Options = TypeVar("_Options", bound=usage.Options)


def check(options: _Options, make_service: Callable[[_Options], IService]) -> None:
    """``--check``: build the service as ``twistd`` would, start nothing, print one line, exit 0 (or 1)."""
    make_service(options)
    source = f" from {options['config']}" if options["config"] else ""
    listen = ", ".join(options["endpoint"]) or f"{options['interface'] or '*'}:{options['port']}"
    print(f"twistd leads-comm: configuration{source} is valid: {options['mode']} on {listen}", flush=True)
    raise SystemExit(0)
