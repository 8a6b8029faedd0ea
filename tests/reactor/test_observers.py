"""The observer seam over real loopback links: every event, per delivery, and an observer that raises."""

from __future__ import annotations

import pytest_twisted
from support_net import Recorder

from leads_twisted.comm import Callback, LinkEnd, Observer


class Watch(Observer):
    """Records every observer event as ``(event, detail)``."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.events = []

    def _add(self, event, detail):
        self.events.append((event, detail))
        self.recorder.changed()

    def link_up(self, service, connection):
        self._add("up", connection)

    def link_down(self, service, connection, reason):
        self._add("down", reason)

    def message_in(self, service, connection, msg):
        self._add("in", msg)

    def message_out(self, service, connection, count, size):
        self._add("out", (count, size))

    def dropped(self, service, connection, count):
        self._add("dropped", count)

    def refused(self, service, address, reason):
        self._add("refused", reason)

    def failure(self, service, error):
        self._add("failure", type(error).__name__)

    def of(self, event):
        return [detail for e, detail in self.events if e == event]


class Relay(Recorder):
    def on_receive(self, service, msg):
        service.broadcast(msg, exclude=service.sender())
        super().on_receive(service, msg)


class Raising(Observer):
    def message_in(self, service, connection, msg):
        raise RuntimeError("observer bug")


@pytest_twisted.ensureDeferred
async def test_relay_traffic_is_told_per_delivery(net):
    relay = Relay()
    server = await net.server(relay)
    watch = Watch(relay)
    server.add_observer(Raising())  # comes first and raises: the next observer and the link carry on
    server.add_observer(watch)
    peers = [await net.raw_peer(server.port()) for _ in range(3)]
    await relay.when_kind("connect", 3)
    assert len(watch.of("up")) == 3
    for i in range(10):
        peers[0].transport.write(b"m%d;" % i)
    await relay.when_received(10)
    for peer in peers[1:]:
        await peer.when_messages(10)
    assert watch.of("in") == [b"m%d" % i for i in range(10)]
    outs = watch.of("out")
    assert sum(count for count, _ in outs) == 20  # ten messages, two deliveries each
    assert sum(size for _, size in outs) == 2 * sum(len(b"m%d;" % i) for i in range(10))
    peers[2].transport.loseConnection()
    await relay.when_kind("disconnect")
    await relay.when(lambda: watch.of("down") == [LinkEnd.CLOSED])


@pytest_twisted.ensureDeferred
async def test_oversize_peer_is_told_as_failure_and_oversize_end(net):
    recorder = Recorder()
    server = await net.server(recorder, max_message=8)
    watch = Watch(recorder)
    server.add_observer(watch)
    peer = await net.raw_peer(server.port())
    await recorder.when_kind("connect")
    peer.transport.write(b"0123456789abcdef")
    await recorder.when(lambda: watch.of("down") == [LinkEnd.OVERSIZE])
    assert watch.of("failure") == ["MessageTooLong"]


@pytest_twisted.ensureDeferred
async def test_refused_and_removed(net):
    recorder = Recorder()
    server = await net.server(recorder, max_connections=1)
    watch = Watch(recorder)
    server.add_observer(watch)
    await net.raw_peer(server.port())
    await recorder.when_kind("connect")
    second = await net.raw_peer(server.port())
    await second.when_lost()
    assert watch.of("refused") == ["max_connections"]
    server.remove_observer(watch)
    server.remove_observer(watch)  # twice: nothing happens
    third = await net.raw_peer(server.port())
    await third.when_lost()
    assert watch.of("refused") == ["max_connections"]


def test_only_observers_are_taken():
    from leads_twisted.comm import Server

    server = Server(0, Callback())
    try:
        server.add_observer(object())
    except TypeError as error:
        assert "Observer" in str(error)
    else:
        raise AssertionError("a non-observer was taken")
