"""What the robustness tests share: processes under test, recorders, special raw peers, and /proc measurements.

The tests run inside pytest-twisted's reactor. A server whose memory or CPU time is measured runs as its own
process (``server_proc.py``) so that the test runner's own memory does not count; the test talks to it over
stdin/stdout and reads its ``/proc`` entries. Every wait here is on an event and has a timeout, and every
process started here is ended here, by its pid. ``Waitable``, ``RawPeer`` and ``connect`` are in ``support_net``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from support_net import TIMEOUT, RawPeer, Waitable
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPullProducer
from zope.interface import implementer

from leads_twisted.comm import Callback

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]


# Measurements of another process, from /proc (Linux).


def status_kb(pid: int, field: str) -> int:
    """A ``kB`` field of ``/proc/PID/status``: ``VmRSS`` (resident now) or ``VmHWM`` (peak resident)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(f"{field} not in /proc/{pid}/status")


def reset_peak_rss(pid: int) -> None:
    """Make ``VmHWM`` start again from the current RSS (writing 5 to ``clear_refs``, Linux 4.0+)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A ``/proc/PID/status`` memory field in MB (10**6 bytes)."""
    return status_kb(pid, field) * 1024 / 1e6


class MemoryWatch:
    """RSS of one process at the start, at its peak (``VmHWM``, reset at the start) and at the end, in MB."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        reset_peak_rss(pid)
        self.start = rss_mb(pid)
        self.peak = self.start
        self.end = self.start

    def finish(self) -> MemoryWatch:
        self.peak = rss_mb(self.pid, "VmHWM")
        self.end = rss_mb(self.pid)
        return self

    @property
    def growth(self) -> float:
        return self.peak - self.start

    def __str__(self) -> str:
        return f"RSS start {self.start:.1f} MB, peak {self.peak:.1f} MB, end {self.end:.1f} MB"


# Recording callbacks in the test process.


class Recorder(Callback, Waitable):
    """An in-process callback that records every call as ``(kind, detail)`` in order."""

    def __init__(self) -> None:
        Callback.__init__(self)
        Waitable.__init__(self)
        self.events: list[tuple[str, Any]] = []

    def add(self, kind: str, detail: Any = None) -> None:
        self.events.append((kind, detail))
        self.changed()

    def on_connect(self, service, connection):
        self.add("connect", connection)

    def on_receive(self, service, msg):
        self.add("receive", msg)

    def on_fail(self, service, error):
        self.add("fail", error)

    def on_disconnect(self, service, connection):
        self.add("disconnect", connection)

    def of(self, kind: str) -> list[Any]:
        return [detail for k, detail in self.events if k == kind]

    def when_count(self, kind: str, count: int = 1, timeout: float = TIMEOUT) -> Deferred[None]:
        return self.when(lambda: len(self.of(kind)) >= count, f"{count} x {kind}", timeout)

    def describe(self) -> str:
        shown = [(k, d[:40] if isinstance(d, bytes) else d) for k, d in self.events[-30:]]
        return f"{len(self.events)} events, last: {shown}"


class EchoServer(Recorder):
    """An in-process server callback that answers ``echo:X`` with ``X`` to the sender, as ``server_proc`` does."""

    def on_receive(self, service, msg):
        if msg.startswith(b"echo:"):
            service.reply(msg[5:])
        super().on_receive(service, msg)


class EchoLoop(Recorder):
    """A client callback that keeps one ``echo:N`` request in flight and checks every answer is ``N``.

    ``start()`` sends the first request; each answer sends the next one until ``stop()`` or ``limit`` answers.
    ``answers`` is how many correct answers came, ``wrong`` any answer that was not the one expected.
    """

    def __init__(self, limit: int = 1_000_000) -> None:
        super().__init__()
        self.limit = limit
        self.answers = 0
        self.wrong: list[bytes] = []
        self.connection: Any = None
        self.running = False

    def on_connect(self, service, connection):
        self.connection = connection
        super().on_connect(service, connection)

    def start(self) -> None:
        self.running = True
        self.connection.send(b"echo:%d" % self.answers)

    def stop(self) -> None:
        self.running = False

    def on_receive(self, service, msg):
        if msg == b"%d" % self.answers:
            self.answers += 1
        else:
            self.wrong.append(msg)
        if self.running and self.answers < self.limit and not self.connection.closed():
            self.connection.send(b"echo:%d" % self.answers)
        self.changed()

    async def round_trips(self, count: int, timeout: float = TIMEOUT) -> None:
        """Make ``count`` more exchanges, one after another, and wait for the last answer."""
        self.limit = self.answers + count
        self.start()
        await self.when_answers(self.limit, timeout)
        self.stop()
        assert not self.wrong, self.describe()

    def when_answers(self, count: int, timeout: float = TIMEOUT) -> Deferred[None]:
        return self.when(lambda: self.answers >= count or bool(self.wrong), f"{count} echo answers", timeout)

    def describe(self) -> str:
        return f"EchoLoop(answers={self.answers}, wrong={self.wrong[:3]}, {super().describe()})"


# Special raw peers in the test process.


class SequenceReader(RawPeer):
    """Reads numbered broadcasts (ten digits first) and checks each is the next one and of the right size."""

    def __init__(self, size: int) -> None:
        super().__init__(keep_bytes=False)
        self.size = size
        self.next = 0
        self.count = 0
        self.errors: list[str] = []
        self.numbers_seen: list[int] = []
        self.gaps = 0

    def message(self, msg: bytes) -> None:
        number = int(msg[:10])
        if len(msg) != self.size:
            self.errors.append(f"message {number} has {len(msg)} bytes, not {self.size}")
        if number != self.next:
            self.gaps += 1
            if number < self.next:
                self.errors.append(f"message {number} came after {self.next - 1}")
        self.next = number + 1
        self.count += 1

    def when_next(self, number: int, timeout: float = TIMEOUT) -> Deferred[None]:
        return self.when(lambda: self.next >= number or self.is_lost, f"message {number - 1}", timeout)

    def describe(self) -> str:
        return f"SequenceReader(next={self.next}, count={self.count}, errors={self.errors[:3]}, lost={self.is_lost})"


class StalledPeer(SequenceReader):
    """Connects, then stops reading from its socket until ``read_again()``."""

    def connectionMade(self) -> None:
        self.transport.pauseProducing()

    def read_again(self) -> None:
        self.transport.resumeProducing()


@implementer(IPullProducer)
class Flooder(RawPeer):
    """Writes ``total`` bytes of ``filler`` as fast as the transport takes them, then stops."""

    chunk_size = 64 * 1024

    def __init__(self, total: int, filler: bytes = b"x") -> None:
        super().__init__(keep_bytes=True)
        self.total = total
        self.sent = 0
        self.chunk = filler * (self.chunk_size // len(filler))
        self.finished = False

    def connectionMade(self) -> None:
        self.transport.registerProducer(self, False)

    def resumeProducing(self) -> None:
        if self.is_lost or self.sent >= self.total:
            if not self.finished:
                self.finished = True
                with contextlib.suppress(Exception):
                    self.transport.unregisterProducer()
                self.changed()
            return
        chunk = self.chunk[: self.total - self.sent]
        self.sent += len(chunk)
        self.transport.write(chunk)

    def stopProducing(self) -> None:
        self.finished = True

    def describe(self) -> str:
        return f"Flooder(sent={self.sent}/{self.total}, lost={self.is_lost}, got={self.data[:60]!r})"


# Processes under test.


class ScriptProcess(Waitable):
    """A Python script run beside the test, answering with ``@@ {json}`` lines that arrive as events.

    Its stdout is read in a thread and handed to the reactor, so events are waited for like any other.
    """

    def __init__(self, script: Path, config: dict[str, Any]) -> None:
        super().__init__()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("PYTHONPATH", None)
        self.proc = subprocess.Popen(
            [sys.executable, str(script), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=str(REPO_ROOT),
            env=env,
        )
        self.name = script.stem
        self.events: list[dict[str, Any]] = []
        self.log: list[str] = []
        self.stderr: list[str] = []
        self.ended = False
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            reactor.callFromThread(self._line, line.rstrip("\n"))
        reactor.callFromThread(self._end)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def _line(self, line: str) -> None:
        if line.startswith("@@ "):
            self.events.append(json.loads(line[3:]))
        else:
            self.log.append(line)
        self.changed()

    def _end(self) -> None:
        self.ended = True
        self.changed()

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["kind"] == kind]

    def event(self, kind: str, since: int = 0, timeout: float = TIMEOUT) -> Deferred[dict[str, Any]]:
        """The first event of ``kind`` at or after index ``since``; fails early if the process ends first."""

        def found() -> dict[str, Any] | None:
            return next((e for e in self.events[since:] if e["kind"] == kind), None)

        waiting = self.when(lambda: found() is not None or self.ended, f"{self.name}: {kind}", timeout)

        def check(_: None) -> dict[str, Any]:
            event = found()
            if event is None:
                raise AssertionError(f"{self.name} ended before saying {kind!r}: {self.describe()}")
            return event

        return waiting.addCallback(check)

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def request(self, command: str, reply: str, timeout: float = TIMEOUT) -> Deferred[dict[str, Any]]:
        """Send ``command`` and wait for the ``reply`` event it causes."""
        since = len(self.events)
        self.send(command)
        return self.event(reply, since, timeout)

    def when_ended(self, timeout: float = TIMEOUT) -> Deferred[None]:
        return self.when(lambda: self.ended, f"{self.name} to exit", timeout)

    def kill(self) -> None:
        """End the process by its pid (if it still runs) and reap it."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, 9)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.close()

    def describe(self) -> str:
        events = [e if e["kind"] != "closed" else {**e, "seq": f"{len(e['seq'])} numbers"} for e in self.events]
        return (
            f"{self.name} pid {self.pid} rc={self.proc.poll()}\n  events: {events[-20:]}\n"
            f"  log: {self.log[-15:]}\n  stderr: {''.join(self.stderr[-30:])}"
        )


class ServerProcess(ScriptProcess):
    """``server_proc.py``: a leads_twisted server, threaded API, in its own process."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(HERE / "server_proc.py", config)
        self.port = 0

    async def started(self) -> ServerProcess:
        listening = await self.event("listening", timeout=30)
        self.port = listening["port"]
        return self

    def stats(self) -> Deferred[dict[str, Any]]:
        return self.request("stats", "stats")

    def wait(self, what: str, target: int, timeout: float = TIMEOUT) -> Deferred[dict[str, Any]]:
        """Ask the server to wait (bounded) until its ``what`` count is ``target``; fires with where it got."""
        return self.request(f"wait {what} {target} {timeout}", "waited", timeout + TIMEOUT)

    def fails(self, type_name: str) -> list[dict[str, Any]]:
        return [e for e in self.of("fail") if e["type"] == type_name]

    async def close(self) -> dict[str, Any]:
        """Close the server gracefully; returns its final report."""
        closed = await self.request("close", "closed", 30)
        await self.when_ended()
        return closed
