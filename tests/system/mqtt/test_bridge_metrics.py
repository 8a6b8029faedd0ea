"""The bridge's counters in ``--monitor``'s /metrics, on a real daemon against a real Mosquitto, parsed with
prometheus_client's parser: published, received, connected, and the queue's bytes and drops in an outage."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ..daemon.twistd_harness import clients
from ..operators.conftest import get, monitor_url
from .test_bridge_daemon import bridged, numbered

pytestmark = pytest.mark.timeout(90)


def scrape(url: str) -> dict[str, float]:
    """Every unlabelled ``leads_comm_bridge_*`` sample of /metrics, by name."""
    status, body = get(f"{url}/metrics")
    assert status == 200, body
    families = list(text_string_to_metric_families(body))
    return {
        sample.name: sample.value
        for family in families
        if family.name.startswith("leads_comm_bridge_")
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_bridge_counters_in_the_daemon_metrics(daemons, broker):
    sub = broker.subscribe("leads/car1/up")
    # Ten-byte outage messages against a 200-byte queue: the queue keeps the newest 20.
    daemon = bridged(daemons, broker.url, "car1", "--bridge-queue", "200", "--monitor", "tcp:0:interface=127.0.0.1")
    url = monitor_url(daemon)
    assert scrape(url) == {
        "leads_comm_bridge_published_total": 0,
        "leads_comm_bridge_dropped_total": 0,
        "leads_comm_bridge_received_total": 0,
        "leads_comm_bridge_rejected_total": 0,
        "leads_comm_bridge_connected": 1,
        "leads_comm_bridge_queued_messages": 0,
        "leads_comm_bridge_queued_bytes": 0,
    }
    up, outage = numbered("up", 0, 100), numbered("out", 0, 50)
    assert {len(msg) for msg in outage} == {10}
    with clients(daemon.port, 2) as (car, other):
        car.send(*up)
        assert other.receive(len(up)) == up
        assert [p for _, p in sub.messages(len(up))] == [m.decode() for m in up]
        broker.publish("leads/car1/down", "hazard")
        assert car.receive(1) == [b"hazard"]
        assert other.receive(1) == [b"hazard"]
        samples = scrape(url)
        assert samples["leads_comm_bridge_published_total"] == len(up)
        assert samples["leads_comm_bridge_received_total"] == 1

        broker.kill()
        daemon.wait_for_log("bridge: no link")
        car.send(*outage)
        assert other.receive(len(outage)) == outage  # the relay has handled each, so the bridge has seen each
        samples = scrape(url)
    kept = 20
    assert samples["leads_comm_bridge_connected"] == 0
    assert samples["leads_comm_bridge_published_total"] == len(up)
    assert samples["leads_comm_bridge_queued_messages"] == kept
    assert samples["leads_comm_bridge_queued_bytes"] == kept * 10
    assert samples["leads_comm_bridge_dropped_total"] == len(outage) - kept
