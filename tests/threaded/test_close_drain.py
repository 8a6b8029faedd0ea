"""A graceful close delivers everything ``send`` accepted while the peer keeps reading, however slowly; a peer
that takes nothing for ``close_timeout`` seconds is cut, and ``on_fail`` says what it did not get.

These are the issue's scenarios, through the threaded API, each in a subprocess with a watchdog.
"""

from __future__ import annotations

import json

import pytest
from support import Script, run_python

from threaded.api.prelude import script

SLOW_SERVER = """
    watchdog(100)
    from leads_twisted.comm import Callback, create_client, create_server, start_client, start_server

    class Slow(Callback):
        # Spends 20 µs on each message, and checks that the numbers come in order.
        def __init__(self):
            super().__init__()
            self.cond = threading.Condition()
            self.got = 0
            self.out_of_order = 0
            self.disconnects = 0

        def on_receive(self, service, msg):
            until = time.perf_counter() + 20e-6
            while time.perf_counter() < until:
                pass
            with self.cond:
                if int(msg) != self.got:
                    self.out_of_order += 1
                self.got += 1
                self.cond.notify_all()

        def on_disconnect(self, service, connection):
            with self.cond:
                self.disconnects += 1
                self.cond.notify_all()

    N = 100_000
    slow, events = Slow(), Events()
    server = start_server(create_server(0, slow, interface="127.0.0.1"), True)
    client = start_client("127.0.0.1", create_client(server.port(), events), True)

    def sender():
        for i in range(N):
            client.send(b"%015d" % i)  # 16 bytes on the wire

    thread = threading.Thread(target=sender)
    thread.start()
    thread.join()
    closing = time.monotonic()
    client.close()  # at once: most of the messages are still on their way
    close_seconds = time.monotonic() - closing
    with slow.cond:
        slow.cond.wait_for(lambda: slow.disconnects, 60)
    result(
        got=slow.got,
        out_of_order=slow.out_of_order,
        close_seconds=close_seconds,
        fails=[repr(e) for e in events.of("fail")],
    )
    server.close()
"""


@pytest.mark.timeout(120)
def test_a_client_closing_at_once_delivers_everything_to_a_slow_server():
    outcome = run_python(script(SLOW_SERVER), timeout=110).result()
    assert outcome["got"] == 100_000, outcome
    assert outcome["out_of_order"] == 0, outcome
    assert outcome["fails"] == [], outcome
    # close() waited for the drain (the server needs about 2 s of work for what was still on its way).
    assert outcome["close_seconds"] > 0.5, outcome


THREE_UNPACED = """
    watchdog(100)
    from leads_twisted.comm import Callback, create_client, create_server, start_client, start_server

    class Counting(Callback):
        def __init__(self):
            super().__init__()
            self.lock = threading.Lock()
            self.got = {}
            self.out_of_order = 0

        def on_receive(self, service, msg):
            name, seq = msg.split(b":")
            with self.lock:
                expected = self.got.get(name, 0)
                if int(seq) != expected:
                    self.out_of_order += 1
                self.got[name] = expected + 1

    counting = Counting()
    server = start_server(create_server(0, counting, interface="127.0.0.1"), True)
    events = [Events() for _ in range(3)]
    clients = [start_client("127.0.0.1", create_client(server.port(), e), True) for e in events]
    accepted = [0, 0, 0]
    refusals = [None, None, None]

    def sender(k):
        name = b"c%d" % k
        i = 0
        while True:
            try:
                clients[k].send(name + b":%d" % i)
            except OSError as error:
                refusals[k] = str(error)
                return
            i += 1
            accepted[k] = i

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(3)]
    for thread in threads:
        thread.start()
    threading.Event().wait(LOAD_SECONDS)  # the length of the load, not a synchronisation
    closing = time.monotonic()
    server.close()
    close_seconds = time.monotonic() - closing
    for thread in threads:
        thread.join(30)
    for e in events:
        e.wait_count("disconnect", 1, timeout=30)
    with counting.lock:
        got = [counting.got.get(b"c%d" % k, 0) for k in range(3)]
    result(
        accepted=accepted,
        got=got,
        out_of_order=counting.out_of_order,
        refusals=refusals,
        stuck=[t.is_alive() for t in threads],
        close_seconds=close_seconds,
        fails=[repr(f) for e in events for f in e.of("fail")],
    )
"""


@pytest.mark.timeout(120)
def test_three_unpaced_clients_and_a_server_close_lose_nothing():
    outcome = run_python(script(THREE_UNPACED).replace("LOAD_SECONDS", "2.0"), timeout=110).result()
    assert outcome["stuck"] == [False, False, False], outcome
    assert min(outcome["accepted"]) > 1000, outcome
    assert outcome["got"] == outcome["accepted"], outcome
    assert outcome["out_of_order"] == 0, outcome
    assert all("said disconnect" in (r or "") for r in outcome["refusals"]), outcome
    assert outcome["fails"] == [], outcome


SILENT_PEER = """
    watchdog(60)
    import socket
    from leads_twisted.comm import CloseCut, create_server, start_server

    events = Events()
    server = start_server(create_server(0, events, interface="127.0.0.1", close_timeout=1.0), True)
    silent = socket.socket()
    silent.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: the server keeps the rest
    silent.connect(("127.0.0.1", server.port()))
    events.wait_count("connect", 1)
    [link] = events.of("connect")
    for i in range(20_000):
        link.send(b"%099d" % i)  # 2 MB, which the peer never reads
    closing = time.monotonic()
    server.close()
    close_seconds = time.monotonic() - closing
    [cut] = [f for f in events.of("fail") if isinstance(f, CloseCut)]
    result(
        close_seconds=close_seconds,
        message=str(cut),
        unsent_bytes=cut.unsent_bytes,
        unsent_messages=cut.unsent_messages,
        disconnects=len(events.of("disconnect")),
    )
    silent.close()
"""


@pytest.mark.timeout(60)
def test_a_peer_that_takes_nothing_is_cut_after_close_timeout_and_on_fail_says_what_was_lost():
    ran = run_python(script(SILENT_PEER), timeout=50)
    outcome = ran.result()
    assert 1.0 <= outcome["close_seconds"] < 4.0, outcome
    assert outcome["disconnects"] == 1, outcome
    assert outcome["unsent_bytes"] > 1_000_000, outcome
    # Messages are counted where their bytes can be read (Twisted's buffer), not in the kernel's queue.
    assert outcome["unsent_messages"] is None or 10_000 < outcome["unsent_messages"] <= 20_001, outcome
    assert "took nothing for 1 s while closing" in outcome["message"], outcome
    assert "not delivered" in outcome["message"], outcome
    assert "took nothing for 1 s while closing" in ran.stdout + ran.stderr, "a warning is logged"


SLOW_READER = """
    watchdog(60)
    import socket
    from leads_twisted.comm import create_server, start_server

    events = Events()
    server = start_server(create_server(0, events, interface="127.0.0.1", close_timeout=0.5), True)
    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader.connect(("127.0.0.1", server.port()))
    events.wait_count("connect", 1)
    [link] = events.of("connect")
    for i in range(2_000):
        link.send(b"%099d" % i)  # 200 kB: at 40 kB/s the peer needs about 5 s, ten times close_timeout
    received = bytearray()

    def read_slowly():
        while True:
            threading.Event().wait(0.05)  # the reader's pace
            chunk = reader.recv(2048)
            if not chunk:
                return
            received.extend(chunk)
            if received.endswith(b"disconnect;"):
                reader.sendall(b"disconnect;")
                reader.close()
                return

    thread = threading.Thread(target=read_slowly)
    thread.start()
    closing = time.monotonic()
    server.close()
    close_seconds = time.monotonic() - closing
    thread.join(30)
    messages = bytes(received).split(b";")
    result(
        close_seconds=close_seconds,
        count=len([m for m in messages if m and m != b"disconnect"]),
        last=messages[-2].decode() if len(messages) > 1 else "",
        fails=[repr(f) for f in events.of("fail")],
    )
"""


@pytest.mark.timeout(60)
def test_a_slow_but_steady_reader_gets_everything_however_long_past_close_timeout():
    outcome = run_python(script(SLOW_READER), timeout=50).result()
    assert outcome["count"] == 2_000, outcome
    assert outcome["last"] == "disconnect", outcome
    assert outcome["fails"] == [], outcome
    assert outcome["close_seconds"] > 1.0, outcome  # well past close_timeout: the drain was waited for


COUNTING_SERVER = """
    from leads_twisted.comm import Callback, create_server, start_server

    class Slow(Callback):
        # 40 µs of work per message: the last ones arrive seconds after the sender's process began to exit.
        def __init__(self):
            super().__init__()
            self.got = 0
            self.out_of_order = 0

        def on_receive(self, service, msg):
            until = time.perf_counter() + 40e-6
            while time.perf_counter() < until:
                pass
            if int(msg) != self.got:
                self.out_of_order += 1
            self.got += 1

        def on_disconnect(self, service, connection):
            result(got=self.got, out_of_order=self.out_of_order)

    server = start_server(create_server(0, Slow(), interface="127.0.0.1"), True)
    say("PORT", server.port())
    sys.stdin.read()
"""

EXITING_CLIENT = """
    from leads_twisted.comm import create_client, start_client

    client = start_client("127.0.0.1", create_client(int(sys.argv[1])), True)
    for i in range(150_000):
        client.send(b"%015d" % i)
    say("SENT")
    # No close(): the interpreter's exit closes the client, after everything it accepted.
"""


@pytest.mark.timeout(120)
def test_interpreter_exit_delivers_everything_accepted():
    with Script(script(COUNTING_SERVER).replace("sys.stdin.read()", "threading.Event().wait(100)")) as server:
        port = server.expect("PORT", timeout=30)
        exiting = run_python(script(EXITING_CLIENT), args=(port,), timeout=60)
        assert "SENT" in exiting.stdout, exiting.describe()
        outcome = json.loads(server.expect("RESULT", timeout=60))
    assert outcome == {"got": 150_000, "out_of_order": 0}, outcome
    # The sender's exit took as long as the slow server needed: it waited for the drain.
    assert exiting.seconds > 2.0, exiting.seconds
