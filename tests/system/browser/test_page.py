"""The live page in a real headless Chromium, on a real ``twistd leads-comm --websocket``, with the original
``leads==0.9.7`` client as the vehicle: its telemetry shows on the page, a command typed in the page reaches it,
and a page from a foreign origin is refused."""

from __future__ import annotations

import http.server
import re
import threading
import time
from collections.abc import Iterator

import pytest
from support import Script

from ..daemon.twistd_harness import Daemons
from .conftest import artifacts

# The first use makes the 0.9.7 venv (a download); the browser tests themselves take seconds.
pytestmark = pytest.mark.timeout(400)

VEHICLE = """
import sys, threading, time
from leads.comm import Callback, create_client, start_client

class Vehicle(Callback):
    def __init__(self):
        super().__init__()
        self.connected = threading.Event()

    def on_connect(self, service, connection):
        self.connected.set()

    def on_receive(self, service, msg):
        print("GOT " + msg.decode(errors="replace"), flush=True)

vehicle = Vehicle()
client = start_client("127.0.0.1", create_client(int(sys.argv[1]), vehicle), True)
assert vehicle.connected.wait(30), "not connected"  # 0.9.7 returns before the link is up
print("CONNECTED", flush=True)
deadline = time.monotonic() + 90  # bounded: the test ends it long before
i = 0
while time.monotonic() < deadline:
    speed = 40 + (i % 50) * 0.5
    client.send(b"speed=%.1f;rpm=%d" % (speed, 2000 + (i % 100) * 30))
    i += 1
    time.sleep(0.02)  # 50 Hz, as the vehicle's telemetry
"""


@pytest.fixture
def daemon(tmp_path) -> Iterator[object]:
    daemons = Daemons(tmp_path)
    try:
        yield daemons.start("--port", "0", "--interface", "127.0.0.1", "--websocket", "tcp:0:interface=127.0.0.1")
    finally:
        daemons.stop_all()


def page_url(daemon) -> str:
    log = daemon.wait_for_log("browsers: page at")
    return re.search(r"browsers: page at (\S+/),", log).group(1)


def wait_for(driver, condition, what: str, timeout: float = 20.0):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition(d))
    except TimeoutException:
        raise AssertionError(f"{what} not seen within {timeout} s") from None


def field(driver, name: str) -> str | None:
    from selenium.webdriver.common.by import By

    cells = driver.find_elements(By.CSS_SELECTOR, f'tr[data-field="{name}"] td.value')
    return cells[0].text if cells else None


def test_the_page_shows_the_vehicle_and_sends_it_a_command(daemon, chromium, original_python):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    with Script(VEHICLE, (str(daemon.port),), python=original_python) as vehicle:
        vehicle.expect("CONNECTED")
        chromium.get(page_url(daemon))
        wait_for(chromium, lambda d: d.find_element(By.ID, "state").get_attribute("data-state") == "open", "open")
        wait_for(chromium, lambda d: field(d, "speed") and field(d, "rpm"), "speed and rpm in the table")
        first = (field(chromium, "speed"), field(chromium, "rpm"))
        assert 40 <= float(first[0]) < 65 and 2000 <= int(first[1]) < 5000
        wait_for(chromium, lambda d: (field(d, "speed"), field(d, "rpm")) != first, "the values changing")
        plot = chromium.find_element(By.ID, "plot")
        wait_for(chromium, lambda d: int(plot.get_attribute("data-points")) >= 100, "100 points on the plot")
        rate = int(chromium.find_element(By.ID, "rate").text.split()[0])
        assert 40 <= rate <= 250, f"about 100 msg/s (speed and rpm at 50 Hz), shown {rate}"
        legend = chromium.find_element(By.ID, "legend").text
        assert "speed" in legend and "rpm" in legend

        box = chromium.find_element(By.ID, "command-text")
        box.send_keys("hazard", Keys.ENTER)
        assert vehicle.expect("GOT hazard", timeout=10) == ""
        assert chromium.find_element(By.ID, "command-status").text == "sent: hazard"

        shot = artifacts() / "page-phone.png"
        chromium.save_screenshot(str(shot))
        print(f"screenshot: {shot}")
        assert shot.stat().st_size > 10_000


class ForeignPage(http.server.BaseHTTPRequestHandler):
    """Serves a page that tries to open the relay's stream from another origin."""

    stream = ""

    def do_GET(self) -> None:
        body = (
            "<!doctype html><title>foreign</title><script>"
            f"const s = new WebSocket({self.stream!r});"
            "s.onopen = () => { document.title = 'opened'; };"
            "s.onclose = (e) => { if (document.title !== 'opened') document.title = 'refused ' + e.code; };"
            "</script>"
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Quiet."""


def test_a_page_from_a_foreign_origin_is_refused(daemon, chromium):
    own = page_url(daemon)
    handler = type("Handler", (ForeignPage,), {"stream": own.replace("http://", "ws://") + "ws"})
    foreign = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    serving = threading.Thread(target=foreign.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    serving.start()
    try:
        chromium.get(f"http://127.0.0.1:{foreign.server_address[1]}/")
        wait_for(chromium, lambda d: d.title.startswith(("refused", "opened")), "the stream's answer")
        assert chromium.title.startswith("refused"), chromium.title
        assert '"GET /ws HTTP/1.1" 403' in daemon.log()
        # The control: the page's own origin opens the same stream.
        chromium.get(own)
        wait_for(chromium, lambda d: d.find_element("id", "state").get_attribute("data-state") == "open", "open")
    finally:
        foreign.shutdown()
        foreign.server_close()


def test_a_thousand_messages_a_second_do_not_make_the_page_fall_behind(daemon, chromium):
    from selenium.webdriver.common.by import By

    from ..daemon.twistd_harness import Client

    chromium.get(page_url(daemon))
    wait_for(chromium, lambda d: d.find_element(By.ID, "state").get_attribute("data-state") == "open", "open")
    sender = Client(daemon.port)
    try:
        started = time.monotonic()
        rates = []
        for tick in range(300):  # 3 s at 1,000 messages/s, in bursts of 10 every 10 ms
            sender.send(*(b"n=%d" % (tick * 10 + k) for k in range(10)))
            if tick % 50 == 49:
                rates.append(int(chromium.find_element(By.ID, "rate").text.split()[0]))
            time.sleep(max(0.0, started + (tick + 1) * 0.01 - time.monotonic()))
        sent_at = time.monotonic()
        wait_for(chromium, lambda d: field(d, "n") == "2999", "the last value", timeout=5)
        lag = time.monotonic() - sent_at
    finally:
        sender.close()
    assert lag < 1.0, f"the page showed the last of 3,000 messages {lag:.2f} s after it was sent"
    assert max(rates) >= 500, f"msg/s shown during the burst: {rates}"
