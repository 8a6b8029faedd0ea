"""A ``prometheus_client`` collector of one ``MQTTBridge``'s counters, read at each scrape.

The daemon's ``--monitor`` registers it beside the server's metrics; a program of your own can register it in
any registry. ``prometheus_client`` is imported at the first scrape, so the bridge runs without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from leads_twisted.bridge.mqtt import MQTTBridge

if TYPE_CHECKING:  # prometheus_client is imported at the first scrape
    from prometheus_client.metrics_core import Metric


class BridgeCollector:
    """The bridge's counters as metric families; collected in the reactor thread (the monitor's scrapes are)."""

    def __init__(self, bridge: MQTTBridge) -> None:
        self._bridge = bridge

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        bridge = self._bridge
        counters = (
            ("published", "Up messages the broker has (written at QoS 0, acknowledged at QoS 1)", bridge.published),
            ("dropped", "Up messages dropped, oldest first, because the bridge queue was full", bridge.dropped),
            ("received", "Down messages handed to the local clients", bridge.received),
            ("rejected", "Down messages that could not be framed for the local clients", bridge.rejected),
        )
        for name, documentation, value in counters:
            yield CounterMetricFamily(f"leads_comm_bridge_{name}", documentation, value=value)
        gauges = (
            ("connected", "1 while the broker has accepted the bridge, else 0", int(bridge.connected)),
            ("queued_messages", "Up messages waiting for the broker or its acknowledgement", bridge.queued),
            ("queued_bytes", "Bytes of up messages in the bounded bridge queue", bridge.queued_bytes),
        )
        for name, documentation, value in gauges:
            yield GaugeMetricFamily(f"leads_comm_bridge_{name}", documentation, value=value)
