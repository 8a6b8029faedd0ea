"""The library's ``WebSocketGate`` used as docs/browsers.md shows, from the main thread of a plain program."""

from __future__ import annotations

from support import REPO_ROOT, run_python

PROGRAM = """
import sys, threading
sys.path.insert(0, sys.argv[1])
from system.browser.blocking_ws import BlockingWs
from leads_twisted.comm import Callback, create_server, start_server
from leads_twisted.websocket import WebSocketGate

class Relay(Callback):
    def __init__(self):
        super().__init__()
        self.joined = threading.Semaphore(0)

    def on_connect(self, service, connection):
        self.joined.release()

    def on_receive(self, service, msg):
        service.broadcast(msg, exclude=service.sender())

relay = Relay()
server = start_server(create_server(0, relay, interface="127.0.0.1"), parallel=True)
gate = WebSocketGate(server, "tcp:0:interface=127.0.0.1").start()
port = gate.listening_ports()[0].getHost().port
first, second = BlockingWs(port), BlockingWs(port)
assert (first.status, second.status) == (101, 101)
assert relay.joined.acquire(timeout=10) and relay.joined.acquire(timeout=10)  # both links are up
first.send("speed=7")
print("GOT", second.message().decode(), flush=True)
server.connections()[0].send(b"from the main thread")
print("GOT", first.message().decode(), flush=True)
gate.close()
server.close()
print("CLOSE", second.close_code(), flush=True)
"""


def test_a_gate_started_and_closed_from_the_main_thread():
    done = run_python(PROGRAM, timeout=30, args=(str(REPO_ROOT / "tests"),))
    assert done.stdout.splitlines() == ["GOT speed=7", "GOT from the main thread", "CLOSE 1001"], done.describe()
