"""Ctrl-C while sending, starting or closing: a ``KeyboardInterrupt`` at any point of ``send``, ``broadcast``,
``start_client`` or ``close`` leaves no lock held and no wake-up lost, so the process keeps working afterwards.

The storm is bounded and runs in a subprocess with a watchdog: SIGALRM fires every 200 µs and its handler raises
``KeyboardInterrupt`` only while the main thread is inside a send. Afterwards a round trip must work, every send
that returned must have arrived (in order, whole), and ``close()`` must return.
"""

from __future__ import annotations

import pytest
from support import run_python

from threaded.api.prelude import script

STORM = """
    import faulthandler
    import signal

    faulthandler.dump_traceback_later(WATCHDOG, exit=True)
    from leads_twisted.comm import Callback, create_client, create_server, start_client, start_server

    class Counting(Callback):
        def __init__(self):
            super().__init__()
            self.cond = threading.Condition()
            self.got = {}
            self.wrong = []
            self.links = []

        def on_connect(self, service, connection):
            with self.cond:
                self.links.append(connection)
                self.cond.notify_all()

        def on_receive(self, service, msg):
            if msg == b"ping":
                service.reply(b"pong")
                return
            if msg == b"pong":
                with self.cond:
                    self.got[b"pong"] = [1]
                    self.cond.notify_all()
                return
            kind, number, _ = msg.split(b":")
            with self.cond:
                seen = self.got.setdefault(kind, [])
                if not number.isdigit() or (seen and int(number) <= seen[-1]):
                    self.wrong.append(msg[:40])
                else:
                    seen.append(int(number))
                self.cond.notify_all()

        def wait(self, predicate, timeout=20.0):
            with self.cond:
                return self.cond.wait_for(predicate, timeout)

    at_server, at_client = Counting(), Counting()
    server = start_server(create_server(0, at_server, interface="127.0.0.1", max_queued=MAX_QUEUED), True)
    client = start_client("127.0.0.1", create_client(server.port(), at_client, max_queued=MAX_QUEUED), True)
    assert at_server.wait(lambda: at_server.links)
    link = at_server.links[0]

    inside = False
    interrupts = 0

    def alarm(signum, frame):
        global interrupts
        if inside:
            interrupts += 1
            raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, alarm)
    accepted = {b"c": [], b"b": [], b"s": []}
    actions = [(b"c", client.send), (b"b", server.broadcast), (b"s", link.send)]
    padding = b"x" * PADDING
    signal.setitimer(signal.ITIMER_REAL, 200e-6, 200e-6)
    started = time.monotonic()
    i = 0
    try:
        while interrupts < INTERRUPTS and time.monotonic() - started < SECONDS:
            i += 1
            kind, action = actions[i % 3] if i % 64 < 48 else actions[0]
            message = kind + b":%d:" % i + padding[: i % PADDING]
            try:
                inside = True
                action(message)
                inside = False
                accepted[kind].append(i)
            except KeyboardInterrupt:
                inside = False
            if i % 500 == 0:
                inside = False
                time.sleep(0.0002)  # a quiet moment, so that the next send may take the direct path
    finally:
        inside = False
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
    storm_seconds = time.monotonic() - started
    say(f"storm: {interrupts} interrupts over {i} sends in {storm_seconds:.1f} s")

    # After the storm: a round trip works, and every send that returned has arrived, in order, whole.
    client.send(b"ping")
    round_trip = at_client.wait(lambda: b"pong" in at_client.got, 20)
    last = {kind: numbers[-1] for kind, numbers in accepted.items() if numbers}
    def reached(where, kind):
        return where.wait(lambda: (where.got.get(kind) or [0])[-1] >= last.get(kind, 0), 10)

    arrived = {b"c": reached(at_server, b"c"), b"b": reached(at_client, b"b"), b"s": reached(at_client, b"s")}
    missing = {}
    for kind, numbers in accepted.items():
        where = at_server if kind == b"c" else at_client
        got = set(where.got.get(kind, []))
        missing[kind.decode()] = len([n for n in numbers if n not in got])
    for kind, numbers in accepted.items():
        where = at_server if kind == b"c" else at_client
        got = where.got.get(kind, [])
        say(kind, "accepted", len(numbers), numbers[-1:], "got", len(got), got[-1:], "wrong", where.wrong[:3])
    closing = time.monotonic()
    client.close()
    server.close()
    result(
        interrupts=interrupts,
        sends=i,
        round_trip=round_trip,
        arrived=all(arrived.values()),
        missing=missing,
        wrong=[repr(m) for m in at_server.wrong + at_client.wrong][:5],
        close_seconds=time.monotonic() - closing,
    )
"""


@pytest.mark.timeout(90)
@pytest.mark.parametrize(("padding", "max_queued"), [(16, 16 * 1024 * 1024), (2000, 64 * 1024)])
def test_keyboard_interrupts_inside_send_leave_nothing_stuck(padding, max_queued):
    """Small messages (batched, direct writes) and larger ones through a small queue (senders wait for room)."""
    code = script(STORM).replace("WATCHDOG", "60").replace("MAX_QUEUED", str(max_queued))
    code = code.replace("INTERRUPTS", "3000").replace("SECONDS", "6.0").replace("PADDING", str(padding))
    outcome = run_python(code, timeout=80).result()
    assert outcome["interrupts"] >= 200, outcome  # the storm really hit the sends
    assert outcome["round_trip"], outcome
    assert outcome["arrived"], outcome
    assert outcome["missing"] == {"c": 0, "b": 0, "s": 0}, outcome
    assert outcome["wrong"] == [], outcome


LIFECYCLE_STORM = """
    import faulthandler
    import signal

    faulthandler.dump_traceback_later(60, exit=True)
    from leads_twisted.comm import Callback, create_client, create_server, start_client, start_server

    class Echo(Callback):
        def on_receive(self, service, msg):
            service.reply(msg)

    server = start_server(create_server(0, Echo(), interface="127.0.0.1"), True)
    inside = False
    interrupts = 0

    def alarm(signum, frame):
        global interrupts
        if inside:
            interrupts += 1
            raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, 200e-6, 200e-6)
    started = time.monotonic()
    cycles = 0
    try:
        while interrupts < 1000 and time.monotonic() - started < 8:
            cycles += 1
            client = create_client(server.port())
            try:
                inside = True
                start_client("127.0.0.1", client, True)
                client.send(b"x")
                client.close()
                inside = False
            except KeyboardInterrupt:
                inside = False
            except OSError:
                inside = False  # interrupted half-way: the client was closed under the send
    finally:
        inside = False
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
    # Afterwards: a new client starts, a round trip works, and every close returns.
    got = threading.Event()

    class Back(Callback):
        def on_receive(self, service, msg):
            got.set()

    client = start_client("127.0.0.1", create_client(server.port(), Back()), True)
    client.send(b"ping")
    round_trip = got.wait(10)
    client.close()
    server.close()
    result(interrupts=interrupts, cycles=cycles, round_trip=round_trip)
"""


@pytest.mark.timeout(90)
def test_keyboard_interrupts_inside_start_and_close_leave_nothing_stuck():
    """Clients started, used and closed in a loop under the storm; before the start's wait was a latch, an
    interrupt inside ``Event.wait`` left its lock wedged and froze the reactor thread."""
    outcome = run_python(script(LIFECYCLE_STORM), timeout=80).result()
    assert outcome["interrupts"] >= 100, outcome
    assert outcome["round_trip"], outcome
