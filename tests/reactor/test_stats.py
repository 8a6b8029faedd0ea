"""``service.stats()`` and ``slow_callback`` over real loopback links in the test reactor."""

from __future__ import annotations

import time

import pytest_twisted
from support_net import ListLink, Recorder
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.logger import LogLevel, capturedLogs

from leads_twisted.comm import LinkEnd, Observer, Server


class Relay(Recorder):
    def on_receive(self, service, msg):
        service.broadcast(msg, exclude=service.sender())
        super().on_receive(service, msg)


@pytest_twisted.ensureDeferred
async def test_stats_count_relay_traffic_exactly(net):
    relay = Relay()
    server = await net.server(relay)
    assert server.stats().connections == 0  # counting begins
    peers = [await net.raw_peer(server.port()) for _ in range(3)]
    await relay.when_kind("connect", 3)
    for i in range(100):
        peers[0].transport.write(b"m%02d;" % i)
    for peer in peers[1:]:
        await peer.when_messages(100)
    stats = server.stats()
    assert (stats.connections, stats.connections_total) == (3, 3)
    assert (stats.messages_in, stats.messages_out) == (100, 200)
    assert (stats.bytes_in, stats.bytes_out) == (400, 800)
    by_in = sorted(stats.links, key=lambda link: link.messages_in)
    assert [link.messages_in for link in by_in] == [0, 0, 100]
    assert [link.messages_out for link in by_in] == [100, 100, 0]
    assert {link.transport for link in stats.links} == {"tcp"}
    assert all(link.buffered == 0 and link.dropped == 0 for link in stats.links)
    peers[2].transport.loseConnection()
    await relay.when_kind("disconnect")
    await deferLater(reactor, 0, lambda: None)  # on_disconnect fired the wait; the observer is told just after
    assert server.stats().disconnects[LinkEnd.CLOSED] == 1
    after = server.stats()
    assert after.connections == 2
    assert (after.messages_in, after.messages_out) == (100, 200)  # an ended link's traffic stays counted
    assert (after.bytes_in, after.bytes_out) == (400, 800)


@pytest_twisted.ensureDeferred
async def test_counting_calls_no_observer_per_message(net):
    """Stats reads the links' own counters: the service calls no observer per chunk for it, while an observer
    that wants deliveries still hears each, and the counts stay exact beside it."""
    relay = Relay()
    server = await net.server(relay)
    server.stats()
    assert (server.observers.sending, server.observers.per_chunk, server.observers.each_message) == ((), (), ())
    told: list[int] = []

    class Deliveries(Observer):
        def message_out(self, service, connection, count, size):
            told.append(count)

    server.add_observer(Deliveries())
    peers = [await net.raw_peer(server.port()) for _ in range(2)]
    await relay.when_kind("connect", 2)
    for i in range(10):
        peers[0].transport.write(b"m%d;" % i)
    await peers[1].when_messages(10)
    assert sum(told) == 10
    stats = server.stats()
    sizes = sum(len(b"m%d;" % i) for i in range(10))
    assert (stats.messages_in, stats.messages_out, stats.bytes_out) == (10, 10, sizes)


@pytest_twisted.ensureDeferred
async def test_a_custom_link_is_counted_with_its_framing(net):
    recorder = Recorder()
    server = await net.server(recorder, separator=b"end;")
    server.stats()
    link = ListLink(server)
    server.attach(link)
    server.feed(link, b"abcend;de")
    server.feed(link, b"end;")
    stats = server.stats()
    assert (stats.messages_in, stats.bytes_in) == (2, len(b"abcend;deend;"))
    assert stats.links[0].transport == "ListLink"
    link.close()
    assert server.stats().connections == 0


class Slow(Recorder):
    def on_receive(self, service, msg):
        time.sleep(0.05)  # holds the reactor on purpose: what the warning is for
        super().on_receive(service, msg)


@pytest_twisted.ensureDeferred
async def test_slow_callback_is_warned_once_per_interval(net):
    recorder = Slow()
    server = await net.server(recorder, slow_callback=0.02)  # the option create_server takes too
    peer = await net.raw_peer(server.port())
    with capturedLogs() as events:
        peer.transport.write(b"a;")
        await recorder.when_received(1)
        peer.transport.write(b"b;")
        await recorder.when_received(2)
    warnings = [e for e in events if e["log_level"] == LogLevel.warn and "held the reactor" in e["log_format"]]
    assert len(warnings) == 1  # the second, within the interval, waits for the next warning
    assert warnings[0]["name"].endswith("test_stats.Slow.on_receive")
    assert warnings[0]["ms"] >= 50


@pytest_twisted.ensureDeferred
async def test_no_warning_without_the_option(net):
    recorder = Slow()
    server = await net.server(recorder)
    peer = await net.raw_peer(server.port())
    with capturedLogs() as events:
        peer.transport.write(b"a;")
        await recorder.when_received(1)
    assert not [e for e in events if "held the reactor" in e.get("log_format", "")]


def test_create_server_and_client_take_the_option():
    from leads_twisted.comm import create_client, create_server

    for create in (create_server, create_client):
        create(0, slow_callback=0.5)  # taken: no TypeError for an unknown option
        try:
            create(0, slow_callback=-1)
        except ValueError as error:
            assert "slow_callback must be a positive number" in str(error)
        else:
            raise AssertionError(f"{create.__name__} took slow_callback=-1")


def test_slow_callback_must_be_positive():
    for bad in (0, -1, "1", True):
        try:
            Server(0, slow_callback=bad)
        except ValueError as error:
            assert "slow_callback must be a positive number of seconds or None" in str(error)
        else:
            raise AssertionError(f"slow_callback={bad!r} was taken")
