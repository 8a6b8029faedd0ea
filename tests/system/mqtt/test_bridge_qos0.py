"""QoS 0 ``up`` messages written beside paho: under load, with paho writing acknowledgements of ``down``
messages on the same connection, the stream stays whole (no reconnect) and in order both ways."""

from __future__ import annotations

import subprocess

import pytest

from ..daemon.twistd_harness import clients
from .mosquitto import tool
from .test_bridge_daemon import bridged, numbered

pytestmark = pytest.mark.timeout(90)


def test_up_at_qos_0_interleaved_with_down_at_qos_1(daemons, broker):
    # 20 MB of 1 KB messages: the broker falls behind, so the bridge's buffers are often cut short by a full
    # socket (tests/reactor/test_bridge_driver.py forces a PUBACK into such a moment). The queue holds all.
    count, downs = 20_000, numbered("down", 0, 300)
    sub = broker.subscribe("leads/car1/up")
    daemon = bridged(daemons, broker.url, "car1", "--bridge-queue", str(64 << 20))
    ups = [msg + b"." * (1000 - len(msg)) for msg in numbered("up", 0, count)]
    with clients(daemon.port, 1) as [car]:
        pit = subprocess.Popen(
            [tool("mosquitto_pub"), "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-t", "leads/car1/down",
             "-l"],
            stdin=subprocess.PIPE,
        )  # fmt: skip
        try:
            assert pit.stdin is not None
            for start in range(0, count, 1000):
                car.send(*ups[start : start + 1000])
                if start % 2000 == 0:  # down messages while up ones stream, each acknowledged by paho
                    group = start // 2000 * 30
                    pit.stdin.write(b"".join(msg + b"\n" for msg in downs[group : group + 30]))
                    pit.stdin.flush()
            # The pit's input stays open until all is in: mosquitto_pub drops queued QoS 1 messages at its end.
            assert car.receive(len(downs), timeout=60) == downs
            got = [payload for _, payload in sub.messages(count, timeout=60)]
        finally:
            if pit.stdin is not None:
                pit.stdin.close()
            pit.wait(15)
    assert got == [msg.decode() for msg in ups]
    assert daemon.log().count("bridge: connected") == 1, "the broker dropped the bridge: a corrupted stream?"
