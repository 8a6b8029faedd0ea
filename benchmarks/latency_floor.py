"""Where a round trip's time goes: one echo server per design, the same blocking client for all of them.

The ping-pong workload of ``run.py`` compares whole stacks. This one holds the client fixed (a plain blocking
socket in its own process) and varies only the server, from the least a Python process can do to the full
library, so each step's cost shows as a ratio to the one before:

- ``blocking``: a thread per connection, blocking ``recv`` and ``send`` (the original LEADS's design);
- ``epoll``: one thread, ``select.epoll``, non-blocking ``recv`` and ``send``, no framework;
- ``twisted-direct``: a Twisted ``Protocol`` whose ``dataReceived`` writes to the socket itself;
- ``twisted``: the same with ``transport.write``, which writes on the reactor's next turn;
- ``leads_twisted``: a ``Server`` whose ``on_receive`` calls ``service.reply``.

Each server echoes every 64-byte message (with its ``;``); the client times ``--count`` round trips after
``--warmup``. Runs are interleaved and repeated; the table gives medians and the server's CPU per echo.

    python benchmarks/latency_floor.py              # 5 runs of 20,000 round trips each, about a minute
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

LOOPBACK = "127.0.0.1"
SERVERS = ("blocking", "epoll", "twisted-direct", "twisted", "leads_twisted")
MESSAGE = b"m" * 64 + b";"
#: Every process ends by itself after this long, whatever happens to the runner.
LIFETIME_SECONDS = 120.0


def listen() -> socket.socket:
    listener = socket.socket()
    listener.bind((LOOPBACK, 0))
    listener.listen(16)
    return listener


def announce(port: int) -> None:
    print(f"port {port}", flush=True)


def no_delay(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def serve_blocking() -> None:
    listener = listen()
    announce(listener.getsockname()[1])

    def echo(connection: socket.socket) -> None:
        no_delay(connection)
        while data := connection.recv(65536):
            connection.sendall(data)

    while True:
        connection, _ = listener.accept()
        threading.Thread(target=echo, args=(connection,), daemon=True).start()


def serve_epoll() -> None:
    listener = listen()
    listener.setblocking(False)
    poller = select.epoll()
    poller.register(listener.fileno(), select.EPOLLIN)
    connections: dict[int, socket.socket] = {}
    announce(listener.getsockname()[1])
    while True:
        for fd, _ in poller.poll():
            if fd == listener.fileno():
                connection, _ = listener.accept()
                connection.setblocking(False)
                no_delay(connection)
                connections[connection.fileno()] = connection
                poller.register(connection.fileno(), select.EPOLLIN)
                continue
            connection = connections[fd]
            data = connection.recv(65536)
            if not data:
                poller.unregister(fd)
                connections.pop(fd).close()
                continue
            connection.send(data)  # 65 bytes into an empty send buffer: all of it goes


def serve_twisted(direct: bool) -> None:
    from twisted.internet import protocol, reactor

    class Echo(protocol.Protocol):
        def connectionMade(self) -> None:
            self.transport.setTcpNoDelay(True)  # type: ignore[union-attr]
            self.socket = self.transport.getHandle()  # type: ignore[union-attr]

        def dataReceived(self, data: bytes) -> None:
            if direct:
                self.socket.send(data)
            else:
                self.transport.write(data)  # type: ignore[union-attr]

    port = reactor.listenTCP(0, protocol.Factory.forProtocol(Echo), interface=LOOPBACK)  # type: ignore[attr-defined]
    announce(port.getHost().port)
    reactor.run()  # type: ignore[attr-defined]


def serve_leads_twisted() -> None:
    from leads_twisted.comm import Callback, Server

    class Echo(Callback):
        def on_receive(self, service: Any, msg: bytes) -> None:
            service.reply(msg)

    server = Server(0, Echo(), interface=LOOPBACK).start(parallel=True)
    announce(server.port())
    threading.Event().wait(LIFETIME_SECONDS)


def ping(port: int, count: int, warmup: int) -> None:
    """Time round trips from a blocking socket; print p50 and p99 in microseconds."""
    sock = socket.create_connection((LOOPBACK, port))
    no_delay(sock)
    clock = time.perf_counter_ns
    times: list[int] = []
    for index in range(warmup + count):
        started = clock()
        sock.sendall(MESSAGE)
        got = b""
        while not got.endswith(b";"):
            chunk = sock.recv(65536)
            if not chunk:
                raise SystemExit("the server closed the link")
            got += chunk
        if index >= warmup:
            times.append(clock() - started)
        if got != MESSAGE:
            raise SystemExit(f"wrong echo: {got[:80]!r}")
    times.sort()
    print(f"p50 {times[len(times) // 2] / 1000:.1f} p99 {times[int(len(times) * 0.99)] / 1000:.1f}", flush=True)
    sock.close()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, from ``/proc``."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_once(kind: str, count: int, warmup: int) -> tuple[float, float, float]:
    """One server of ``kind`` and one client: p50 µs, p99 µs, server CPU µs per echo."""
    me = os.path.abspath(__file__)
    server = subprocess.Popen([sys.executable, me, "serve", kind], stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("port "):
            raise SystemExit(f"{kind} server did not start: {line!r}")
        port = int(line.split()[1])
        before = cpu_seconds(server.pid)
        client = subprocess.run(
            [sys.executable, me, "ping", str(port), str(count), str(warmup)],
            capture_output=True,
            text=True,
            timeout=LIFETIME_SECONDS,
        )
        after = cpu_seconds(server.pid)
        if client.returncode != 0:
            raise SystemExit(f"the client of {kind} failed: {client.stderr.strip()[-400:]}")
        _, p50, _, p99 = client.stdout.split()
        return float(p50), float(p99), (after - before) * 1e6 / (count + warmup)
    finally:
        server.kill()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", nargs="?", default="run", choices=["run", "serve", "ping"])
    parser.add_argument("arguments", nargs="*")
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    if args.role == "serve":
        threading.Timer(LIFETIME_SECONDS, os._exit, (1,)).start()
        kind = args.arguments[0]
        if kind == "blocking":
            serve_blocking()
        elif kind == "epoll":
            serve_epoll()
        elif kind.startswith("twisted"):
            serve_twisted(direct=kind == "twisted-direct")
        else:
            serve_leads_twisted()
        return
    if args.role == "ping":
        port, count, warmup = map(int, args.arguments)
        ping(port, count, warmup)
        return
    results: dict[str, list[tuple[float, float, float]]] = {kind: [] for kind in SERVERS}
    for rep in range(args.reps):
        order = SERVERS[rep % len(SERVERS) :] + SERVERS[: rep % len(SERVERS)]
        for kind in order:
            results[kind].append(run_once(kind, args.count, args.warmup))
    print(f"{args.reps} runs of {args.count:,} round trips (+{args.warmup:,} warm-up), interleaved; medians.")
    print(f"Load average (1 min) after the run: {os.getloadavg()[0]:.2f}\n")
    print("| server | p50 µs | p99 µs | server CPU µs per echo | p50 vs the row above | p50 vs blocking |")
    print("|---|---|---|---|---|---|")
    base = previous = None
    for kind in SERVERS:
        p50 = statistics.median(r[0] for r in results[kind])
        p99 = statistics.median(r[1] for r in results[kind])
        cpu = statistics.median(r[2] for r in results[kind])
        base = base or p50
        step = f"{p50 / previous:.2f}x" if previous else ""
        print(f"| {kind} | {p50:.1f} | {p99:.1f} | {cpu:.1f} | {step} | {p50 / base:.2f}x |")
        previous = p50


if __name__ == "__main__":
    main()
