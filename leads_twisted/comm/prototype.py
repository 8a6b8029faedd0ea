"""The names of ``leads.comm.prototype`` (LEADS 0.9), so that imports from it port by changing the package.

``Entity`` was LEADS's service with a callback; here every ``Service`` has one, so the two are one class.
"""

from __future__ import annotations

import socket

from leads_twisted.comm.callback import Callback, CallbackChain
from leads_twisted.comm.connection import Connection, ConnectionBase
from leads_twisted.comm.service import Service

#: LEADS 0.9's base of ``Server`` and ``Client``: a service reporting through a ``Callback``.
Entity = Service


def my_ip_addresses() -> list[str]:
    """This machine's IPv4 addresses as its host name resolves, without loopback ones; ``[]`` if the name
    does not resolve. Blocking (it may ask DNS): not for a callback."""
    try:
        addresses = socket.gethostbyname_ex(socket.gethostname())[2]
    except (socket.gaierror, socket.herror):
        return []
    return [address for address in addresses if not address.startswith("127.")]


__all__ = ["Callback", "CallbackChain", "Connection", "ConnectionBase", "Entity", "Service", "my_ip_addresses"]
