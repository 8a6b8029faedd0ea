"""The many-connection client of the scale workload, for every server that speaks the LEADS wire format.

One non-blocking, single-threaded client per process (standard library ``selectors``), so what is measured is
the server: each connection sends one message as soon as it is up, waits for the echo, and is then held open
until the orchestrator has looked at the server and says stop.
"""

from __future__ import annotations

import argparse
import errno
import selectors
import socket
import time

import benchlib
from benchlib import emit


class Link:
    """One connection's progress: connecting, then waiting for its echo, then done."""

    __slots__ = ("buffer", "expected", "sock")

    def __init__(self, sock: socket.socket, expected: bytes) -> None:
        self.sock = sock
        self.expected = expected
        self.buffer = b""


def run_group(count: int, args: argparse.Namespace) -> None:
    """Open ``count`` connections, exchange one message on each, report, and hold them until told."""
    benchlib.raise_fd_limit()
    selector = selectors.DefaultSelector()
    links: list[Link] = []
    failed: dict[str, int] = {}
    started = time.monotonic()
    for number in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        code = sock.connect_ex(("127.0.0.1", args.port))
        if code not in (0, errno.EINPROGRESS):
            failed[errno.errorcode.get(code, str(code))] = failed.get(errno.errorcode.get(code, str(code)), 0) + 1
            sock.close()
            continue
        link = Link(sock, benchlib.payload(number, args.size))
        links.append(link)
        selector.register(sock, selectors.EVENT_WRITE, link)
    connected = replied = wrong = 0
    pending = len(links)
    last_connect = started
    deadline = time.monotonic() + args.timeout
    while pending and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.2):
            link = key.data
            sock = link.sock
            if key.events & selectors.EVENT_WRITE:
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    name = errno.errorcode.get(code, str(code))
                    failed[name] = failed.get(name, 0) + 1
                    selector.unregister(sock)
                    pending -= 1
                    continue
                connected += 1
                last_connect = time.monotonic()
                sock.send(link.expected + benchlib.SEPARATOR)
                selector.modify(sock, selectors.EVENT_READ, link)
                continue
            try:
                data = sock.recv(4096)
            except OSError as error:
                data = b""
                failed[type(error).__name__] = failed.get(type(error).__name__, 0) + 1
            link.buffer += data
            if not data or benchlib.SEPARATOR in link.buffer:
                message = link.buffer.split(benchlib.SEPARATOR, 1)[0]
                if message == link.expected:
                    replied += 1
                elif data:
                    wrong += 1
                selector.unregister(sock)
                pending -= 1
    emit(
        "result",
        opened=count,
        connected=connected,
        replied=replied,
        wrong=wrong,
        failed=failed,
        started=started,
        last_connect=last_connect,
        done=time.monotonic(),
    )
    benchlib.wait_for_stop(args.timeout)
    for link in links:
        link.sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds for connecting and the exchange")
    args = parser.parse_args()
    benchlib.die_with_parent()
    shares = benchlib.split(args.connections, args.procs)
    failed = benchlib.fork_group(args.procs, lambda index: run_group(shares[index], args), args.timeout * 2 + 10)
    emit("group", failed=failed)
    benchlib.finish()


if __name__ == "__main__":
    main()
