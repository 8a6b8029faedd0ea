"""``listen``, ``send`` and ``ping``: a library ``Client`` of the daemon, from the command line.

Each command connects once; a refused or timed-out connection is one line on stderr and status 1.
"""

from __future__ import annotations

import argparse
import json
import math
import queue
import sys
import time
from typing import BinaryIO

from leads_twisted.cli.errors import CommandError
from leads_twisted.comm import Callback, Client, ConnectionBase, ServiceView, TLSOptions

#: Seconds ``send`` gives the daemon to take the last messages before it gives up.
CLOSE_SECONDS: float = 5.0


def connect(options: argparse.Namespace, callback: Callback | None = None, until_closed: bool = False) -> Client:
    """A client connected to ``options.address`` (with ``until_closed``, returned once its link has ended), or
    ``CommandError`` saying why not."""
    host, port = options.address
    tls = None
    if options.tls_ca or options.tls_certificate:
        if bool(options.tls_certificate) != bool(options.tls_key):
            raise CommandError("--tls-certificate and --tls-key go together")
        tls = TLSOptions(options.tls_certificate, options.tls_key, options.tls_ca)
    client = Client(port, callback, options.separator, connect_timeout=options.timeout, tls=tls)
    try:
        client.start(parallel=not until_closed, server_address=host)
    except (OSError, TimeoutError) as error:
        raise CommandError(f"cannot connect to {host}:{port}: {error.strerror or error}") from None
    except ImportError:
        raise CommandError("TLS needs pyOpenSSL: pip install 'leads_twisted[tls]'") from None
    return client


class Printer(Callback):
    """Writes each message to ``out`` as a line: raw, hex or JSON; closes the client after ``count``."""

    def __init__(self, out: BinaryIO, style: str, count: int | None) -> None:
        super().__init__()
        self._out = out
        self._style = style
        self._left = count

    def on_receive(self, service: ServiceView, msg: bytes) -> None:
        if self._left == 0:
            return  # the rest of the chunk that brought the last one wanted
        if self._style == "hex":
            line = msg.hex().encode()
        elif self._style == "json":
            line = json.dumps(_as_json(msg)).encode()
        else:
            line = msg
        self._out.write(line + b"\n")
        self._out.flush()
        if self._left is not None:
            self._left -= 1
            if self._left == 0:
                service.close()

    def on_disconnect(self, service: ServiceView, connection: ConnectionBase) -> None:
        service.close()


def _as_json(msg: bytes) -> dict[str, float | str]:
    """A message with the time it arrived: as text when it is UTF-8, else as hex."""
    record: dict[str, float | str] = {"time": round(time.time(), 6), "size": len(msg)}
    try:
        record["text"] = msg.decode()
    except UnicodeDecodeError:
        record["hex"] = msg.hex()
    return record


def listen(options: argparse.Namespace) -> int:
    """Print every message until the daemon closes the link (or ``--count`` messages, or Ctrl-C)."""
    style = "hex" if options.hex else "json" if options.json else "raw"
    connect(options, Printer(sys.stdout.buffer, style, options.count), until_closed=True)
    return 0


def send(options: argparse.Namespace) -> int:
    """Send each message given (or each line of stdin), then close in order: every message leaves first."""
    messages = [message.encode() for message in options.messages]
    if not messages:
        messages = [line.rstrip(b"\r\n") for line in sys.stdin.buffer]
    for number, msg in enumerate(messages, 1):
        if options.separator in msg:
            raise CommandError(f"message {number} contains the separator {options.separator!r}; it cannot be sent")
    client = connect(options)
    try:
        for msg in messages:
            client.send(msg)
    finally:
        client.close()
    return 0


class Echoes(Callback):
    """Hands every message received to the waiting thread."""

    def __init__(self) -> None:
        super().__init__()
        self.received: queue.Queue[bytes | None] = queue.Queue()

    def on_receive(self, service: ServiceView, msg: bytes) -> None:
        self.received.put(msg)

    def on_disconnect(self, service: ServiceView, connection: ConnectionBase) -> None:
        self.received.put(None)


def ping(options: argparse.Namespace) -> int:
    """Time ``--count`` round trips, one at a time, and print min, p50, p99 and max in milliseconds."""
    echoes = Echoes()
    client = connect(options, echoes)
    times: list[float] = []
    try:
        for number in range(options.count):
            msg = f"ping {number} ".encode().ljust(options.size, b".")
            started = time.perf_counter()
            client.send(msg)
            try:
                answer = echoes.received.get(timeout=options.timeout)
            except queue.Empty:
                raise CommandError(
                    f"no echo within {options.timeout} s; is the daemon running with --mode echo?"
                ) from None
            if answer is None:
                raise CommandError("the daemon closed the link")
            if answer != msg:
                raise CommandError(f"the daemon answered {answer[:40]!r}, not the ping; is it in --mode echo?")
            times.append((time.perf_counter() - started) * 1000)
    finally:
        client.close()
    print(summary(times))
    return 0


def percentile(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted values."""
    index = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[index]


def summary(times: list[float]) -> str:
    """``20 round trips: min 0.081 ms, p50 0.102 ms, p99 0.251 ms, max 0.251 ms``."""
    ordered = sorted(times)
    return (
        f"{len(ordered)} round trips: min {ordered[0]:.3f} ms, p50 {percentile(ordered, 0.5):.3f} ms, "
        f"p99 {percentile(ordered, 0.99):.3f} ms, max {ordered[-1]:.3f} ms"
    )
