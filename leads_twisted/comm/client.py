"""A client for plain Python programs: ``ClientHub`` with the thread facade, and ``leads.comm``'s functions.

By default a client lives for one connection, as in LEADS. With ``reconnect=True`` it comes back by itself
after a lost link, and with ``queue_while_disconnected`` set it holds what is sent meanwhile and delivers it, in
order, on reconnect (see ``ClientHub``).
"""

from __future__ import annotations

import sys
from typing import Any, Unpack

from leads_twisted.comm.callback import Callback
from leads_twisted.comm.client_hub import DEFAULT_CONNECT_TIMEOUT, ClientHub, check_address
from leads_twisted.comm.connection import Connection
from leads_twisted.comm.endpoints import ClientEndpointLike
from leads_twisted.comm.errors import check_options, option_names
from leads_twisted.comm.framing import DEFAULT_MAX_MESSAGE, DEFAULT_SEPARATOR
from leads_twisted.comm.link_policy import Backoff, LinkOptions
from leads_twisted.comm.outbox import DEFAULT_MAX_QUEUED
from leads_twisted.comm.prototype import Entity
from leads_twisted.comm.reactor_thread import ReactorRunner
from leads_twisted.comm.service import Service
from leads_twisted.comm.tls import TLSOptions


class Client(Service, ClientHub):
    """Connects to one server and holds that connection until either side closes it.

    Create it with ``create_client`` and start it with ``start_client``; its methods work from any thread.
    """

    def __init__(
        self,
        port: int = 16900,
        callback: Callback | None = None,
        separator: bytes = DEFAULT_SEPARATOR,
        max_message: int = DEFAULT_MAX_MESSAGE,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        endpoint: ClientEndpointLike | None = None,
        reconnect: bool = False,
        backoff: Backoff | None = None,
        queue_while_disconnected: int = 0,
        tls: TLSOptions | None = None,
        max_queued: int = DEFAULT_MAX_QUEUED,
        runner: ReactorRunner | None = None,
        slow_callback: float | None = None,
        **link_options: Unpack[LinkOptions],
    ) -> None:
        outbox = self._use_runner(runner, max_queued, link_options)
        ClientHub.__init__(
            self,
            port,
            callback,
            separator,
            max_message,
            connect_timeout=connect_timeout,
            endpoint=endpoint,
            reconnect=reconnect,
            backoff=backoff,
            queue_while_disconnected=queue_while_disconnected,
            tls=tls,
            slow_callback=slow_callback,
            handoff=outbox,
            write_batch=self._runner.write_batch,
            **link_options,
        )

    def _start_timeout(self) -> float:
        """The connect timeout, a TLS handshake's time, and a margin for a slow first reactor start."""
        return self._target.connect_timeout + self._policy.handshake_timeout + 5.0

    def start(self, parallel: bool = False, server_address: str = "127.0.0.1") -> Client:
        """Connect to ``server_address`` (a host name or an IP address); see ``Service.start``.

        With ``reconnect=True`` a failed first attempt is reported to ``on_fail`` and retried in the
        background instead of raising.
        """
        return super().start(parallel, check_address(server_address))

    def run(self, server_address: str = "127.0.0.1") -> None:
        """Connect to ``server_address`` and serve in the calling thread until the link ends, as in LEADS."""
        self.start(False, server_address)


def create_client(
    port: int = 16900,
    callback: Callback | None = None,
    separator: bytes = DEFAULT_SEPARATOR,
    max_message: int = DEFAULT_MAX_MESSAGE,
    **options: Any,
) -> Client:
    """A new client for ``port`` (16900 by default), not yet connected; each call gets its own callback.

    Keyword options: ``connect_timeout`` (seconds), ``endpoint`` (a Twisted client endpoint or its
    description), ``reconnect``, ``backoff`` (``Backoff``), ``queue_while_disconnected`` (bytes), ``tls``
    (``TLSOptions``), and the link options: ``framing``, ``max_buffered``, ``slow_policy``, ``idle_timeout``,
    ``heartbeat``, ``handshake_timeout``, ``max_rate``, ``max_queued``, ``close_timeout`` (docs/reliability.md),
    ``direct_writes`` (docs/threading.md);
    and ``slow_callback`` (docs/operations.md).
    A misspelt option raises ``TypeError`` naming the valid ones.
    """
    check_options("create_client", options, option_names(Client))
    return Client(port, callback, separator, max_message, **options)


def start_client(server_address: str, target: Client | None = None, parallel: bool = False) -> Client:
    """Connect ``target`` (a new default client if none) to ``server_address`` and return it: with
    ``parallel=True`` once connected, else when the connection has ended. Raises ``ConnectionRefusedError``
    (or another ``OSError``) if it cannot connect."""
    return (target if target is not None else create_client()).start(parallel, server_address)


# LEADS 0.9 had a module ``leads.comm.client.client`` inside its package ``leads.comm.client``; the same
# import lines find this module under both names.
client = sys.modules[__name__]
sys.modules[f"{__name__}.client"] = client

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "Callback", "Client", "Connection", "Entity", "create_client", "start_client"]
