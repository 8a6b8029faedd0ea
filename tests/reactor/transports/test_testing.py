"""``leads_twisted.testing`` as a user would use it: unit tests of their own callbacks, in memory, on a fake
clock, with links that break in the middle. Plain synchronous tests: no sockets, threads or running reactor."""

from __future__ import annotations

import pytest

from leads_twisted.comm import Callback, ConnectionBase, ServiceView
from leads_twisted.comm.link_policy import Backoff
from leads_twisted.testing import MemoryNetwork, connect_in_memory


class SpeedBoard(Callback):
    """A sample server callback under test: keeps each client's last speed, acknowledges every reading,
    answers anything else with an error, and forgets a client when it goes."""

    def __init__(self) -> None:
        super().__init__()
        self.speeds: dict[ConnectionBase, float] = {}

    def on_receive(self, service: ServiceView, msg: bytes) -> None:
        kind, _, value = msg.partition(b"=")
        if kind != b"speed":
            service.reply(b"error:" + kind)
            return
        self.speeds[service.sender()] = float(value)
        service.reply(b"ack:" + value)

    def on_disconnect(self, service: ServiceView, connection: ConnectionBase) -> None:
        self.speeds.pop(connection, None)


class Dashboard(Callback):
    """A sample client callback under test: collects acknowledgements and knows whether it is online."""

    def __init__(self) -> None:
        super().__init__()
        self.acks: list[float] = []
        self.online = False

    def on_connect(self, service: ServiceView, connection: ConnectionBase) -> None:
        self.online = True

    def on_receive(self, service: ServiceView, msg: bytes) -> None:
        if msg.startswith(b"ack:"):
            self.acks.append(float(msg[4:]))

    def on_disconnect(self, service: ServiceView, connection: ConnectionBase) -> None:
        self.online = False


def test_a_link_breaks_in_the_middle():
    board, dashboard = SpeedBoard(), Dashboard()
    net = connect_in_memory(board, dashboard)
    assert dashboard.online and len(board.speeds) == 0
    [link] = net.server_seen.connections

    net.client.send(b"speed=10")
    net.client.send(b"speed=20")
    net.flush()
    assert dashboard.acks == [10.0, 20.0]
    assert board.speeds == {link: 20.0}

    net.client.send(b"speed=30")  # in flight when the cable is pulled: lost
    net.drop()
    net.flush()
    assert net.server_seen.received == [b"speed=10", b"speed=20"]
    assert dashboard.acks == [10.0, 20.0]
    assert board.speeds == {} and not dashboard.online
    assert net.server_seen.disconnections == [link]
    assert net.client_seen.kinds() == ["initialize", "connect", "receive", "receive", "disconnect"]
    assert net.server.num_connections() == 0
    with pytest.raises(OSError):
        net.client.send(b"speed=40")
    assert not net.server_seen.failures and not net.client_seen.failures
    assert net.clock.seconds() == 0, "nothing above needed time to pass"


def test_a_goodbye_in_the_middle():
    board, dashboard = SpeedBoard(), Dashboard()
    net = connect_in_memory(board, dashboard)
    net.client.send(b"speed=5")
    net.client.send(b"brake=1")
    net.client.close()  # says disconnect after what it sent, and the server answers what came before
    net.flush()
    assert net.server_seen.received == [b"speed=5", b"brake=1"]
    assert net.client_seen.received == [b"ack:5", b"error:brake"]
    assert net.server_seen.kinds()[-1] == net.client_seen.kinds()[-1] == "disconnect"
    assert board.speeds == {} and not dashboard.online


def test_the_server_talks_to_one_client_or_to_all():
    net = MemoryNetwork(SpeedBoard())
    first, first_seen = net.add_client(Dashboard())
    second, second_seen = net.add_client(Dashboard())
    assert net.server.num_connections() == 2
    net.server_connection(second).send(b"only you")
    net.server.broadcast(b"everyone")
    net.flush()
    assert first_seen.received == [b"everyone"]
    assert second_seen.received == [b"only you", b"everyone"]
    net.drop(first)
    net.flush()
    net.server.broadcast(b"who is left")
    net.flush()
    assert second_seen.received[-1] == b"who is left" and first_seen.received == [b"everyone"]
    net.close()
    assert net.server.num_connections() == 0
    assert second_seen.kinds()[-1] == "disconnect"


def test_reconnecting_on_the_fake_clock():
    dashboard = Dashboard()
    backoff = Backoff(initial=1.0, factor=2.0, maximum=4.0, jitter=0.0)
    net = connect_in_memory(SpeedBoard(), dashboard, client_options={"reconnect": True, "backoff": backoff})
    net.drop()
    net.flush()
    assert not dashboard.online
    net.advance(0.9)
    assert not dashboard.online, "no retry before the backoff's first delay"
    for _ in range(40):  # a quarter of a second at a time, up to ten seconds
        if dashboard.online:
            break
        net.advance(0.25)
    assert dashboard.online
    assert 1.0 <= net.clock.seconds() <= 4.0, "back within the backoff's bounds"
    net.client.send(b"speed=7")
    net.flush()
    assert dashboard.acks == [7.0]
    assert net.client_seen.kinds().count("connect") == 2


def test_an_idle_link_times_out_on_the_fake_clock():
    net = connect_in_memory(SpeedBoard(), Dashboard(), server_options={"idle_timeout": 5.0})
    net.advance(4.0)
    net.client.send(b"speed=1")  # activity restarts the count
    net.advance(4.0)
    assert net.server.num_connections() == 1
    net.advance(1.5)
    assert net.server.num_connections() == 0
    assert [type(error) for error in net.server_seen.failures] == [TimeoutError]
    assert net.client_seen.kinds()[-1] == "disconnect"


def test_a_full_or_closed_server_turns_clients_away():
    net = MemoryNetwork(SpeedBoard(), max_connections=1)
    net.add_client()
    _, turned_away = net.add_client()
    net.flush()
    assert turned_away.kinds() == ["initialize", "connect", "disconnect"]
    assert net.server.num_connections() == 1
    net.close()
    with pytest.raises(ConnectionRefusedError):
        net.add_client()


def test_a_raising_callback_is_reported_and_the_service_carries_on():
    class Fragile(Callback):
        def on_receive(self, service: ServiceView, msg: bytes) -> None:
            if msg == b"bad":
                raise KeyError(msg)
            service.reply(b"ok")

    net = connect_in_memory(Fragile())
    for msg in (b"bad", b"good"):
        net.client.send(msg)
    net.flush()
    assert [type(error) for error in net.server_seen.failures] == [KeyError]
    assert net.client_seen.received == [b"ok"]


def test_options_reach_both_sides():
    net = connect_in_memory(framing="length")  # any bytes, the separator included
    net.client.send(b"a;b")
    net.server.broadcast(b"c;d")
    net.flush()
    assert net.server_seen.received == [b"a;b"]
    assert net.client_seen.received == [b"c;d"]


def test_flush_stops_callbacks_that_answer_each_other_forever(monkeypatch):
    class PingPong(Callback):
        def on_receive(self, service: ServiceView, msg: bytes) -> None:
            service.reply(msg)

    monkeypatch.setattr("leads_twisted.testing.MAX_FLUSH_ROUNDS", 50)
    net = connect_in_memory(PingPong(), PingPong())
    net.client.send(b"ping")
    with pytest.raises(RuntimeError, match="still busy"):
        net.flush()


def test_the_testing_network_keeps_its_runner_and_takes_max_queued() -> None:
    from leads_twisted.testing import MemoryNetwork, MemoryRunner

    net = MemoryNetwork(max_queued=1024)
    client, _ = net.add_client(max_queued=2048)
    assert isinstance(net.runner, MemoryRunner)
    client.send(b"hello")
    net.flush()
    assert net.server_seen.received == [b"hello"]
