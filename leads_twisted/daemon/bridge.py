"""The daemon's ``--bridge`` options made into an ``MQTTBridge`` that starts and stops with the server.

The options are read with ``get`` so the command line has no bridge keys unless one is given; a mistake ends
twistd with one line, as every other option does. paho-mqtt is imported only when ``--bridge`` is given, so the
daemon runs without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from twisted.application.service import IService, MultiService, Service
from twisted.internet.defer import Deferred
from twisted.python import usage

from leads_twisted.comm import ServerHub
from leads_twisted.comm.reactor_types import IHubReactor

if TYPE_CHECKING:  # the bridge needs paho-mqtt, imported only with --bridge
    from leads_twisted.bridge import MQTTBridge
    from leads_twisted.bridge.metrics import BridgeCollector

#: The options that mean nothing without ``--bridge``.
BRIDGE_ONLY = ("vehicle", "bridge-topic", "bridge-credentials", "bridge-ca", "bridge-certificate", "bridge-key")


class BridgeService(Service):
    """Starts a bridge once the reactor runs; on stop, says ``offline`` and disconnects before the server closes."""

    name = "leads-comm-bridge"

    def __init__(self, bridge: MQTTBridge) -> None:
        self.bridge = bridge

    def startService(self) -> None:
        super().startService()
        self.bridge.start()

    def stopService(self) -> Deferred[None]:
        super().stopService()
        result: Deferred[None] = self.bridge.stop()
        return result

    def metrics_collector(self) -> BridgeCollector:
        """The bridge's counters for ``--monitor`` (``leads_comm_bridge_*``)."""
        from leads_twisted.bridge.metrics import BridgeCollector

        return BridgeCollector(self.bridge)


def with_bridge(options: usage.Options, service: IService, server: ServerHub, reactor: IHubReactor) -> IService:
    """``service`` alone without ``--bridge``; with it, ``service`` and the bridge, stopped bridge first."""
    if not options.get("bridge"):
        given = [f"--{name}" for name in BRIDGE_ONLY if options.get(name) is not None]
        if given:
            _exit(f"{', '.join(given)} needs --bridge mqtt://HOST[:PORT]")
        return service
    if not options.get("vehicle"):
        _exit("--bridge needs --vehicle NAME: the bridge's MQTT client id, and its topics leads/NAME/...")
    try:
        from leads_twisted.bridge import DEFAULT_QUEUE_BYTES, MQTTBridge, read_credentials, tls_context
    except ImportError:
        _exit("--bridge needs paho-mqtt 2 or later: pip install 'leads_twisted[mqtt]'")
    try:
        username, password = (None, None)
        if options.get("bridge-credentials"):
            username, password = read_credentials(options["bridge-credentials"])
        tls = None
        if options["bridge"].startswith("mqtts:"):
            tls = tls_context(options.get("bridge-ca"), options.get("bridge-certificate"), options.get("bridge-key"))
        elif any(options.get(name) for name in ("bridge-ca", "bridge-certificate", "bridge-key")):
            _exit("--bridge-ca, --bridge-certificate and --bridge-key need an mqtts:// broker address")
        bridge = MQTTBridge(
            server,
            options["bridge"],
            options["vehicle"],
            topic=options.get("bridge-topic"),
            qos=options.get("bridge-qos", 0),
            retain=bool(options.get("bridge-retain")),
            queue_bytes=options.get("bridge-queue", DEFAULT_QUEUE_BYTES),
            username=username,
            password=password,
            tls=tls,
            reactor=reactor,
        )
    except ValueError as error:
        _exit(str(error))
    both = MultiService()
    service.setServiceParent(both)
    BridgeService(bridge).setServiceParent(both)  # children stop last-added first
    return both


def _exit(message: str) -> NoReturn:
    raise SystemExit(f"twistd leads-comm: {message}")
