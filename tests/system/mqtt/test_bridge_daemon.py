"""The daemon's bridge against a real Mosquitto: each scenario of the fleet, with real twistd processes."""

from __future__ import annotations

import signal
import socket
import time

import pytest

from ..daemon.twistd_harness import Client, clients

pytestmark = pytest.mark.timeout(90)


def bridged(daemons, url: str, vehicle: str, *extra: str, connected: bool = True):
    """A relay daemon on a free loopback port, bridged to ``url`` as ``vehicle``; by default once it is connected."""
    daemon = daemons.start("--port", "0", "--interface", "127.0.0.1", "--bridge", url, "--vehicle", vehicle, *extra)
    if connected:
        daemon.wait_for_log("bridge: connected")
    return daemon


def numbered(prefix: str, start: int, stop: int) -> list[bytes]:
    return [b"%s-%06d" % (prefix.encode(), i) for i in range(start, stop)]


def first_seen(payloads: list[str]) -> list[str]:
    """Each payload at its first appearance (QoS 1 may repeat one whose acknowledgement was lost)."""
    seen: dict[str, None] = {}
    for payload in payloads:
        seen.setdefault(payload)
    return list(seen)


def test_up_down_and_no_loop(daemons, broker):
    sub = broker.subscribe("leads/car1/#")
    daemon = bridged(daemons, broker.url, "car1")
    assert sub.messages(1) == [("leads/car1/status", "online")]
    with clients(daemon.port, 2) as (first, second):
        first.send(b"speed=1", b"speed=2")
        assert second.receive(2) == [b"speed=1", b"speed=2"]
        assert sub.messages(2) == [("leads/car1/up", "speed=1"), ("leads/car1/up", "speed=2")]
        broker.publish("leads/car1/down", "hazard")
        assert first.receive(1) == [b"hazard"]
        assert second.receive(1) == [b"hazard"]
        # What came down went to every local client and never back up: the subscriber's next message after
        # the down one is the next one a client sends.
        first.send(b"speed=3")
        assert second.receive(1) == [b"speed=3"]
        assert sub.messages(2) == [("leads/car1/down", "hazard"), ("leads/car1/up", "speed=3")]


FLEET_CLIENT = """
import sys, threading
from leads.comm import Callback, create_client, start_client

PORT, NAME, COUNT = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])


class Car(Callback):
    def __init__(self):
        super().__init__()
        self.ready = threading.Event()
        self.connection = None

    def on_connect(self, service, connection):
        self.connection = connection
        self.ready.set()

    def on_receive(self, service, msg):
        print("RECEIVED", msg.decode(), flush=True)

    def on_fail(self, service, error):
        print("FAIL", repr(error), flush=True)


car = Car()
start_client("127.0.0.1", create_client(PORT, car), True)
if not car.ready.wait(15):
    print("FAIL no connection", flush=True)
    sys.exit(1)
for i in range(COUNT):
    car.connection.send(b"%s-%06d" % (NAME.encode(), i))
print("SENT", flush=True)
threading.Event().wait(60)  # stays connected, to hear from the pit, until the test ends it
"""


def test_fleet_of_two_with_original_clients(daemons, broker, original_python):
    from support import Script

    count = 500
    sub = broker.subscribe("leads/+/up")
    cars = {name: bridged(daemons, broker.url, name) for name in ("car1", "car2")}
    with clients(cars["car1"].port, 1) as [watcher1], clients(cars["car2"].port, 1) as [watcher2]:
        scripts = {
            name: Script(FLEET_CLIENT, args=(str(daemon.port), name, str(count)), python=original_python)
            for name, daemon in cars.items()
        }
        with scripts["car1"] as car1, scripts["car2"] as car2:
            car1.expect("SENT")
            car2.expect("SENT")
            streams: dict[str, list[str]] = {"leads/car1/up": [], "leads/car2/up": []}
            for topic, payload in sub.messages(2 * count):
                streams[topic].append(payload)
            for name in ("car1", "car2"):
                assert streams[f"leads/{name}/up"] == [m.decode() for m in numbered(name, 0, count)]
            assert watcher1.receive(count) == numbered("car1", 0, count)
            assert watcher2.receive(count) == numbered("car2", 0, count)

            broker.publish("leads/car1/down", "hazard")
            assert car1.expect("RECEIVED") == "hazard"  # the original 0.9.7 client
            assert watcher1.receive(1) == [b"hazard"]
            # car2 is not subscribed to car1's down topic: the first thing its clients get is their own marker.
            broker.publish("leads/car2/down", "marker")
            assert car2.expect("RECEIVED") == "marker"
            assert watcher2.receive(1) == [b"marker"]


def test_status_online_then_offline_by_last_will(daemons, broker):
    watching = broker.subscribe("leads/car1/status")
    daemon = bridged(daemons, broker.url, "car1")
    assert watching.messages(1) == [("leads/car1/status", "online")]
    late = broker.subscribe("leads/car1/status")  # joins later: the retained value at once
    assert late.messages(1) == [("leads/car1/status", "online")]
    daemon.process.kill()  # SIGKILL: the bridge says nothing; the broker publishes its Last Will
    daemon.process.wait(10)
    assert watching.messages(1) == [("leads/car1/status", "offline")]
    assert broker.subscribe("leads/car1/status").messages(1) == [("leads/car1/status", "offline")]


def test_status_offline_on_orderly_stop(daemons, broker):
    watching = broker.subscribe("leads/car1/status")
    daemon = bridged(daemons, broker.url, "car1")
    assert watching.messages(1) == [("leads/car1/status", "online")]
    daemon.terminate()
    assert daemon.process.returncode == -signal.SIGTERM, daemon.errors()  # as twistd ends on SIGTERM
    assert watching.messages(1) == [("leads/car1/status", "offline")]


def restart_scenario(daemons, make_broker, queue_bytes: int | None, outage: int, qos: int = 1):
    """Broker up, a persistent QoS 1 subscriber, 100 messages; the broker killed; ``outage`` messages; the
    broker back; 100 more. Returns what the subscriber saw (first appearances) and the daemon."""
    # For QoS 0 the broker must keep messages for the subscriber while it reconnects, as it does for QoS 1.
    broker = make_broker(persistence=True, settings=("queue_qos0_messages true",)).start()
    sub = broker.subscribe("leads/car1/up", options=("-q", "1", "-c", "-i", "dashboard"))
    broker.save()  # the dashboard's session outlives the SIGKILL below
    extra = ("--bridge-qos", str(qos)) + (("--bridge-queue", str(queue_bytes)) if queue_bytes is not None else ())
    daemon = bridged(daemons, broker.url, "car1", *extra)
    before, during, after = (
        numbered("m", 0, 100),
        numbered("m", 100, 100 + outage),
        numbered("m", 100 + outage, 200 + outage),
    )
    with clients(daemon.port, 2) as (car, other):
        car.send(*before)
        assert other.receive(len(before)) == before
        assert [p for _, p in sub.messages(len(before))] == [m.decode() for m in before]
        broker.kill()
        daemon.wait_for_log("bridge: no link")
        car.send(*during)
        assert other.receive(len(during)) == during  # the local relay does not notice
        broker.start()
        # Once the last message of the outage is through, the bridge is back: then send more.
        got = sub.until(during[-1].decode(), timeout=30)
        car.send(*after)
        assert other.receive(len(after)) == after
        got += sub.until(after[-1].decode())
        seen = first_seen([p for _, p in got])
    return seen, daemon, (before, during, after)


@pytest.mark.parametrize("qos", [1, 0])
def test_broker_killed_and_restarted_mid_stream(daemons, make_broker, qos):
    seen, _, (_, during, after) = restart_scenario(daemons, make_broker, None, 300, qos)
    assert seen == [m.decode() for m in during + after]


def test_outage_past_the_queue_bound_drops_the_oldest(daemons, make_broker):
    # Each message is 8 bytes: a 800-byte queue keeps the newest 100 of the 300 sent during the outage.
    seen, daemon, (_, during, after) = restart_scenario(daemons, make_broker, 800, 300)
    assert seen == [m.decode() for m in during[-100:] + after]
    assert "100 messages waiting, 200 dropped in all" in daemon.log()


def test_broker_absent_at_start(daemons, make_broker):
    broker = make_broker()  # its port chosen, nothing listening there yet
    daemon = bridged(daemons, broker.url, "car1", connected=False)
    daemon.wait_for_log("bridge: no link")
    with clients(daemon.port, 2) as (car, other):
        car.send(*numbered("m", 0, 50))
        assert other.receive(50) == numbered("m", 0, 50)  # the relay works without the broker
        broker.start()
        sub = broker.subscribe("leads/car1/#")
        daemon.wait_for_log("bridge: connected", timeout=30)
        car.send(b"after")
        assert other.receive(1) == [b"after"]
        seen = sub.until("after")
    assert ("leads/car1/status", "online") in seen
    ups = [p for topic, p in seen if topic == "leads/car1/up"]
    # Those queued before the subscriber came may have gone already; what it saw is in order, ending in "after".
    assert ups[-1] == "after" and ups[:-1] == [m.decode() for m in numbered("m", 50 - len(ups) + 1, 50)]


def test_hundred_thousand_at_qos_1(daemons, broker):
    count = 100_000
    daemon = bridged(daemons, broker.url, "car1", "--bridge-qos", "1")
    sub = broker.subscribe("leads/car1/up", options=("-q", "1"))
    messages = numbered("m", 0, count)
    car = Client(daemon.port)
    try:
        for start in range(0, count, 1000):
            car.send(*messages[start : start + 1000])
        got = [p for _, p in sub.messages(count, timeout=75)]
    finally:
        car.close()
    assert len(got) == count
    assert got == [m.decode() for m in messages]


def test_a_broker_address_that_drops_packets_never_holds_the_relay(daemons):
    # A listener whose accept queue is full drops every new SYN: a connect there hangs, as to a dead uplink.
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(0)
        host, port = hole.getsockname()
        with socket.create_connection((host, port), timeout=5):  # fills the queue
            daemon = bridged(daemons, f"mqtt://{host}:{port}", "car1", connected=False)
            daemon.wait_for_log("bridge: connecting")
            with clients(daemon.port, 2) as (car, other):
                # Ping-pong through the relay, each answer within 0.5 s, until the attempt has timed out (5 s).
                deadline = time.monotonic() + 30
                while "next try in" not in daemon.log():
                    for _ in range(100):
                        car.send(b"ping")
                        assert other.receive(1, timeout=0.5) == [b"ping"]
                    assert time.monotonic() < deadline, "the attempt never ended"
    assert "timeout" in daemon.log().lower()
