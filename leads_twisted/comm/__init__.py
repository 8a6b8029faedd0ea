"""The LEADS communication system on Twisted: servers and clients that send, and report all else to a Callback.

Port code from ``leads.comm`` by changing the import: every name of ``leads.comm`` 0.9 and of its ``server``,
``client`` and ``prototype`` modules is here at the same path; docs/porting.md says what differs.
"""

from __future__ import annotations

from leads_twisted.comm import client, prototype, server
from leads_twisted.comm.callback import Callback, CallbackChain
from leads_twisted.comm.client import Client, create_client, start_client
from leads_twisted.comm.client_hub import ClientHub
from leads_twisted.comm.connection import CloseCut, Connection, ConnectionBase, SlowPeer
from leads_twisted.comm.framing import DEFAULT_MAX_MESSAGE, DEFAULT_SEPARATOR, DISCONNECT, MessageTooLong
from leads_twisted.comm.handoff import Handoff, ReactorHandoff
from leads_twisted.comm.hub import Hub
from leads_twisted.comm.link_policy import Backoff
from leads_twisted.comm.observer import LinkEnd, Observer
from leads_twisted.comm.prototype import Entity, my_ip_addresses
from leads_twisted.comm.reactor_thread import ReactorThreadError
from leads_twisted.comm.server import Server, create_server, start_server
from leads_twisted.comm.server_hub import ServerHub
from leads_twisted.comm.service import Service
from leads_twisted.comm.stats import LinkStats, ServiceStats, Stats
from leads_twisted.comm.tls import TLSOptions
from leads_twisted.comm.views import LinkView, ServiceView

__all__ = [
    "DEFAULT_MAX_MESSAGE",
    "DEFAULT_SEPARATOR",
    "DISCONNECT",
    "Backoff",
    "Callback",
    "CallbackChain",
    "Client",
    "ClientHub",
    "CloseCut",
    "Connection",
    "ConnectionBase",
    "Entity",
    "Handoff",
    "Hub",
    "LinkEnd",
    "LinkStats",
    "LinkView",
    "MessageTooLong",
    "Observer",
    "ReactorHandoff",
    "ReactorThreadError",
    "Server",
    "ServerHub",
    "Service",
    "ServiceStats",
    "ServiceView",
    "SlowPeer",
    "Stats",
    "TLSOptions",
    "client",
    "create_client",
    "create_server",
    "my_ip_addresses",
    "prototype",
    "server",
    "start_client",
    "start_server",
]
