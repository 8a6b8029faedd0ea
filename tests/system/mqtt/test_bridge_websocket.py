"""A browser's WebSocket link and the bridge in one daemon: what the browser sends goes ``up`` like a TCP
client's message, and what comes ``down`` reaches the browser."""

from __future__ import annotations

import re

import pytest

from ..browser.blocking_ws import BlockingWs
from ..daemon.twistd_harness import Client
from .test_bridge_daemon import bridged

pytestmark = pytest.mark.timeout(90)


def test_websocket_messages_go_up_and_down_messages_reach_the_browser(daemons, broker):
    sub = broker.subscribe("leads/car1/up")
    daemon = bridged(daemons, broker.url, "car1", "--websocket", "tcp:0:interface=127.0.0.1")
    log = daemon.wait_for_log("browsers: page at")
    page = int(re.search(r"browsers: page at http://[^ ]+:(\d+)/", log).group(1))
    tcp = Client(daemon.port)
    browser = BlockingWs(page)
    try:
        assert browser.status == 101
        tcp.send(b"warm")  # the TCP client is registered once its message reaches the browser
        assert browser.message() == b"warm"
        for i in range(20):
            browser.send(f"speed={i}")
        assert tcp.receive(20) == [b"speed=%d" % i for i in range(20)]
        assert sub.messages(21) == [("leads/car1/up", "warm")] + [("leads/car1/up", f"speed={i}") for i in range(20)]
        broker.publish("leads/car1/down", "hazard")
        assert browser.message() == b"hazard"
        assert tcp.receive(1) == [b"hazard"]
    finally:
        browser.close()
        tcp.close()
