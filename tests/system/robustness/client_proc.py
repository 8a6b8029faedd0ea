"""A reconnecting client under test, run as its own process with the threaded API, as a user's program would.

Started by the tests with one JSON argument: ``port``, ``queue`` (``queue_while_disconnected`` in bytes),
``backoff`` (``Backoff`` fields), ``mode`` and the mode's settings. Answers on stdout with ``@@ {json}`` lines;
takes commands on stdin.

- ``stream``: sends ``seq:N`` for N = 0, 1, ... every ``interval`` seconds from the main thread (at most
  ``max_count`` messages and ``max_seconds``), noting which sends were accepted, until ``stop``. Then it waits
  (bounded) to be connected, closes gracefully and reports ``done`` with every accepted N.
- ``fill``: while nothing listens, sends ``seq:N`` padded to ``size`` bytes until ``send`` refuses one, and
  reports ``filled``; on ``stop`` it waits (bounded) to be connected, closes and reports ``done``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

from leads_twisted import L
from leads_twisted.comm import Callback, create_client, start_client
from leads_twisted.comm.link_policy import Backoff
from leads_twisted.comm.reactor_thread import runner
from leads_twisted.logger import Level

_print_lock = threading.Lock()


def emit(kind: str, **fields: Any) -> None:
    with _print_lock:
        sys.stdout.write("@@ " + json.dumps({"kind": kind, **fields}) + "\n")
        sys.stdout.flush()


class Links(Callback):
    """Says when each link comes and goes; ``up`` is set while one is open."""

    def __init__(self) -> None:
        super().__init__()
        self.up = threading.Event()
        self.connects = 0
        self.disconnects = 0
        self.fails: list[str] = []

    def on_connect(self, service, connection):
        self.connects += 1
        self.up.set()
        emit("connect", number=self.connects)

    def on_disconnect(self, service, connection):
        self.disconnects += 1
        self.up.clear()
        emit("disconnect", number=self.disconnects)

    def on_fail(self, service, error):
        self.fails.append(f"{type(error).__name__}: {error}")


def main() -> None:
    config = json.loads(sys.argv[1])
    L.debug_level(Level.INFO)
    links = Links()
    client = create_client(
        config["port"],
        links,
        reconnect=True,
        backoff=Backoff(**config["backoff"]),
        queue_while_disconnected=config["queue"],
    )
    stop = threading.Event()

    def read_commands() -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()

    threading.Thread(target=read_commands, daemon=True).start()
    start_client("127.0.0.1", client, parallel=True)
    emit("started", connected=client.connection() is not None)

    accepted: list[int] = []
    refused = 0
    while_down = 0
    most_held = 0
    if config["mode"] == "stream":
        deadline = time.monotonic() + config["max_seconds"]
        index = 0
        while not stop.is_set() and index < config["max_count"] and time.monotonic() < deadline:
            down = client.connection() is None
            try:
                client.send(b"seq:%d" % index)
            except OSError:
                refused += 1
            else:
                accepted.append(index)
                while_down += down
            most_held = max(most_held, client.held_messages())
            index += 1
            time.sleep(config["interval"])  # the pace of the load, not a wait for anything
    else:
        padding = b"." * max(config["size"] - 14, 0)
        for index in range(config["max_count"]):
            try:
                client.send(b"seq:%010d" % index + padding)
            except OSError as error:
                refused_with = str(error)
                break
            accepted.append(index)
        else:
            refused_with = ""
        runner.call(lambda: None, timeout=10)  # everything queued from this thread has reached the client
        emit(
            "filled",
            accepted=len(accepted),
            refused_with=refused_with,
            held=client.held_messages(),
            held_bytes=client.held_bytes(),
        )
        stop.wait(60)
    connected = links.up.wait(15)
    held_at_close = client.held_messages()
    client.close()
    emit(
        "done",
        accepted=accepted,
        refused=refused,
        while_down=while_down,
        most_held=most_held,
        connected_at_close=connected,
        held_at_close=held_at_close,
        connects=links.connects,
        disconnects=links.disconnects,
        fails=links.fails[:10],
        state=client.state.value,
    )


if __name__ == "__main__":
    main()
