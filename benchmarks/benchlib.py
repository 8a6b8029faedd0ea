"""What every benchmark process shares: payloads, in-order checks, reporting, stop signals, process groups.

Standard library only: the same module is imported by leads_twisted, plain Twisted and pyzmq peers on the
project's interpreter and by the original ``leads`` peer on Python 3.12.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import itertools
import json
import math
import os
import resource
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

#: Marks the lines of stdout that carry a report; anything else a library prints is ignored.
MARK = "@@bench "

#: Set by ``run.py --simulate-loss N``: receivers discard some messages, to prove that losses are caught.
_DROP_EVERY = int(os.environ.get("LEADS_BENCH_DROP_EVERY", "0") or 0)

#: The bytes that end every message on the LEADS wire.
SEPARATOR = b";"

_FILLER = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def payload(index: int, size: int) -> bytes:
    """Message ``index`` of a stream: its number in ten digits, padded to ``size`` bytes, never a separator."""
    head = b"%010d" % index
    if size <= len(head):
        return head[-size:]
    body = _FILLER * (size // len(_FILLER) + 1)
    return head + body[: size - len(head)]


def payloads(count: int, size: int) -> list[bytes]:
    """Messages ``0 .. count-1``, made before any clock starts."""
    return [payload(i, size) for i in range(count)]


class StreamCheck:
    """Collects a stream of numbered messages and, once the clock has stopped, checks count, lengths and order.

    ``add`` is the only work done per message, the same for every implementation: keep the message, add up
    its length, and stamp the clock on the first message and when the expected bytes are all in. The rate
    therefore runs from the first to the last message received, and checking costs nothing inside it.
    """

    def __init__(self, expected: int, size: int) -> None:
        self.expected = expected
        self.size = size
        self.messages: list[bytes] = []
        self.first = 0.0
        self.last = 0.0
        self.cpu_first = 0.0
        self.cpu_last = 0.0
        self.complete = False
        self.done: Any = threading.Event()
        self.add: Callable[[bytes], None] = self._adder()

    def _adder(self) -> Callable[[bytes], None]:
        append = self.messages.append
        target = self.expected * self.size
        monotonic = time.monotonic
        process_time = time.process_time
        total = 0

        def add(msg: bytes) -> None:
            nonlocal total
            if not total:
                self.first = monotonic()
                self.cpu_first = process_time()
            append(msg)
            total += len(msg)
            if total >= target and not self.complete:
                self.last = monotonic()
                self.cpu_last = process_time()
                self.complete = True
                self.done.set()

        if not _DROP_EVERY:
            return add
        arrivals = itertools.count(1)

        def add_dropping(msg: bytes) -> None:
            if next(arrivals) % _DROP_EVERY:
                add(msg)

        return add_dropping

    @property
    def count(self) -> int:
        """How many messages have arrived so far."""
        return len(self.messages)

    def quiet_for(self, idle: float, seen: int, since: float) -> tuple[bool, int, float]:
        """Whether nothing arrived for ``idle`` s since ``since`` (with ``seen`` then); else the new mark."""
        count, now = len(self.messages), time.monotonic()
        if count != seen:
            return False, count, now
        if count and now - since >= idle:
            if not self.last:
                self.last = since  # the stream stopped short: its last message came about then
            return True, count, since
        return False, count, since

    def wait(self, deadline: float, idle: float) -> None:
        """Wait until complete, ``deadline`` (monotonic) passes, or nothing more arrives for ``idle`` seconds."""
        seen, since = 0, time.monotonic()
        while not self.done.is_set() and time.monotonic() < deadline:
            quiet, seen, since = self.quiet_for(idle, seen, since)
            if quiet:
                return
            self.done.wait(0.05)

    def report(self) -> dict[str, Any]:
        """The result: counts, whether the stream was intact and in order, and the receive window."""
        messages = self.messages
        size = self.size
        wrong_length = sum(1 for msg in messages if len(msg) != size)
        return {
            "expected": self.expected,
            "received": len(messages),
            "bytes": sum(map(len, messages)),
            "wrong_length": wrong_length,
            "order_ok": messages == payloads(self.expected, size),
            "cpu": (self.cpu_last or time.process_time()) - self.cpu_first,
            "first": self.first,
            "last": self.last or time.monotonic(),
        }


def latency_summary(rtts: list[int], expected: int, wrong: int) -> dict[str, Any]:
    """p50, p99 and max of round-trip times in microseconds (nearest rank), with the count and mismatches."""
    ordered = sorted(rtts)
    count = len(ordered)

    def rank(fraction: float) -> float:
        return ordered[max(0, math.ceil(fraction * count - 1e-9) - 1)] / 1000 if count else 0.0

    return {
        "expected": expected,
        "received": count,
        "wrong": wrong,
        "p50_us": rank(0.50),
        "p99_us": rank(0.99),
        "max_us": ordered[-1] / 1000 if count else 0.0,
    }


def peer_arguments(description: str | None, roles: dict[str, Any], mode: str = "thread") -> argparse.ArgumentParser:
    """The command line every peer shares (role, sizes, counts, timeouts); a peer adds its own options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("role", choices=sorted(roles))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--mode", choices=("thread", "callback"), default=mode)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds this process may live")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of silence that end a receive")
    return parser


def start_peer(args: argparse.Namespace, forking_roles: tuple[str, ...]) -> bool:
    """Bound this peer's life and raise its file limit; False for a role that forks first and must start no
    timer thread before it does."""
    die_with_parent()
    raise_fd_limit()
    if args.role in forking_roles:
        return False
    exit_after(args.timeout + 30)
    return True


def emit(event: str, **fields: Any) -> None:
    """Report one event to the orchestrator on stdout, as one atomic line."""
    line = MARK + json.dumps({"event": event, "pid": os.getpid(), **fields}) + "\n"
    os.write(sys.stdout.fileno(), line.encode())


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit and return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


def die_with_parent() -> None:
    """Ask Linux to kill this process if its parent dies, so no benchmark process outlives its runner."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


def exit_after(seconds: float) -> None:
    """Hard-stop this process after ``seconds`` whatever it is doing: every process bounds its own life."""
    timer = threading.Timer(seconds, lambda: os._exit(3))
    timer.daemon = True
    timer.start()


def wait_for_stop(timeout: float) -> bool:
    """Block until the orchestrator writes a line (or closes) on stdin, or ``timeout`` passes; True if told."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([sys.stdin], [], [], min(left, 1.0))
        if ready:
            sys.stdin.readline()
            return True


def on_stop(action: Callable[[], None], timeout: float) -> threading.Thread:
    """Run ``action`` in a daemon thread once told to stop (or after ``timeout``)."""

    def watch() -> None:
        wait_for_stop(timeout)
        action()

    thread = threading.Thread(target=watch, name="bench stop watcher", daemon=True)
    thread.start()
    return thread


def stop_reporting_cpu(timeout: float, since: float) -> None:
    """Wait to be told to stop, then report the CPU time this process used since ``since``."""
    wait_for_stop(timeout)
    emit("cpu", seconds=time.process_time() - since)


def finish(code: int = 0) -> None:
    """Leave at once, skipping library exit hooks that could wait: everything has been reported."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def fork_group(count: int, run: Callable[[int], None], timeout: float) -> int:
    """Run ``run(index)`` in ``count`` forked processes, report their pids, and wait for them all.

    Fork happens before any thread or reactor is started, so each child is a clean process of its own. A
    child still running after ``timeout`` seconds is killed by its pid. Returns how many failed.
    """
    sys.stdout.flush()
    pids: list[int] = []
    for index in range(count):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                die_with_parent()
                exit_after(timeout)
                run(index)
            except BaseException as error:  # the child must never return into the parent's code
                print(f"child {index} failed: {error!r}", file=sys.stderr)
                code = 1
            finish(code)
        pids.append(pid)
    emit("children", pids=pids)
    failed = 0
    deadline = time.monotonic() + timeout
    waiting = set(pids)
    while waiting and time.monotonic() < deadline:
        for pid in list(waiting):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                waiting.discard(pid)
                failed += int(os.waitstatus_to_exitcode(status) != 0)
        time.sleep(0.02)
    for pid in waiting:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        failed += 1
    return failed


def split(total: int, parts: int) -> list[int]:
    """``total`` shared out over ``parts`` as evenly as whole numbers allow."""
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


def proc_status(pid: int) -> dict[str, int]:
    """Resident memory (KiB) and thread count of a process, from ``/proc``."""
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "Threads"):
                found[key] = int(value.split()[0])
    return {"rss_kib": found.get("VmRSS", 0), "threads": found.get("Threads", 0)}
