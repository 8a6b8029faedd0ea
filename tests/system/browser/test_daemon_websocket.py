"""``twistd leads-comm --websocket``: a browser's link is one more client of the daemon, under its rules."""

from __future__ import annotations

import re
import signal

import pytest

from ..daemon.twistd_harness import Client, Daemons
from .blocking_ws import BlockingWs


@pytest.fixture
def daemons(tmp_path):
    started = Daemons(tmp_path)
    yield started
    started.stop_all()


def page_port(daemon) -> int:
    log = daemon.wait_for_log("browsers: page at")
    return int(re.search(r"browsers: page at http://[^ ]+:(\d+)/", log).group(1))


def test_the_callback_sees_browsers_and_the_relay_reaches_tcp_clients(daemons):
    daemon = daemons.start(
        "--port", "0", "--interface", "127.0.0.1", "--websocket", "tcp:0:interface=127.0.0.1",
        "--callback", "leads_probe:Probe",
    )  # fmt: skip
    tcp = Client(daemon.port)
    browser = BlockingWs(page_port(daemon))
    assert browser.status == 101
    tcp.send(b"warm")  # the TCP client is registered once its message reaches the browser
    assert browser.message() == b"warm"
    assert tcp.receive(1) == [b"seen:warm"]
    browser.send("speed=3")
    assert browser.message() == b"seen:speed=3", "--callback runs for a browser's message and can answer it"
    assert tcp.receive(1) == [b"speed=3"], "the relay hands it to the TCP client"
    daemon.terminate()
    assert browser.close_code() == 1001
    assert daemon.process.returncode == -signal.SIGTERM  # twistd's own way of ending on SIGTERM


def test_a_bad_websocket_endpoint_is_one_line(tmp_path):
    from ..daemon.twistd_harness import run_twistd

    done = run_twistd("--port", "0", "--websocket", "tcp:notaport", cwd=tmp_path)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("twistd leads-comm: --websocket tcp:notaport:"), done.stderr


def test_websocket_origin_lets_a_named_page_in_and_keeps_others_out(daemons):
    daemon = daemons.start(
        "--port", "0", "--interface", "127.0.0.1", "--websocket", "tcp:0:interface=127.0.0.1",
        "--websocket-origin", "https://dash.example.org",
    )  # fmt: skip
    port = page_port(daemon)
    assert BlockingWs(port, origin="https://dash.example.org").status == 101
    assert BlockingWs(port, origin=f"http://127.0.0.1:{port}").status == 101  # the page's own origin
    assert BlockingWs(port, origin="https://elsewhere.example.com").status == 403
