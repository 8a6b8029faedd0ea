"""``--monitor`` on a real daemon: /metrics parsed with prometheus_client's parser, /connz, /healthz (200, 503),
and the slow-callback warning."""

from __future__ import annotations

import json
import threading
import time

from prometheus_client.parser import text_string_to_metric_families

from ..daemon.twistd_harness import Client, Daemons, clients
from .conftest import environment, get, monitor_url

MONITOR = ("--monitor", "tcp:0:interface=127.0.0.1")


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, by name and labels."""
    status, body = get(f"{url}/metrics")
    assert status == 200, body
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def wait_for_connections(url: str, count: int, timeout: float = 10.0) -> dict:
    """Scrape until the gauge says ``count`` links are up (each scrape is a real request; bounded in time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        samples = scrape(url)
        if value(samples, "leads_comm_connections") == count:
            return samples
    raise AssertionError(f"the daemon never had {count} links: {samples}")


def test_metrics_count_relayed_traffic_exactly(daemons: Daemons) -> None:
    daemon = daemons.start("--interface", "127.0.0.1", "--port", "0", *MONITOR)
    url = monitor_url(daemon)
    with clients(daemon.port, 3) as (sender, first, second):
        before = wait_for_connections(url, 3)
        assert value(before, "leads_comm_messages_received_total") == 0
        sender.send(*[b"m%03d" % i for i in range(100)])
        assert len(first.receive(100)) == 100
        assert len(second.receive(100)) == 100
        samples = scrape(url)
    assert value(samples, "leads_comm_connections") == 3
    assert value(samples, "leads_comm_connections_total") == 3
    assert value(samples, "leads_comm_messages_received_total") == 100
    assert value(samples, "leads_comm_messages_sent_total") == 200
    assert value(samples, "leads_comm_bytes_received_total") == 100 * len(b"m000;")
    assert value(samples, "leads_comm_bytes_sent_total") == 200 * len(b"m000;")
    assert value(samples, "leads_comm_dropped_messages_total") == 0
    assert value(samples, "leads_comm_refused_connections_total") == 0
    assert value(samples, "process_resident_memory_bytes") > 0
    after = wait_for_connections(url, 0)
    assert value(after, "leads_comm_disconnects_total", reason="closed") == 3
    assert value(after, "leads_comm_disconnects_total", reason="slow") == 0


def test_scrapes_under_load_parse_and_never_go_back(daemons: Daemons) -> None:
    daemon = daemons.start("--interface", "127.0.0.1", "--port", "0", *MONITOR)
    url = monitor_url(daemon)
    total = 20_000
    with clients(daemon.port, 2) as (sender, receiver):
        wait_for_connections(url, 2)
        received: list[int] = []
        reader = threading.Thread(target=lambda: received.append(len(receiver.receive(total, timeout=60))))
        reader.start()
        for start in range(0, total, 500):
            sender.send(*[b"load" for _ in range(500)])
            if start % 2000 == 0:
                scrape(url)
        series = []
        while not received and len(series) < 1000:
            series.append(value(scrape(url), "leads_comm_messages_sent_total"))
        reader.join(60)
        final = scrape(url)
    assert received == [total]
    assert series == sorted(series)
    assert value(final, "leads_comm_messages_received_total") == total
    assert value(final, "leads_comm_messages_sent_total") == total


def test_refused_connections_are_counted(daemons: Daemons) -> None:
    daemon = daemons.start("--interface", "127.0.0.1", "--port", "0", "--max-connections", "1", *MONITOR)
    url = monitor_url(daemon)
    with clients(daemon.port, 1):
        wait_for_connections(url, 1)
        extra = Client(daemon.port)
        try:
            assert extra.receive_until_closed() == b"disconnect;"
        finally:
            extra.close()
        assert value(scrape(url), "leads_comm_refused_connections_total") == 1


def test_connz_lists_each_link(daemons: Daemons) -> None:
    daemon = daemons.start("--interface", "127.0.0.1", "--port", "0", *MONITOR)
    url = monitor_url(daemon)
    with clients(daemon.port, 2) as (sender, receiver):
        wait_for_connections(url, 2)
        sender.send(b"abc", b"defg")
        assert receiver.receive(2) == [b"abc", b"defg"]
        status, body = get(f"{url}/connz")
        sender_name, receiver_name = ("{}:{}".format(*client.socket.getsockname()[:2]) for client in (sender, receiver))
    assert status == 200
    document = json.loads(body)
    links = {link["peer"]: link for link in document["links"]}
    assert set(links) == {sender_name, receiver_name}
    sent, got = links[sender_name], links[receiver_name]
    assert (sent["messages_in"], sent["bytes_in"], sent["messages_out"]) == (2, 9, 0)
    assert (got["messages_in"], got["messages_out"], got["bytes_out"]) == (0, 2, 9)
    assert sent["transport"] == "tcp"
    assert got["buffered"] == 0 and got["dropped"] == 0
    assert abs(sent["connected_since"] - time.time()) < 60


def test_healthz_ok_then_503_after_a_callback_held_the_reactor(daemons: Daemons) -> None:
    daemon = daemons.start(
        "--interface", "127.0.0.1", "--port", "0", "--callback", "callbacks:Block", *MONITOR, env=environment()
    )
    url = monitor_url(daemon)
    assert get(f"{url}/healthz") == (200, "ok\n")
    with clients(daemon.port, 1) as (client,):
        client.send(b"block")
        deadline = time.monotonic() + 10
        while (answer := get(f"{url}/healthz"))[0] == 200 and time.monotonic() < deadline:
            pass
    status, reason = answer
    assert status == 503
    assert reason.startswith("unhealthy: the reactor was held for 2.") or "has not answered" in reason
    log = daemon.wait_for_log("held the reactor for")
    assert "callback leads_twisted.daemon.modes.Relay.on_receive + callbacks.Block.on_receive held" in log
    assert "over the slow-callback limit of 100 ms" in log


def test_monitor_port_in_use_is_one_line_and_status_1(daemons: Daemons, tmp_path) -> None:
    import socket

    from ..daemon.twistd_harness import run_twistd

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_twistd("--port", "0", "--monitor", f"tcp:{port}:interface=127.0.0.1", cwd=tmp_path)
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert f"twistd leads-comm: --monitor tcp:{port}:interface=127.0.0.1: Couldn't listen" in output
    assert "Traceback" not in result.stderr + result.stdout
