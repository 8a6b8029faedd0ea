"""Is the broker's port answering? Asked without blocking, before paho's own (blocking) connect.

paho opens its connection with blocking calls. Refused or unroutable addresses fail at once, but an address
that drops packets (a dead uplink) would hold the reactor, and with it the vehicle's relay, for paho's whole
connect timeout. The probe asks first through the reactor (name resolution included), so paho only connects to
a port that has just accepted a connection.
"""

from __future__ import annotations

import ipaddress

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.internet.interfaces import IProtocol, IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol

from leads_twisted.comm.reactor_types import IHubReactor


class _Hangup(Protocol):
    """Closes the probe's connection as soon as it is made."""

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.loseConnection()


def probe(reactor: IHubReactor, host: str, port: int, timeout: float) -> Deferred[None]:
    """Fires with None once a TCP connection to ``host:port`` was made (and is being closed), or fails with
    why not (the name unknown, refused, nothing within ``timeout`` seconds). Cancel it to give up.

    An address is used as it is; a name is resolved by the reactor's resolver (Twisted's thread pool)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        endpoint: IStreamClientEndpoint = HostnameEndpoint(reactor, host, port, timeout=timeout)
    else:
        direct = TCP6ClientEndpoint if address.version == 6 else TCP4ClientEndpoint
        endpoint = direct(reactor, host, port, timeout=timeout)
    factory = Factory.forProtocol(_Hangup)
    factory.noisy = False  # no start and stop lines in the log for every attempt
    connecting: Deferred[IProtocol] = endpoint.connect(factory)
    return connecting.addCallback(lambda _: None)
