"""``--monitor ENDPOINT``: HTTP on the daemon's own reactor, for Prometheus and for people.

- ``/metrics``: Prometheus text exposition (``prometheus_client``) of the server's counters, which the ``Stats``
  observer keeps (``server.stats()``), and of the process (CPU, memory, open files).
- ``/healthz``: 200 ``ok`` while every listener is up and the reactor keeps its beat; 503 and the reason if not.
- ``/connz``: JSON, one object per link (peer, transport, since when, messages and bytes each way, buffered
  bytes, dropped messages).

Everything is computed when asked, in the reactor thread; between scrapes the monitor costs the counting alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from twisted.application.service import IService, IServiceCollection, MultiService
from twisted.application.service import Service as TwistedService
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort, IReactorTime, IStreamServerEndpoint
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from leads_twisted.comm import ServerHub
from leads_twisted.comm.hub import State
from leads_twisted.daemon.service import describe_address

if TYPE_CHECKING:  # prometheus_client is imported when the monitor is built, so the daemon runs without it
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector as MetricsCollector
    from prometheus_client.registry import CollectorRegistry

_log = Logger(namespace="leads_twisted.daemon")

#: Seconds between two beats of the reactor pulse.
PULSE_SECONDS: float = 0.25
#: A beat later than this (seconds) means the reactor was held: unhealthy.
HEALTHY_LAG_SECONDS: float = 1.0
#: How long a stall keeps ``/healthz`` at 503 after it ended, so a check every few seconds sees it.
STALL_MEMORY_SECONDS: float = 10.0


class MonitorUnavailable(Exception):
    """``prometheus_client`` is missing: say how to get it."""


class Pulse(TwistedService):
    """A beat in the reactor every ``PULSE_SECONDS``: tells how late the reactor answers, and when it last stalled.

    ``clock`` is the reactor (``callLater``), ``now`` the time the beats are measured with.
    """

    def __init__(self, clock: IReactorTime, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._beat = LoopingCall(self._tick)
        self._beat.clock = clock
        self.last_beat: float = now()
        #: The longest gap over ``HEALTHY_LAG_SECONDS`` seen lately, and when it ended.
        self.stall: tuple[float, float] | None = None

    def startService(self) -> None:
        super().startService()
        self.last_beat = self._now()
        self._beat.start(PULSE_SECONDS, now=False)

    def stopService(self) -> None:
        super().stopService()
        if self._beat.running:
            self._beat.stop()

    def _tick(self) -> None:
        now = self._now()
        lag = now - self.last_beat - PULSE_SECONDS
        if lag > HEALTHY_LAG_SECONDS:
            self.stall = (lag + PULSE_SECONDS, now)
        self.last_beat = now

    def problem(self) -> str | None:
        """Why the reactor is not healthy now, or None."""
        now = self._now()
        late = now - self.last_beat - PULSE_SECONDS
        if late > HEALTHY_LAG_SECONDS:
            return f"the reactor has not answered for {late + PULSE_SECONDS:.1f} s"
        if self.stall is not None:
            held, ended = self.stall
            if now - ended <= STALL_MEMORY_SECONDS:
                return f"the reactor was held for {held:.1f} s, {now - ended:.0f} s ago (see --slow-callback)"
        return None


def health(server: ServerHub, pulse: Pulse) -> str | None:
    """Why the daemon is not healthy, or None: a listener down, the server not running, or the reactor held."""
    if server.state is not State.RUNNING:
        return f"the server is {server.state.value}"
    ports = server.listening_ports()
    if not ports:
        return "no listener is up"
    down = [port for port in ports if not getattr(port, "connected", True)]
    if down:
        return f"{len(down)} of {len(ports)} listeners are down"
    return pulse.problem()


class Collector:
    """A ``prometheus_client`` collector: the server's counters as metric families, read at each scrape."""

    def __init__(self, server: ServerHub) -> None:
        self._server = server

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        stats = self._server.stats()
        yield GaugeMetricFamily("leads_comm_connections", "Links up now", value=stats.connections)
        counters = (
            ("leads_comm_connections", "Links that came up", stats.connections_total),
            ("leads_comm_refused_connections", "Peers turned away (closing, --max-connections)", stats.refused_total),
            ("leads_comm_messages_received", "Messages from peers (controls not counted)", stats.messages_in),
            ("leads_comm_messages_sent", "Messages delivered to peers, one per delivery", stats.messages_out),
            ("leads_comm_bytes_received", "Bytes of the received messages, framing included", stats.bytes_in),
            ("leads_comm_bytes_sent", "Bytes of the delivered messages, framing included", stats.bytes_out),
            ("leads_comm_dropped_messages", "Messages dropped for peers that stopped reading", stats.dropped),
            ("leads_comm_failures", "Errors reported to on_fail", stats.failures),
        )
        for name, documentation, value in counters:
            yield CounterMetricFamily(name, documentation, value=value)
        ends = CounterMetricFamily("leads_comm_disconnects", "Links that ended, by reason", labels=["reason"])
        for reason, count in sorted(stats.disconnects.items()):
            ends.add_metric([reason], count)
        yield ends


@runtime_checkable
class MetricsSource(Protocol):
    """A part of the daemon with metrics of its own (the MQTT bridge): the monitor registers its collector."""

    def metrics_collector(self) -> MetricsCollector:
        """A ``prometheus_client`` collector (an object with ``collect()``), read in the reactor thread."""


def collectors_in(service: IService) -> list[MetricsCollector]:
    """The collectors of every ``MetricsSource`` in the daemon's tree of services, in tree order."""
    found = [service.metrics_collector()] if isinstance(service, MetricsSource) else []
    if IServiceCollection.providedBy(service):
        for child in service:
            found += collectors_in(child)
    return found


class Metrics(Resource):
    """``/metrics``: the registry in Prometheus's text format."""

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self._registry = registry

    def render_GET(self, request: Request) -> bytes:
        from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode())
        return bytes(generate_latest(self._registry))


class Health(Resource):
    """``/healthz``: ``ok`` (200), or the reason (503)."""

    isLeaf = True

    def __init__(self, server: ServerHub, pulse: Pulse) -> None:
        super().__init__()
        self._server = server
        self._pulse = pulse

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        problem = health(self._server, self._pulse)
        if problem is None:
            return b"ok\n"
        request.setResponseCode(503)
        return f"unhealthy: {problem}\n".encode()


class Connections(Resource):
    """``/connz``: the links as JSON, with the server's totals."""

    isLeaf = True

    def __init__(self, server: ServerHub) -> None:
        super().__init__()
        self._server = server

    def render_GET(self, request: Request) -> bytes:
        stats = self._server.stats()
        body = {
            "now": time.time(),
            "connections": stats.connections,
            "messages_in": stats.messages_in,
            "messages_out": stats.messages_out,
            "links": [link.as_dict() for link in stats.links],
        }
        request.setHeader(b"Content-Type", b"application/json")
        return json.dumps(body, indent=1).encode() + b"\n"


def registry_for(server: ServerHub, collectors: Iterable[MetricsCollector] = ()) -> CollectorRegistry:
    """A registry of the server's counters, ``collectors`` (the daemon's other parts) and the process collector;
    raises ``MonitorUnavailable``."""
    try:
        from prometheus_client import CollectorRegistry, ProcessCollector
    except ImportError:
        raise MonitorUnavailable("--monitor needs prometheus_client: pip install 'leads_twisted[monitor]'") from None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector(server))
    for collector in collectors:
        registry.register(collector)
    ProcessCollector(registry=registry)
    return registry


class QuietSite(Site):
    """A site that keeps no access log: a scrape a second would fill the journal."""

    noisy = False
    displayTracebacks = False

    def log(self, request: http.Request) -> None:
        """Log nothing per request."""


def site_for(server: ServerHub, pulse: Pulse, collectors: Iterable[MetricsCollector] = ()) -> Site:
    """The monitor's web site: ``/metrics``, ``/healthz``, ``/connz``."""
    root = Resource()
    root.putChild(b"metrics", Metrics(registry_for(server, collectors)))
    root.putChild(b"healthz", Health(server, pulse))
    root.putChild(b"connz", Connections(server))
    return QuietSite(root)


class Listener(TwistedService):
    """Listens for the monitor's HTTP before privileges are dropped; a port in use ends the start at once."""

    def __init__(self, endpoint: IStreamServerEndpoint, description: str, site: Site) -> None:
        self._endpoint = endpoint
        self._description = description
        self._site = site
        self._port: IListeningPort | None = None
        self._failure: Failure | None = None

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._endpoint.listen(self._site).addCallbacks(self._listening, self._failed)
        if self._failure is not None:
            raise SystemExit(f"twistd leads-comm: --monitor {self._description}: {self._failure.getErrorMessage()}")

    def _listening(self, port: IListeningPort) -> None:
        self._port = port
        _log.info("monitor on http://{where}/ (/metrics, /healthz, /connz)", where=describe_address(port.getHost()))

    def _failed(self, failure: Failure) -> None:
        self._failure = failure

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        port, self._port = self._port, None
        return port.stopListening() if port is not None else None


def monitor_service(
    server: ServerHub,
    reactor: IReactorTime,
    endpoint: IStreamServerEndpoint,
    description: str,
    collectors: Iterable[MetricsCollector] = (),
) -> TwistedService:
    """The monitor as a twistd service: listens on ``endpoint`` when the daemon starts, beats the pulse.
    ``collectors`` add the metrics of the daemon's other parts (``collectors_in``).

    The server's counting (``server.stats()``) begins here, before it listens.
    """
    server.stats()
    pulse = Pulse(reactor)
    parts = MultiService()
    pulse.setServiceParent(parts)
    Listener(endpoint, description, site_for(server, pulse, collectors)).setServiceParent(parts)
    return parts
