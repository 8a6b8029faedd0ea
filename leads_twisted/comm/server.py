"""A server for plain Python programs: ``ServerHub`` with the thread facade, and ``leads.comm``'s functions."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, Unpack

from leads_twisted.comm.callback import Callback
from leads_twisted.comm.connection import Connection
from leads_twisted.comm.endpoints import ServerEndpointLike
from leads_twisted.comm.errors import check_options, option_names
from leads_twisted.comm.framing import DEFAULT_MAX_MESSAGE, DEFAULT_SEPARATOR
from leads_twisted.comm.link_policy import LinkOptions
from leads_twisted.comm.memory_budget import DEFAULT_MAX_MEMORY
from leads_twisted.comm.outbox import DEFAULT_MAX_QUEUED
from leads_twisted.comm.prototype import Entity
from leads_twisted.comm.reactor_thread import ReactorRunner
from leads_twisted.comm.server_hub import DEFAULT_BACKLOG, ServerHub
from leads_twisted.comm.service import Service
from leads_twisted.comm.tls import TLSOptions


class Server(Service, ServerHub):
    """Listens on a port (all interfaces by default, as LEADS does) and keeps every connection it accepts.

    Create it with ``create_server`` and start it with ``start_server``; its methods work from any thread.
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
        max_queued: int = DEFAULT_MAX_QUEUED,
        runner: ReactorRunner | None = None,
        slow_callback: float | None = None,
        **link_options: Unpack[LinkOptions],
    ) -> None:
        outbox = self._use_runner(runner, max_queued, link_options)
        ServerHub.__init__(
            self,
            port,
            callback,
            separator,
            max_message,
            interface=interface,
            backlog=backlog,
            endpoint=endpoint,
            max_connections=max_connections,
            tls=tls,
            allow=allow,
            max_memory=max_memory,
            slow_callback=slow_callback,
            handoff=outbox,
            write_batch=self._runner.write_batch,
            **link_options,
        )

    def run(self, max_connection: int | None = None) -> None:
        """Listen and serve in the calling thread until the server closes; ``max_connection`` was LEADS's
        listen backlog, and sets it here if given."""
        if max_connection is not None:
            self._listen.backlog = max_connection
        self.start(False)


def create_server(
    port: int = 16900,
    callback: Callback | None = None,
    separator: bytes = DEFAULT_SEPARATOR,
    max_message: int = DEFAULT_MAX_MESSAGE,
    **options: Any,
) -> Server:
    """A new server for ``port`` (16900 by default), not yet listening; each call gets its own callback.

    Keyword options: ``interface`` (all by default), ``backlog``, ``endpoint`` (a Twisted server endpoint or
    its description, or a list of them, instead of the port), ``max_connections``, ``tls`` (``TLSOptions``),
    ``allow`` (networks peers must come from), ``max_memory`` (bytes held for all peers together), and the link
    options both ends share: ``framing``, ``max_buffered``, ``slow_policy``, ``idle_timeout``, ``heartbeat``,
    ``handshake_timeout``, ``max_rate``, ``max_queued``, ``close_timeout``, ``direct_writes``; and
    ``slow_callback`` (seconds a callback may hold the reactor before a warning is logged; off by default).
    docs/limits.md, docs/security.md, docs/operations.md, docs/reliability.md and docs/threading.md say what
    each does.
    A misspelt option raises ``TypeError`` naming the valid ones.
    """
    check_options("create_server", options, option_names(Server))
    return Server(port, callback, separator, max_message, **options)


def start_server(target: Server | None = None, parallel: bool = False) -> Server:
    """Start ``target`` (a new default server if none) and return it: with ``parallel=True`` once it listens,
    else when it has closed. Raises ``OSError`` if it cannot listen."""
    return (target if target is not None else create_server()).start(parallel)


# LEADS 0.9 had a module ``leads.comm.server.server`` inside its package ``leads.comm.server``; the same
# import lines find this module under both names.
server = sys.modules[__name__]
sys.modules[f"{__name__}.server"] = server

__all__ = ["DEFAULT_BACKLOG", "Callback", "Connection", "Entity", "Server", "create_server", "start_server"]
