"""A bounded soak of leads_twisted: mixed load with connects and disconnects, then an exact count of what was lost.

    python benchmarks/soak.py                 # 10 minutes, then the close phases (30 s)
    python benchmarks/soak.py --minutes 1     # shorter
    python benchmarks/soak.py --close-phases-only --phase-seconds 2   # the close phases alone, a smoke

The server runs in a process of its own (this script with ``--serve``) so that its RSS is measured alone. Against
it, for the whole run:

- steady clients, each sending numbered messages that the server answers (echo), while the server broadcasts
  numbered messages to every client;
- churning clients that connect, exchange a few messages, and close, over and over;
- rude peers that reset a link in the middle of a message, hang up at once, or send more than ``max_message``
  without a separator (the server must drop them and carry on).

At the end the senders stop and every count is settled: each message a client sent is checked against what the
server got from that client, each echo against what was sent, each broadcast against the numbers the steady
clients saw. The report gives the server's RSS at the start (after warm-up), its peak, and at the end, and the
number of messages lost, which must be 0: the exit status is 1 otherwise (or if RSS grew past
``--max-rss-growth-mb``), 2 if the soak could not run.

Then the close phases (``--close-phases-only`` runs them alone, ``--phase-seconds`` sets their length), against
``twistd leads-comm`` (echo mode, with ``soak_counter.Counting`` recording what arrives):

- three clients send unpaced; the daemon gets SIGTERM, is started again on the same port, and they carry on
  (each client reconnects after its ``send`` is refused); the daemon is stopped again at the end;
- meanwhile a process sends unpaced from its main thread while SIGALRM raises ``KeyboardInterrupt`` every 200 µs
  inside ``send`` (a Ctrl-C storm); afterwards a round trip must work and ``close()`` return.

Every message a ``send`` accepted must have reached the daemon, in order: the lost count includes any that did not.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import random
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
#: The server's message bound in the soak: small, so that the rude peers cross it cheaply.
MAX_MESSAGE = 256 * 1024


# The server process.


def serve(broadcast_interval: float) -> None:
    """Run the server under soak; answer commands on stdin (``stats``, ``stop-broadcast``, ``close``)."""
    from leads_twisted import L, Level
    from leads_twisted.comm import Callback, create_server, start_server

    L.debug_level(Level.WARN)
    lock = threading.Lock()
    received: Counter[str] = Counter()
    out_of_order: Counter[str] = Counter()
    next_seq: dict[str, int] = {}
    fails: Counter[str] = Counter()
    links = Counter()

    class Soaked(Callback):
        def on_connect(self, service, connection):
            with lock:
                links["connect"] += 1

        def on_disconnect(self, service, connection):
            with lock:
                links["disconnect"] += 1

        def on_fail(self, service, error):
            with lock:
                fails[type(error).__name__] += 1

        def on_receive(self, service, msg):
            client, seq, kind = msg.split(b":")
            name = client.decode()
            number = int(seq)
            with lock:
                received[name] += 1
                if number != next_seq.get(name, 0):
                    out_of_order[name] += 1
                next_seq[name] = number + 1
            if kind == b"e":
                service.reply(msg)

    server = start_server(create_server(0, Soaked(), max_message=MAX_MESSAGE, interface=LOOPBACK), parallel=True)
    say({"kind": "listening", "port": server.port()})
    broadcasting = threading.Event()
    broadcasting.set()
    sent = [0]

    def broadcast() -> None:
        while broadcasting.is_set():
            server.broadcast(b"b:%d" % sent[0])
            sent[0] += 1
            time.sleep(broadcast_interval)  # the pace of the broadcast

    broadcaster = threading.Thread(target=broadcast, daemon=True)
    broadcaster.start()
    for line in sys.stdin:
        command = line.strip()
        if command == "stats":
            with lock:
                say(
                    {
                        "kind": "stats",
                        "received": dict(received),
                        "out_of_order": dict(out_of_order),
                        "fails": dict(fails),
                        "links": dict(links),
                        "connections": server.num_connections(),
                    }
                )
        elif command == "stop-broadcast":
            broadcasting.clear()
            broadcaster.join(10)
            say({"kind": "broadcast-stopped", "last": sent[0] - 1})
        elif command == "close":
            break
    server.close()
    say({"kind": "closed"})


def say(fields: dict[str, Any]) -> None:
    sys.stdout.write("@@soak " + json.dumps(fields) + "\n")
    sys.stdout.flush()


# Measurements of the server process.


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024 / 1e6
    raise KeyError(field)


def reset_peak(pid: int) -> None:
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


class ServerProcess:
    """The ``--serve`` process, read in a thread; ended by its pid however the soak ends."""

    def __init__(self, broadcast_interval: float) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--broadcast-interval", str(broadcast_interval)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("@@soak "):
                self.replies.put(json.loads(line[len("@@soak ") :]))
        self.replies.put(None)

    def expect(self, kind: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the server did not say {kind!r} within {timeout} s")
            reply = self.replies.get(timeout=left)
            if reply is None:
                raise RuntimeError(f"the server ended (rc={self.proc.poll()}) before saying {kind!r}")
            if reply["kind"] == kind:
                return reply

    def request(self, command: str, kind: str, timeout: float = 30.0) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.expect(kind, timeout)

    def end(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, 9)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)


# The load.


class Ledger:
    """What the clients sent and got, per client name; shared by every load thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent: Counter[str] = Counter()
        self.echoed: Counter[str] = Counter()
        self.errors: list[str] = []
        self.churned = 0
        self.rude = Counter()

    def error(self, text: str) -> None:
        with self.lock:
            if len(self.errors) < 50:
                self.errors.append(text)


def steady_callback(name: str, ledger: Ledger) -> Any:
    from leads_twisted.comm import Callback

    class Steady(Callback):
        """Checks echoes come back in order and broadcasts arrive without a gap."""

        def __init__(self) -> None:
            super().__init__()
            self.changed = threading.Condition()
            self.echo_next = 0
            self.first_broadcast: int | None = None
            self.last_broadcast: int | None = None
            self.broadcast_gaps = 0
            self.disconnects = 0

        def on_receive(self, service, msg):
            with self.changed:
                if msg.startswith(b"b:"):
                    number = int(msg[2:])
                    if self.last_broadcast is None:
                        self.first_broadcast = number
                    elif number != self.last_broadcast + 1:
                        self.broadcast_gaps += abs(number - self.last_broadcast - 1) or 1
                    self.last_broadcast = number
                else:
                    number = int(msg.split(b":")[1])
                    if number != self.echo_next:
                        ledger.error(f"{name}: echo {number} came when {self.echo_next} was due")
                    self.echo_next = number + 1
                    with ledger.lock:
                        ledger.echoed[name] += 1
                self.changed.notify_all()

        def on_disconnect(self, service, connection):
            self.disconnects += 1
            with self.changed:
                self.changed.notify_all()

        def on_fail(self, service, error):
            ledger.error(f"{name}: on_fail {error!r}")

    return Steady()


def steady_sender(name: str, client: Any, ledger: Ledger, rate: float, deadline: float) -> None:
    seq = 0
    while time.monotonic() < deadline:
        try:
            client.send(b"%s:%d:e" % (name.encode(), seq))
        except OSError as error:
            ledger.error(f"{name}: send {seq} refused: {error}")
            return
        with ledger.lock:
            ledger.sent[name] += 1
        seq += 1
        time.sleep(1 / rate)  # the pace of the load


def churner(worker: int, port: int, ledger: Ledger, deadline: float, rng: random.Random, pause: float) -> None:
    """Connect, exchange a few messages, close; again and again until the deadline."""
    from leads_twisted.comm import Callback, create_client, start_client

    class Echoes(Callback):
        """Counts the echoes of one short-lived client (broadcasts reach it too, and are not counted)."""

        def __init__(self, expected: int) -> None:
            super().__init__()
            self.expected = expected
            self.got = 0
            self.done = threading.Event()

        def on_receive(self, service, msg):
            if msg.startswith(b"b:"):
                return
            self.got += 1
            if self.got >= self.expected:
                self.done.set()

    # One name per worker, its numbers running on from link to link: the server checks that every message of
    # the worker arrives once and in order across all of its links, and keeps one entry per worker only.
    name = f"c{worker}"
    seq = 0
    while time.monotonic() < deadline:
        echoes = Echoes(rng.randint(1, 20))
        try:
            client = start_client(LOOPBACK, create_client(port, echoes), parallel=True)
        except OSError as error:
            ledger.error(f"{name}: could not connect: {error!r}")
            continue
        for _ in range(echoes.expected):
            client.send(b"%s:%d:e" % (name.encode(), seq))
            seq += 1
        with ledger.lock:
            ledger.sent[name] += echoes.expected
        if not echoes.done.wait(15):
            ledger.error(f"{name}: {echoes.got} of {echoes.expected} echoes within 15 s")
        client.close()
        with ledger.lock:
            ledger.echoed[name] += echoes.got
            ledger.churned += 1
        time.sleep(pause)  # the pace of the churn


def rude_peer(port: int, ledger: Ledger, deadline: float, rng: random.Random, interval: float) -> None:
    """Now and then: a reset mid-message, a hang-up at once, or more than max_message without a separator."""
    while time.monotonic() < deadline:
        kind = rng.choice(["reset", "hang-up", "oversize"])
        try:
            with socket.create_connection((LOOPBACK, port), timeout=5) as sock:
                if kind == "reset":
                    sock.sendall(b"rude:0:e-but-never-finished")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                elif kind == "oversize":
                    try:
                        sock.sendall(b"x" * (MAX_MESSAGE * 2))
                        # Broadcasts may come first; then the server must end the link, with a reset.
                        for _ in range(1000):
                            if not sock.recv(65536):
                                break
                        outcome = "oversize not reset"
                    except ConnectionError:
                        outcome = "oversize dropped"
                    except OSError as error:
                        outcome = f"oversize: {error!r}"
                    with ledger.lock:
                        ledger.rude[outcome] += 1
        except OSError as error:
            ledger.error(f"rude peer ({kind}) could not connect: {error!r}")
        with ledger.lock:
            ledger.rude[kind] += 1
        time.sleep(interval)  # the pace of the rudeness


def first(counts: dict[str, int], shown: int = 20) -> dict[str, int]:
    """At most ``shown`` entries of a per-client tally, for the report."""
    return dict(list(counts.items())[:shown])


def wait_until(condition: threading.Condition, predicate: Any, timeout: float) -> bool:
    with condition:
        return condition.wait_for(predicate, timeout)


def soak(args: argparse.Namespace) -> int:
    from leads_twisted import L, Level
    from leads_twisted.comm import create_client, start_client

    L.debug_level(Level.WARN)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096 and (hard == resource.RLIM_INFINITY or hard >= 4096):
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))
    duration = args.minutes * 60
    rng = random.Random(args.seed)
    server = ServerProcess(args.broadcast_interval)
    try:
        port = server.expect("listening")["port"]
        ledger = Ledger()
        steady = []
        for i in range(args.steady):
            name = f"s{i}"
            callback = steady_callback(name, ledger)
            client = start_client(LOOPBACK, create_client(port, callback), parallel=True)
            steady.append((name, client, callback))
        for _, _, callback in steady:
            if not wait_until(callback.changed, lambda c=callback: c.last_broadcast is not None, 15):
                raise RuntimeError("a steady client got no broadcast within 15 s")

        began = time.monotonic()
        deadline = began + duration
        threads = [
            threading.Thread(target=steady_sender, args=(name, client, ledger, args.rate, deadline), daemon=True)
            for name, client, _ in steady
        ]
        threads += [
            threading.Thread(
                target=churner,
                args=(w, port, ledger, deadline, random.Random(rng.random()), args.churn_pause),
                daemon=True,
            )
            for w in range(args.churners)
        ]
        threads.append(
            threading.Thread(
                target=rude_peer,
                args=(port, ledger, deadline, random.Random(rng.random()), args.rude_interval),
                daemon=True,
            )
        )
        for thread in threads:
            thread.start()
        time.sleep(min(10.0, duration / 10))  # warm-up before the first measurement
        reset_peak(server.proc.pid)
        rss_start = rss_mb(server.proc.pid)
        print(f"soak: {args.minutes:g} min, server pid {server.proc.pid}, RSS after warm-up {rss_start:.1f} MB")
        next_report = time.monotonic() + 60
        while any(thread.is_alive() for thread in threads) and time.monotonic() < deadline + 60:
            time.sleep(1)  # progress reports only
            if time.monotonic() >= next_report:
                next_report += 60
                with ledger.lock:
                    sent = sum(ledger.sent.values())
                print(
                    f"  {(time.monotonic() - began) / 60:.1f} min: {sent} messages sent, "
                    f"{ledger.churned} churned links, RSS {rss_mb(server.proc.pid):.1f} MB",
                    flush=True,
                )
        stuck = [thread.name for thread in threads if thread.is_alive()]

        # Settle every count.
        last = server.request("stop-broadcast", "broadcast-stopped")["last"]
        for name, _, callback in steady:
            with ledger.lock:
                sent = ledger.sent[name]
            wait_until(callback.changed, lambda c=callback, s=sent: c.echo_next >= s, 30)
            wait_until(callback.changed, lambda c=callback: (c.last_broadcast or 0) >= last, 30)
        stats = server.request("stats", "stats")
        rss_end = rss_mb(server.proc.pid)
        rss_peak = rss_mb(server.proc.pid, "VmHWM")
        dropped_steady = [name for name, _, callback in steady if callback.disconnects]
        for _, client, _ in steady:
            client.close()

        lost_at_server = {}
        for name, sent in ledger.sent.items():
            got = stats["received"].get(name, 0)
            if got != sent:
                lost_at_server[name] = sent - got
        lost_echoes = {
            name: sent - ledger.echoed[name] for name, sent in ledger.sent.items() if ledger.echoed[name] != sent
        }
        broadcast_lost = {}
        for name, _, callback in steady:
            missing = callback.broadcast_gaps + max(last - (callback.last_broadcast or 0), 0)
            if missing:
                broadcast_lost[name] = missing
        lost = (
            sum(abs(n) for n in lost_at_server.values())
            + sum(abs(n) for n in lost_echoes.values())
            + sum(broadcast_lost.values())
        )
        report = {
            "minutes": args.minutes,
            "rss_mb": {"start": round(rss_start, 1), "peak": round(rss_peak, 1), "end": round(rss_end, 1)},
            "messages_sent": sum(ledger.sent.values()),
            "broadcasts": last + 1,
            "churned_links": ledger.churned,
            "rude_peers": dict(ledger.rude),
            "server_links": stats["links"],
            "server_fails": stats["fails"],
            "out_of_order": first(stats["out_of_order"]),
            "lost": lost,
            "lost_at_server": first(lost_at_server),
            "lost_echoes": first(lost_echoes),
            "lost_broadcasts": broadcast_lost,
            "steady_clients_dropped": dropped_steady,
            "stuck_threads": stuck,
            "errors": ledger.errors,
        }
        print("SOAK " + json.dumps(report))
        print(
            f"soak: RSS start {rss_start:.1f} MB, peak {rss_peak:.1f} MB, end {rss_end:.1f} MB; "
            f"{report['messages_sent']} messages, {report['broadcasts']} broadcasts, "
            f"{ledger.churned} churned links, rude peers {dict(ledger.rude)}; messages lost: {lost}"
        )
        failed = []
        if lost:
            failed.append(f"{lost} messages lost")
        if stats["out_of_order"]:
            failed.append("messages out of order at the server")
        if dropped_steady or stuck or ledger.errors:
            failed.append("errors during the soak (see the report)")
        if rss_end - rss_start > args.max_rss_growth_mb:
            failed.append(f"server RSS grew by {rss_end - rss_start:.1f} MB")
        server.request("close", "closed")
        if failed:
            print("soak FAILED: " + "; ".join(failed))
            return 1
        print("soak passed")
        return 0
    except (RuntimeError, TimeoutError, OSError) as error:
        print(f"soak could not run: {error!r}")
        return 2
    finally:
        server.end()


# The close phases: unpaced senders through a SIGTERM restart of the daemon, and a Ctrl-C storm.


class DaemonProcess:
    """``twistd -n leads-comm`` (echo, counting what arrives) on ``port`` (0: any free one); ended by its pid."""

    def __init__(self, directory: Path, port: int, label: str) -> None:
        self.counts = directory / f"counts-{label}.json"
        self.log = directory / f"twistd-{label}.log"
        env = dict(
            os.environ,
            PYTHONUNBUFFERED="1",
            LEADS_SOAK_COUNTS=str(self.counts),
            PYTHONPATH=os.pathsep.join([str(REPO), str(HERE)]),
        )
        for name in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID"):
            env.pop(name, None)
        command = [
            str(Path(sys.executable).with_name("twistd")),
            "-n",
            "--pidfile=",
            "leads-comm",
            f"--port={port}",
            f"--interface={LOOPBACK}",
            "--mode=echo",
            "--slow-policy=drop",  # echoes a sender does not read fast enough are dropped, never the sender
            "--callback=soak_counter:Counting",
        ]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=directory, env=env)

    def wait_listening(self, timeout: float = 30.0) -> int:
        import re

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"listening on 127\.0\.0\.1:(\d+)", self.log.read_text(errors="replace"))
            if found:
                return int(found.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)  # polling the daemon's log for its first line
        raise RuntimeError(f"the daemon did not listen within {timeout} s:\n{self.log.read_text(errors='replace')}")

    def stop(self, timeout: float = 60.0) -> float:
        """SIGTERM, and wait for the end; returns how long it took."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout)
        return time.monotonic() - started

    def received(self) -> dict[str, Any]:
        return json.loads(self.counts.read_text())["senders"] if self.counts.exists() else {}

    def end(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, 9)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)


class Port:
    """The port the current daemon listens on (the same after a restart); 0 while none does."""

    def __init__(self) -> None:
        self.number = 0


def unpaced_sender(name: str, port: Port, stop: threading.Event, accepted: Counter[str], errors: list[str]) -> None:
    """Send ``name:seq`` as fast as ``send`` takes them; after a refusal (the daemon said disconnect) connect
    again and go on from the first number not accepted."""
    from leads_twisted.comm import Callback, create_client, start_client

    seq = 0
    while not stop.is_set():
        try:
            # Probed first, so that a daemon still restarting costs no error line in the log.
            socket.create_connection((LOOPBACK, port.number), timeout=2).close()
            client = start_client(LOOPBACK, create_client(port.number, Callback(), connect_timeout=2), parallel=True)
        except OSError:
            stop.wait(0.1)  # the daemon is restarting: try again shortly
            continue
        try:
            while not stop.is_set():
                client.send(b"%s:%d" % (name.encode(), seq))
                seq += 1
                accepted[name] = seq
        except OSError:
            pass  # refused: the daemon is stopping
        except Exception as error:
            errors.append(f"{name}: {error!r}")
        client.close()


def storm_child(port: int, seconds: float) -> None:
    """The Ctrl-C storm, in a process of its own: unpaced sends from the main thread, interrupted inside ``send``."""
    from leads_twisted.comm import Callback, create_client, start_client

    echoed = threading.Event()

    class RoundTrip(Callback):
        def on_receive(self, service: Any, msg: bytes) -> None:
            if msg == b"storm-rt:0":
                echoed.set()

    client = start_client(LOOPBACK, create_client(port, RoundTrip()), parallel=True)
    inside = False
    interrupts = 0

    def alarm(signum: int, frame: Any) -> None:
        nonlocal interrupts
        if inside:
            interrupts += 1
            raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, alarm)
    interrupted: list[int] = []
    seq = 0
    deadline = time.monotonic() + seconds
    signal.setitimer(signal.ITIMER_REAL, 200e-6, 200e-6)
    try:
        while time.monotonic() < deadline:
            try:
                inside = True
                client.send(b"storm:%d" % seq)
                inside = False
            except KeyboardInterrupt:
                inside = False
                interrupted.append(seq)  # may or may not have gone: never counted as accepted
            seq += 1
    finally:
        inside = False
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
    client.send(b"storm-rt:0")
    round_trip = echoed.wait(30)
    closing = time.monotonic()
    client.close()
    say(
        {
            "kind": "storm",
            "sent": seq,
            "interrupts": interrupts,
            "interrupted": interrupted,
            "round_trip": round_trip,
            "close_seconds": round(time.monotonic() - closing, 2),
        }
    )


def lost_between(accepted: int, runs: list[dict[str, Any]]) -> tuple[int, int]:
    """Of numbers ``0 .. accepted-1``, how many no run received, and how many came out of order."""
    received = 0
    out_of_order = 0
    for run in runs:
        received += run["count"]
        out_of_order += run["out_of_order"]
    return max(accepted - received, 0) + sum(len(run["skipped"]) for run in runs), out_of_order


def close_phases(seconds: float) -> dict[str, Any]:
    """Run both close phases for about ``3 * seconds`` and count what was lost."""
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="leads-soak-"))
    first = DaemonProcess(directory, 0, "first")
    daemons = [first]
    port = Port()
    stop = threading.Event()
    accepted: Counter[str] = Counter()
    errors: list[str] = []
    storm: dict[str, Any] = {}
    try:
        port.number = first.wait_listening()
        senders = [
            threading.Thread(target=unpaced_sender, args=(f"u{k}", port, stop, accepted, errors), daemon=True)
            for k in range(3)
        ]
        for thread in senders:
            thread.start()
        stop.wait(seconds)  # the length of the first run
        first_stop = first.stop()
        second = DaemonProcess(directory, port.number, "second")
        daemons.append(second)
        second.wait_listening()
        child = subprocess.run(
            [sys.executable, __file__, "--storm-child", str(port.number), "--phase-seconds", str(seconds)],
            capture_output=True,
            text=True,
            timeout=seconds + 120,
        )
        for line in child.stdout.splitlines():
            if line.startswith("@@soak "):
                storm = json.loads(line[len("@@soak ") :])
        if not storm:
            errors.append(f"the storm child reported nothing (rc={child.returncode}): {child.stderr[-2000:]}")
        stop.set()
        second_stop = second.stop()
        for thread in senders:
            thread.join(30)
        stuck = [thread.name for thread in senders if thread.is_alive()]
        runs = [daemon.received() for daemon in daemons]
        lost: dict[str, int] = {}
        out_of_order = 0
        for name, count in accepted.items():
            missing, wrong = lost_between(count, [run[name] for run in runs if name in run])
            out_of_order += wrong
            if missing:
                lost[name] = missing
        if storm:
            got = runs[1].get("storm", {"count": 0, "first": 0, "last": -1, "out_of_order": 0, "skipped": []})
            interrupted = set(storm["interrupted"])
            missing = {n for n in got["skipped"] if n not in interrupted}
            missing |= {n for n in range(got["last"] + 1, storm["sent"]) if n not in interrupted}
            out_of_order += got["out_of_order"]
            if missing:
                lost["storm"] = len(missing)
            if not storm["round_trip"]:
                errors.append("no round trip after the Ctrl-C storm")
        return {
            "accepted": dict(accepted),
            "lost": lost,
            "out_of_order": out_of_order,
            "sigterm_stop_seconds": [round(first_stop, 2), round(second_stop, 2)],
            "storm": {k: v for k, v in storm.items() if k != "interrupted"},
            "stuck_senders": stuck,
            "errors": errors[:20],
        }
    finally:
        stop.set()
        for daemon in daemons:
            daemon.end()


def report_close_phases(phases: dict[str, Any]) -> list[str]:
    """Print the close phases' line; return what failed."""
    lost = sum(phases["lost"].values())
    storm = phases["storm"]
    print(
        f"close phases: {sum(phases['accepted'].values())} messages accepted through a SIGTERM restart "
        f"(stops took {phases['sigterm_stop_seconds']} s), Ctrl-C storm of {storm.get('interrupts', 0)} interrupts "
        f"over {storm.get('sent', 0)} sends; messages lost: {lost}"
    )
    failed = []
    if lost:
        failed.append(f"{lost} messages lost in the close phases")
    if phases["out_of_order"]:
        failed.append("messages out of order in the close phases")
    if phases["stuck_senders"] or phases["errors"]:
        failed.append("errors in the close phases (see the report)")
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the load runs (default 10)")
    parser.add_argument("--steady", type=int, default=8, help="steady clients (default 8)")
    parser.add_argument("--rate", type=float, default=100.0, help="messages per second per steady client")
    parser.add_argument("--churners", type=int, default=3, help="threads connecting and disconnecting clients")
    parser.add_argument("--churn-pause", type=float, default=0.02, help="seconds between churned links")
    parser.add_argument("--rude-interval", type=float, default=0.5, help="seconds between rude peers")
    parser.add_argument("--broadcast-interval", type=float, default=0.01, help="seconds between broadcasts")
    parser.add_argument("--max-rss-growth-mb", type=float, default=50.0, help="fail if RSS grows more than this")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--phase-seconds", type=float, default=10.0, help="length of each close phase (default 10)")
    parser.add_argument("--close-phases-only", action="store_true", help="run only the close phases")
    parser.add_argument("--no-close-phases", action="store_true", help="run only the mixed load")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--storm-child", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.broadcast_interval)
        return 0
    if args.storm_child:
        storm_child(args.storm_child, args.phase_seconds)
        return 0
    if args.minutes <= 0 or args.phase_seconds <= 0:
        parser.error("--minutes and --phase-seconds must be positive")
    status = 0 if args.close_phases_only else soak(args)
    if status == 2 or args.no_close_phases:
        return status
    return max(status, run_close_phases(args.phase_seconds))


def run_close_phases(seconds: float) -> int:
    """The close phases, with their report; the exit status as for the soak."""
    from leads_twisted import L, Level

    L.debug_level(Level.WARN)
    try:
        phases = close_phases(seconds)
    except (RuntimeError, TimeoutError, OSError, subprocess.SubprocessError) as error:
        print(f"close phases could not run: {error!r}")
        return 2
    print("SOAK-CLOSE " + json.dumps(phases))
    failed = report_close_phases(phases)
    if failed:
        print("close phases FAILED: " + "; ".join(failed))
        return 1
    print("close phases passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
