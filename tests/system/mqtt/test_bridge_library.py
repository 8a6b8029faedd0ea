"""``MQTTBridge`` from Python, in the test's own reactor: attached to a ``Server`` through the observer seam,
paho driven by the reactor (no thread of its own), counters readable."""

from __future__ import annotations

import threading

import pytest
import pytest_twisted
from support import free_port
from support_net import REACTOR_TIMEOUT, Net, Recorder
from twisted.internet import reactor
from twisted.internet.threads import deferToThread

from leads_twisted.bridge import MQTTBridge

pytestmark = pytest.mark.timeout(60)


@pytest_twisted.async_yield_fixture
async def net():
    helper = Net()
    yield helper
    await helper.close_all()


@pytest_twisted.ensureDeferred
async def test_bridge_in_process(net, broker):
    server = await net.server(Recorder())
    peer = await net.raw_peer(server.port())
    threads_before = threading.active_count()
    bridge = MQTTBridge(server, broker.url, vehicle="lib", qos=1, retain=True)
    bridge.start()
    await bridge.when_connected().addTimeout(REACTOR_TIMEOUT, reactor)
    # paho runs on the reactor: connecting to an address started no thread (a host name would be resolved in
    # Twisted's thread pool, as every Twisted name lookup is).
    assert threading.active_count() == threads_before
    assert not [thread.name for thread in threading.enumerate() if "paho" in thread.name]

    early = await deferToThread(broker.subscribe, "leads/lib/up")
    peer.transport.write(b"first;last;")
    assert await deferToThread(early.messages, 2) == [("leads/lib/up", "first"), ("leads/lib/up", "last")]
    # Retained: a dashboard that subscribes now sees the last value at once.
    late = await deferToThread(broker.subscribe, "leads/lib/up")
    assert await deferToThread(late.messages, 1) == [("leads/lib/up", "last")]

    await deferToThread(broker.publish, "leads/lib/down", "from the pit")
    await peer.when_messages(1)
    assert peer.messages == [b"from the pit"]
    assert bridge.received == 1
    assert bridge.published == 2  # both acknowledged (QoS 1) by the time the pit's message came back

    status = await deferToThread(broker.subscribe, "leads/lib/status")
    assert await deferToThread(status.messages, 1) == [("leads/lib/status", "online")]
    await bridge.stop().addTimeout(REACTOR_TIMEOUT, reactor)
    assert await deferToThread(status.messages, 1) == [("leads/lib/status", "offline")]


@pytest_twisted.ensureDeferred
async def test_queue_bound_without_broker(net):
    server = await net.server(Recorder())
    bridge = MQTTBridge(server, f"mqtt://127.0.0.1:{free_port()}", vehicle="lib", queue_bytes=30)
    bridge.start()
    for i in range(10):
        bridge.send_up(b"msg-%05d" % i)  # 9 bytes each: 3 fit
    assert (bridge.queued, bridge.queued_bytes, bridge.dropped) == (3, 27, 7)
    assert not bridge.connected
    await bridge.stop()
