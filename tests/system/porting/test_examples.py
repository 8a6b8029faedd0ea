"""The programs in ``examples/`` run as a newcomer runs them: real processes, real sockets, bounded in time."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import PYTHON, REPO_ROOT, script_env

from system.daemon.twistd_harness import Daemons

EXAMPLES = REPO_ROOT / "examples"


class Example:
    """One example script running in its own process; every line it prints is read as it comes."""

    def __init__(self, name: str, *args: str, stdin: bool = False) -> None:
        self.proc = subprocess.Popen(
            [PYTHON, str(EXAMPLES / name), *args],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=str(REPO_ROOT),
            env=script_env(),
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def expect(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        """Wait for the next line matching ``pattern`` (a regular expression searched in the line)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                line = ""
            if line is None or time.monotonic() > deadline:
                pytest.fail(f"no line matching {pattern!r} (rc={self.proc.poll()}):\n" + "\n".join(self.lines))
            self.lines.append(line)
            if found := re.search(pattern, line):
                return found

    def say(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def end(self, timeout: float = 20.0) -> int:
        """Wait for the process to end by itself; kill it (it is ours) and fail if it does not."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{self.proc.args} did not end within {timeout}s:\n" + "\n".join(self.lines))
        while (line := self._queue.get(timeout=10)) is not None:  # the rest of its output, to the end
            self.lines.append(line)
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@contextlib.contextmanager
def running(*examples: Example) -> Iterator[None]:
    try:
        yield
    finally:
        for example in examples:
            example.kill()


def test_the_pit_dashboard_prints_the_car_telemetry_at_50_hz():
    car = Example("simulated_car.py", "--port", "0", "--interface", "127.0.0.1")
    with running(car):
        port = car.expect(r"car: listening on port (\d+)").group(1)
        pit = Example("pit_dashboard.py", "--port", port, "--count", "100", "--pit")
        with running(pit):
            pit.expect(r"pit: connected to 127\.0\.0\.1:")
            started = time.monotonic()
            assert pit.end(30) == 0
            took = time.monotonic() - started
        samples = [re.search(r"\(#(\d+)\)$", line) for line in pit.lines]
        numbers = [int(found.group(1)) for found in samples if found]
        assert len(numbers) == 100
        assert numbers == list(range(numbers[0], numbers[0] + 100))  # none lost, none doubled, in order
        assert took >= 99 / 50 - 0.1, f"100 samples in {took:.2f} s: faster than 50 Hz"
        assert took < 15, f"100 samples in {took:.2f} s"
        assert "pit: car says ack:pit" in pit.lines
        shown = [line for line in pit.lines if line.startswith("lap")]
        assert len(shown) == 100
        assert all(re.fullmatch(r"lap  1  t= +[\d.]+s  speed +[\d.]+ km/h  rpm +\d+  \(#\d+\)", s) for s in shown)
        car.proc.send_signal(signal.SIGINT)  # Ctrl-C: the car closes its server and ends
        assert car.end() == 0
        assert "car: stopped" in car.lines


def test_the_video_channel_carries_whole_frames_ended_by_end_semicolon():
    sender = Example("video_channel.py", "send", "--port", "0", "--fps", "60", "--frames", "30")
    with running(sender):
        port = sender.expect(r"video: sending on port (\d+)").group(1)
        watcher = Example("video_channel.py", "watch", "--port", port, "--frames", "30")
        with running(watcher):
            assert watcher.end(30) == 0
        assert sender.end() == 0
    frames = [line for line in watcher.lines if line.startswith("video: frame ")]
    assert frames == [f"video: frame {n} (19224 bytes)" for n in range(30)]
    assert watcher.lines[-1] == "video: watched 30 frames"


def test_talking_to_the_daemon_by_hand(tmp_path: Path):
    daemons = Daemons(tmp_path)
    try:
        daemon = daemons.start("--interface", "127.0.0.1", "--port", "0")  # relay mode, the default
        alice = Example("talk.py", "--port", str(daemon.port), stdin=True)
        bob = Example("talk.py", "--port", str(daemon.port), stdin=True)
        with running(alice, bob):
            alice.expect("connected to")
            bob.expect("connected to")
            alice.say("hello from alice")
            bob.expect(r"^< hello from alice$")
            bob.say("a;b")
            bob.expect("cannot hold ';'")
            alice.proc.stdin.close()  # Ctrl-D
            assert alice.end() == 0
            bob.proc.stdin.close()
            assert bob.end() == 0
    finally:
        daemons.stop_all()
