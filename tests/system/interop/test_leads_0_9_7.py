"""Interop with the original ``leads==0.9.7`` (Python 3.12), both ways: our server with its client, its server
with our client; 10,000 messages each way, then one side closes and both sides see on_disconnect.

The original reads 512 bytes at a time and hands out whatever it holds when it finds no separator, so under load
it splits messages (never losing or reordering bytes). What it receives is therefore checked as a byte stream,
and the number of messages it split is reported; what our side receives must be exact, message by message.
"""

from __future__ import annotations

import pytest
from support import Script, free_port
from threaded.api.prelude import PRELUDE

# The module timeout covers the one-time making of the interop venv (a download); the tests themselves take
# seconds and every wait inside them is bounded.
pytestmark = pytest.mark.timeout(400)

COUNT = 10_000

# Both sides build the same messages: tagged with the side and the index, of varying length, no separator.
MESSAGES = """
def message(side, i):
    return side + b"%05d-" % i + b"abcdefghijk"[: i % 11] * (i % 29)
"""

THEIR_SIDE = (
    """
import json, sys, threading, time
from leads.comm import Callback, create_client, create_server, start_client, start_server

ROLE, PORT, COUNT, CLOSER = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
"""
    + MESSAGES
    + """
expected = [message(b"O", i) for i in range(COUNT)]
expected_stream = b"".join(expected)


class Recording(Callback):
    def __init__(self):
        super().__init__()
        self.cond = threading.Condition()
        self.initialized = False
        self.connection = None
        self.pieces = []
        self.size = 0
        self.disconnects = 0
        self.fails = []

    def on_initialize(self, service):
        with self.cond:
            self.initialized = True
            self.cond.notify_all()

    def on_connect(self, service, connection):
        with self.cond:
            self.connection = connection
            self.cond.notify_all()

    def on_receive(self, service, msg):
        with self.cond:
            self.pieces.append(msg)
            self.size += len(msg)
            self.cond.notify_all()

    def on_disconnect(self, service, connection):
        with self.cond:
            self.disconnects += 1
            self.cond.notify_all()

    def on_fail(self, service, error):
        with self.cond:
            self.fails.append(repr(error))
            self.cond.notify_all()


def wait(predicate, what, timeout=30.0):
    with cb.cond:
        ok = cb.cond.wait_for(predicate, timeout)
    if not ok:
        print("TIMEOUT " + what, flush=True)
    return ok


def report(**extra):
    joined = b"".join(cb.pieces)
    wanted = set(expected)
    intact = sum(1 for piece in cb.pieces if piece in wanted)
    print("RESULT " + json.dumps(dict(
        stream_ok=joined == expected_stream + b"ack",
        received_bytes=len(joined),
        pieces=len(cb.pieces),
        intact=intact,
        exact=cb.pieces == expected + [b"ack"],
        disconnects=cb.disconnects,
        fails=cb.fails,
        **extra,
    )), flush=True)


cb = Recording()
if ROLE == "server":
    service = start_server(create_server(PORT, cb), True)
    if not wait(lambda: cb.initialized, "listening", 10):
        report(stage="listen")
        sys.exit(1)
    print("READY", flush=True)
else:
    service = start_client("127.0.0.1", create_client(PORT, cb), True)
if not wait(lambda: cb.connection is not None, "connection"):
    report(stage="connect")
    sys.exit(1)
for i in range(COUNT):
    cb.connection.send(message(b"T", i))
got_all = wait(lambda: cb.size >= len(expected_stream), "all messages")
cb.connection.send(b"ack")
got_ack = wait(lambda: cb.size >= len(expected_stream) + 3, "the ack")
if CLOSER == "them":
    service.close()
saw_disconnect = wait(lambda: cb.disconnects >= 1, "on_disconnect", 10)
report(got_all=got_all, got_ack=got_ack, saw_disconnect=saw_disconnect)
"""
)

OUR_SIDE = (
    PRELUDE
    + """
from leads_twisted.comm import create_client, create_server, start_client, start_server

ROLE, PORT, COUNT, CLOSER = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
watchdog(90)
"""
    + MESSAGES
    + """
expected = [message(b"T", i) for i in range(COUNT)]
events = Events()
if ROLE == "server":
    service = start_server(create_server(0, events, interface="127.0.0.1"), True)
    print("PORT", service.port(), flush=True)
    events.wait_count("connect", 1, timeout=30)
    [link] = events.of("connect")
    send = link.send
else:
    service = start_client("127.0.0.1", create_client(PORT, events), True)
    send = service.send
for i in range(COUNT):
    send(message(b"O", i))
events.wait_count("receive", COUNT, timeout=30)
send(b"ack")
events.wait_count("receive", COUNT + 1, timeout=30)
if CLOSER == "us":
    service.close()
events.wait_count("disconnect", 1, timeout=15)
service.close()
received = events.received()
result(
    exact=received == expected + [b"ack"],
    count=len(received),
    first_difference=next((i for i, (a, b) in enumerate(zip(received, expected)) if a != b), None),
    kinds=sorted(set(events.kinds())),
    disconnects=len(events.of("disconnect")),
    fails=[repr(e) for e in events.of("fail")],
)
"""
)


def check(ours: dict, theirs: dict, closer: str, record_property) -> None:
    # Ours: every message of theirs, exactly, in order, then the ack; on_disconnect once.
    assert ours["exact"] is True, ours
    assert ours["count"] == COUNT + 1
    assert ours["fails"] == []
    assert ours["disconnects"] == 1
    # Theirs: the same bytes in the same order (its reader may cut them into other pieces).
    assert theirs["got_all"] is True, theirs
    assert theirs["got_ack"] is True, theirs
    assert theirs["stream_ok"] is True, theirs
    assert theirs["fails"] == []
    # The side that did not close saw the other's disconnect; the closing side, if it is the original, sees
    # its own link end too.
    assert theirs["saw_disconnect"] is True, theirs
    split = COUNT - theirs["intact"]
    record_property("original_split_messages", split)
    print(f"closer={closer}: the original received {theirs['pieces']} pieces, {split} of {COUNT} messages split")


@pytest.mark.parametrize("closer", ["us", "them"])
def test_our_server_with_their_client(original_python, closer, record_property):
    with Script(OUR_SIDE, args=("server", "0", str(COUNT), closer)) as ours:
        port = ours.expect("PORT", timeout=15)
        with Script(THEIR_SIDE, args=("client", port, str(COUNT), closer), python=original_python) as theirs:
            their_done = theirs.finish(90)
        our_done = ours.finish(30)
    assert our_done.rc == 0, our_done.describe()
    assert their_done.rc == 0, their_done.describe()
    check(our_done.result(), their_done.result(), closer, record_property)


@pytest.mark.parametrize("closer", ["us", "them"])
def test_their_server_with_our_client(original_python, closer, record_property):
    # The original's server listens on 0.0.0.0 at a fixed port; only loopback is used to reach it.
    port = str(free_port())
    with Script(THEIR_SIDE, args=("server", port, str(COUNT), closer), python=original_python) as theirs:
        theirs.expect("READY", timeout=15)
        with Script(OUR_SIDE, args=("client", port, str(COUNT), closer)) as ours:
            our_done = ours.finish(90)
        their_done = theirs.finish(30)
    assert our_done.rc == 0, our_done.describe()
    assert their_done.rc == 0, their_done.describe()
    check(our_done.result(), their_done.result(), closer, record_property)
