"""The server under test, run as its own process so that its memory and CPU time can be measured alone.

Started by ``harness.ServerProcess`` with one JSON argument: ``port``, ``options`` (keyword options of
``create_server``), ``tls`` (PEM paths, or null), ``nofile`` (raise RLIMIT_NOFILE to this), ``events`` (print
connect/disconnect lines). It uses the threaded API, as a user's program would, and answers on stdout with lines
``@@ {json}``; anything else on stdout is the library's own log.

What it does with messages: ``echo:X`` is answered with ``X`` to the sender alone; ``seq:N`` is recorded in
arrival order. Commands, one per stdin line:

- ``stats``: counters, connections, dropped messages, per-peer connect and disconnect counts.
- ``broadcast START COUNT SIZE``: broadcast messages START .. START+COUNT-1, each SIZE bytes, numbered.
- ``wait WHAT N TIMEOUT``: wait until ``connections`` / ``received`` / ``connects`` reaches N (at most
  TIMEOUT seconds) and say where it got.
- ``close``: close gracefully, report every ``seq:`` number received, and exit. End of stdin does the same.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from collections import Counter
from typing import Any

from leads_twisted import L
from leads_twisted.comm import Callback, create_server, start_server
from leads_twisted.comm.tls import TLSOptions
from leads_twisted.logger import Level

_print_lock = threading.Lock()


def emit(kind: str, **fields: Any) -> None:
    line = "@@ " + json.dumps({"kind": kind, **fields})
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def numbered(index: int, size: int) -> bytes:
    """Message ``index`` of a broadcast: its number in ten digits, padded with letters to ``size`` bytes."""
    head = b"%010d" % index
    return head + b"x" * max(size - len(head), 0)


class Recorder(Callback):
    """Counts everything, answers ``echo:``, records ``seq:`` numbers. Runs in the reactor thread."""

    def __init__(self, events: bool) -> None:
        super().__init__()
        self.events = events
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.fails: Counter[str] = Counter()
        self.connects: Counter[str] = Counter()
        self.disconnects: Counter[str] = Counter()
        self.seq: list[int] = []
        self.received = 0

    def on_connect(self, service, connection):
        with self.lock:
            self.counts["connect"] += 1
            self.connects[str(connection)] += 1
        if self.events:
            emit("connect", peer=str(connection))

    def on_receive(self, service, msg):
        with self.lock:
            self.received += 1
        if msg.startswith(b"echo:"):
            service.reply(msg[5:])
        elif msg.startswith(b"seq:"):
            with self.lock:
                self.seq.append(int(msg[4:].rstrip(b".")))

    def on_fail(self, service, error):
        with self.lock:
            self.fails[type(error).__name__] += 1
        emit("fail", type=type(error).__name__, message=str(error))

    def on_disconnect(self, service, connection):
        with self.lock:
            self.counts["disconnect"] += 1
            self.disconnects[str(connection)] += 1
        if self.events:
            emit("disconnect", peer=str(connection))


def main() -> None:
    config = json.loads(sys.argv[1])
    L.debug_level(Level.INFO)
    if config.get("nofile"):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = min(config["nofile"], hard) if hard != resource.RLIM_INFINITY else config["nofile"]
        if soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    options = dict(config.get("options", {}))
    if config.get("tls"):
        options["tls"] = TLSOptions(**config["tls"])
    recorder = Recorder(bool(config.get("events", True)))
    server = create_server(config.get("port", 0), recorder, interface="127.0.0.1", **options)
    start_server(server, parallel=True)
    emit("listening", port=server.port(), nofile=resource.getrlimit(resource.RLIMIT_NOFILE)[0])

    def stats() -> dict[str, Any]:
        connections = server.connections()
        with recorder.lock:
            return {
                "connections": len(connections),
                "refused": server.refused_connections,
                "dropped": {str(c): c.dropped_messages for c in connections if c.dropped_messages},
                "counts": dict(recorder.counts),
                "fails": dict(recorder.fails),
                "received": recorder.received,
                "seq_count": len(recorder.seq),
                "repeated_connects": [peer for peer, n in recorder.connects.items() if n != 1],
                "repeated_disconnects": [peer for peer, n in recorder.disconnects.items() if n != 1],
                "disconnected_peers": len(recorder.disconnects),
            }

    def measure(what: str) -> int:
        if what == "connections":
            return server.num_connections()
        with recorder.lock:
            return recorder.received if what == "received" else recorder.counts["connect"]

    def reached(value: int, target: int) -> bool:
        # Connections go up and down, so that one is waited for exactly; the other counts only grow.
        return value == target if words[1] == "connections" else value >= target

    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "stats":
            emit("stats", **stats())
        elif words[0] == "broadcast":
            start, count, size = (int(word) for word in words[1:4])
            for index in range(start, start + count):
                server.broadcast(numbered(index, size))
            emit("broadcast-done", start=start, count=count)
        elif words[0] == "wait":
            what, target, timeout = words[1], int(words[2]), float(words[3])
            deadline = time.monotonic() + timeout
            while not reached(measure(what), target) and time.monotonic() < deadline:
                time.sleep(0.01)
            emit("waited", what=what, value=measure(what), target=target)
        elif words[0] == "close":
            break
    server.close()
    final = stats()
    with recorder.lock:
        seq = list(recorder.seq)
    emit("closed", seq=seq, state=server.state.value, **final)


if __name__ == "__main__":
    main()
