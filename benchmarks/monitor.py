"""What watching the daemon costs: relay throughput of a real ``twistd leads-comm`` with and without ``--monitor``.

Three daemons, run in turn in each repetition, so that all rows come from the same run on the same machine:

- ``plain``: no observer at all (started by hand: no ``NOTIFY_SOCKET``);
- ``systemd``: as under systemd, whose ``STATUS=`` line counts the traffic (a ``NOTIFY_SOCKET`` stand-in);
- ``monitor``: ``--monitor`` on, and ``/metrics`` scraped once a second while the load runs.

Two workloads per daemon: one-way (one client sends, one receives through the relay) and fan-out (one sends,
``--fanout-clients`` receive each message). The load runs in this process, non-blocking, on loopback; the
table gives the median rate of each and its ratio to ``plain``. The issue's bound: ``monitor`` within 5%.

    python benchmarks/monitor.py            # full run (the lead runs it on a quiet machine)
    python benchmarks/monitor.py --quick    # smoke run: checks that every row completes, times nothing
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
CONFIGS = ("plain", "systemd", "monitor")


@dataclass
class Daemon:
    process: subprocess.Popen[bytes]
    port: int
    monitor: str | None
    log: str
    notify: socket.socket | None


def wait_for(pattern: str, log: str, process: subprocess.Popen[bytes], timeout: float = 20.0) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log, errors="replace") as file:
            found = re.search(pattern, file.read())
        if found:
            return found
        if process.poll() is not None:
            raise SystemExit(f"the daemon ended early; see {log}")
        time.sleep(0.05)
    raise SystemExit(f"{pattern!r} not in {log} within {timeout} s")


@contextlib.contextmanager
def daemon(config: str, directory: str) -> Iterator[Daemon]:
    """A relay daemon in the given configuration, on loopback, ended (by its pid) afterwards."""
    log = os.path.join(directory, f"{config}-{time.monotonic_ns()}.log")
    env = {key: value for key, value in os.environ.items() if key not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    env["PYTHONPATH"] = REPO
    arguments = ["--interface", "127.0.0.1", "--port", "0"]
    notify = None
    if config in ("systemd", "monitor"):
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(os.path.join(directory, f"notify-{time.monotonic_ns()}"))
        notify.setblocking(False)  # never read: datagrams past the queue are dropped by the kernel
        env["NOTIFY_SOCKET"] = notify.getsockname()
    if config == "monitor":
        arguments += ["--monitor", "tcp:0:interface=127.0.0.1"]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [TWISTD, "-n", "--pidfile=", "leads-comm", *arguments], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    try:
        port = int(wait_for(r"listening on 127\.0\.0\.1:(\d+)", log, process).group(1))
        monitor = wait_for(r"monitor on (http://[^/ ]+)/", log, process).group(1) if config == "monitor" else None
        yield Daemon(process, port, monitor, log, notify)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(15)
        if notify is not None:
            notify.close()


#: The scraper, a process of its own as Prometheus is: told "go" on stdin, it scrapes at once and then once a
#: second, printing a line per scrape, until its stdin ends.
_SCRAPER = """
import select, sys, urllib.request
print("ready", flush=True)
sys.stdin.readline()
while True:
    with urllib.request.urlopen(sys.argv[1], timeout=10) as response:
        response.read()
    print("scraped", flush=True)
    if select.select([sys.stdin], [], [], 1.0)[0]:
        break
"""


class Scraper:
    """Scrapes ``/metrics`` as Prometheus would, from another process: at once when started (so every run,
    however short, is scraped while the load runs), then once a second until stopped."""

    def __init__(self, url: str) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _SCRAPER, f"{url}/metrics"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        if self._process.stdout.readline() != b"ready\n":
            raise SystemExit("the scraper did not start")
        self.scrapes = 0

    def start(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(b"go\n")
        self._process.stdin.flush()

    def stop(self) -> None:
        """Stop after the scrape under way; count the scrapes."""
        out, _ = self._process.communicate(timeout=30)  # closes its stdin: the scraper ends
        self.scrapes = out.count(b"scraped")
        if self._process.returncode:
            raise SystemExit(f"the scraper failed (exit status {self._process.returncode})")


def relay_rate(port: int, receivers: int, count: int, size: int, timeout: float) -> float:
    """Messages delivered per second: one client sends ``count`` messages, ``receivers`` clients each get them."""
    payload = (b"x" * (size - 1)) + b";"
    listeners = [socket.create_connection(("127.0.0.1", port)) for _ in range(receivers)]
    sender = socket.create_connection(("127.0.0.1", port))
    try:
        # The relay has every receiver once a message sent after them reaches them all.
        sender.sendall(b"ready;")
        for listener in listeners:
            _read_until(listener, b"ready;", timeout)
            listener.setblocking(False)
        sender.setblocking(False)
        selector = selectors.DefaultSelector()
        for listener in listeners:
            selector.register(listener, selectors.EVENT_READ)
        selector.register(sender, selectors.EVENT_WRITE)
        chunk = payload * 256
        to_send = count * len(payload)
        got = dict.fromkeys(listeners, 0)
        wanted = count  # separators per receiver
        started = time.perf_counter()
        deadline = time.monotonic() + timeout
        sent = 0
        while min(got.values()) < wanted:
            if time.monotonic() > deadline:
                raise SystemExit(f"relay incomplete after {timeout} s: sent {sent} bytes, got {got.values()}")
            for key, _ in selector.select(1.0):
                sock = key.fileobj
                if sock is sender:
                    left = to_send - sent
                    try:
                        sent += sender.send(chunk if left >= len(chunk) else chunk[:left])
                    except BlockingIOError:
                        continue
                    if sent >= to_send:
                        selector.unregister(sender)
                else:
                    data = sock.recv(1 << 20)
                    got[sock] += data.count(b";")
        elapsed = time.perf_counter() - started
        return count * receivers / elapsed
    finally:
        for sock in [*listeners, sender]:
            sock.close()


def _read_until(sock: socket.socket, expected: bytes, timeout: float) -> None:
    sock.settimeout(timeout)
    data = b""
    while expected not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit("the relay closed a link during set-up")
        data += chunk


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small counts, one repetition")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--oneway-count", type=int, default=3_000_000)
    parser.add_argument("--fanout-count", type=int, default=300_000)
    parser.add_argument("--fanout-clients", type=int, default=10)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    if args.quick:
        args.reps, args.oneway_count, args.fanout_count, args.fanout_clients = 1, 2_000, 500, 4
    workloads = {
        f"one-way {args.oneway_count:,} x {args.size} B": (1, args.oneway_count),
        f"fan-out 1 -> {args.fanout_clients}, {args.fanout_count:,} x {args.size} B": (
            args.fanout_clients,
            args.fanout_count,
        ),
    }
    rates: dict[tuple[str, str], list[float]] = {(w, c): [] for w in workloads for c in CONFIGS}
    scrapes: list[int] = []  # per monitor run
    durations: list[float] = []  # seconds of load per monitor run
    with tempfile.TemporaryDirectory(prefix="leads-monitor-bench-") as directory:
        for rep in range(args.reps):
            for config in CONFIGS if rep % 2 == 0 else reversed(CONFIGS):
                with daemon(config, directory) as running:
                    for workload, (receivers, count) in workloads.items():
                        # A scraper of its own for each run, started with the load: each run is scraped.
                        scraper = Scraper(running.monitor) if running.monitor else None
                        if scraper is not None:
                            scraper.start()
                        try:
                            rate = relay_rate(running.port, receivers, count, args.size, 120.0)
                            rates[(workload, config)].append(rate)
                            if scraper is not None:
                                durations.append(count * receivers / rate)
                        finally:
                            if scraper is not None:
                                scraper.stop()
                                scrapes.append(scraper.scrapes)
    seconds = sum(durations)
    print(
        f"relay daemon, {args.reps} repetition(s), medians in messages delivered per second; monitor runs: "
        f"{sum(scrapes)} scrapes over {seconds:.1f} s of load ({min(scrapes, default=0)} at least in each run)"
    )
    print(f"{'workload':<40} {'plain':>12} {'systemd':>12} {'monitor':>12} {'systemd/plain':>14} {'monitor/plain':>14}")
    for workload in workloads:
        medians = {config: statistics.median(rates[(workload, config)]) for config in CONFIGS}
        ratios = [medians[config] / medians["plain"] for config in ("systemd", "monitor")]
        cells = " ".join(f"{medians[config]:>12,.0f}" for config in CONFIGS)
        print(f"{workload:<40} {cells} {ratios[0]:>14.3f} {ratios[1]:>14.3f}")
    if args.quick:
        print("(--quick: a smoke run; the numbers mean nothing)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
