"""The LEADS communication system on Twisted: servers and clients that send, and report all else to a Callback.

Port code from ``leads.comm`` by changing the import; see the README for what is new.
"""

from __future__ import annotations

from leads_twisted.comm.callback import Callback, CallbackChain
from leads_twisted.comm.client import Client
from leads_twisted.comm.connection import Connection, ConnectionBase, SlowPeer
from leads_twisted.comm.framing import DEFAULT_MAX_MESSAGE, DEFAULT_SEPARATOR, DISCONNECT, MessageTooLong
from leads_twisted.comm.link_policy import Backoff
from leads_twisted.comm.observer import LinkEnd, Observer
from leads_twisted.comm.reactor_thread import ReactorThreadError
from leads_twisted.comm.server import Server
from leads_twisted.comm.service import Service
from leads_twisted.comm.tls import TLSOptions

__all__ = [
    "DEFAULT_MAX_MESSAGE",
    "DEFAULT_SEPARATOR",
    "DISCONNECT",
    "Backoff",
    "Callback",
    "CallbackChain",
    "Client",
    "Connection",
    "ConnectionBase",
    "LinkEnd",
    "MessageTooLong",
    "Observer",
    "ReactorThreadError",
    "Server",
    "Service",
    "SlowPeer",
    "TLSOptions",
    "create_client",
    "create_server",
    "start_client",
    "start_server",
]


def create_server(
    port: int = 16900,
    callback: Callback | None = None,
    separator: bytes = DEFAULT_SEPARATOR,
    max_message: int = DEFAULT_MAX_MESSAGE,
    **options: object,
) -> Server:
    """A new server for ``port`` (16900 by default), not yet listening; each call gets its own callback.

    Keyword options: ``interface`` (all by default), ``backlog``, ``endpoint`` (a Twisted server endpoint or
    its description, or a list of them, instead of the port), ``max_connections``, ``tls`` (``TLSOptions``),
    ``allow`` (networks peers must come from), ``max_memory`` (bytes held for all peers together), and the link
    options both ends share: ``framing``, ``max_buffered``, ``slow_policy``, ``idle_timeout``, ``heartbeat``,
    ``handshake_timeout``, ``max_rate``, ``max_queued``. The README's "Bad peers, slow peers and lost links"
    and docs/security.md say what each does.
    """
    return Server(port, callback, separator, max_message, **options)  # type: ignore[arg-type]


def start_server(target: Server | None = None, parallel: bool = False) -> Server:
    """Start ``target`` (a new default server if none) and return it: with ``parallel=True`` once it listens,
    else when it has closed. Raises ``OSError`` if it cannot listen."""
    return (target if target is not None else create_server()).start(parallel)


def create_client(
    port: int = 16900,
    callback: Callback | None = None,
    separator: bytes = DEFAULT_SEPARATOR,
    max_message: int = DEFAULT_MAX_MESSAGE,
    **options: object,
) -> Client:
    """A new client for ``port`` (16900 by default), not yet connected; each call gets its own callback.

    Keyword options: ``connect_timeout`` (seconds), ``endpoint`` (a Twisted client endpoint or its
    description), ``reconnect``, ``backoff`` (``Backoff``), ``queue_while_disconnected`` (bytes), ``tls``
    (``TLSOptions``), and the link options: ``framing``, ``max_buffered``, ``slow_policy``, ``idle_timeout``,
    ``heartbeat``, ``handshake_timeout``, ``max_rate``, ``max_queued``.
    """
    return Client(port, callback, separator, max_message, **options)  # type: ignore[arg-type]


def start_client(server_address: str, target: Client | None = None, parallel: bool = False) -> Client:
    """Connect ``target`` (a new default client if none) to ``server_address`` and return it: with
    ``parallel=True`` once connected, else when the connection has ended. Raises ``ConnectionRefusedError``
    (or another ``OSError``) if it cannot connect."""
    return (target if target is not None else create_client()).start(parallel, server_address)
