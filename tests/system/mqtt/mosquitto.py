"""A real Mosquitto for the bridge tests: the broker on a free loopback port with its own config file, and
``mosquitto_sub`` / ``mosquitto_pub`` beside it.

Every process is started here and ended by its own ``Popen`` (its pid); every wait reads the process's output
with a deadline, so nothing sleeps to synchronise.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from debian_packages import need_debian_packages
from support import free_port

PACKAGES = ("mosquitto", "mosquitto-clients")
TIMEOUT = 15.0


def tool(name: str) -> str | None:
    """The path of a Mosquitto program (the broker lives in /usr/sbin, often not on a user's PATH)."""
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"]))


def need_mosquitto() -> None:
    """Skip (or fail, under ``$LEADS_REQUIRE_DEBIAN_PACKAGES``) unless the broker and its clients are here."""
    programs = ("mosquitto", "mosquitto_passwd", "mosquitto_sub", "mosquitto_pub")
    need_debian_packages(PACKAGES, tuple(tool(name) or name for name in programs))


class Lines:
    """A process's output, line by line, read by a thread into a queue so waits can have deadlines."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def next(self, deadline: float) -> str | None:
        """The next line, or None at the deadline; fails if the output ended."""
        try:
            line = self._queue.get(timeout=max(deadline - time.monotonic(), 0.001))
        except queue.Empty:
            return None
        if line is None:
            self._queue.put(None)
            raise AssertionError(f"{self.process.args[0]} ended (status {self.process.poll()}):\n" + self.tail())
        self.seen.append(line)
        return line

    def wait_for(self, text: str, timeout: float = TIMEOUT) -> str:
        """The next line that contains ``text``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.next(deadline)
            if line is not None and text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {timeout} s:\n" + self.tail())

    def tail(self) -> str:
        return "\n".join(self.seen[-20:])


def end(process: subprocess.Popen[str], sig: int = signal.SIGTERM) -> None:
    """Signal ``process`` (by its pid) and wait for it; SIGKILL if it lingers."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(TIMEOUT)
    if process.stdout is not None:
        process.stdout.close()


class Broker:
    """Mosquitto on 127.0.0.1 at a free port, its config and persistence in ``directory``; restartable on the
    same port."""

    def __init__(self, directory: Path, persistence: bool = False, settings: tuple[str, ...] = ()) -> None:
        """``settings`` are config lines put before the plain, anonymous listener on ``port`` (more listeners,
        with ``per_listener_settings true``)."""
        self.directory = directory
        self.port = free_port()
        self.config = directory / "mosquitto.conf"
        settings = (
            *settings,
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            # Run as whoever runs the tests: as root, Mosquitto would otherwise become a user that cannot read
            # the test's files.
            f"user {getpass.getuser()}",
            # A subscriber that falls behind must not lose QoS 1 messages to the default per-client bound.
            "max_queued_messages 0",
            "log_dest stderr",  # unbuffered, unlike stdout to a pipe
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
        )
        if persistence:
            settings += ("persistence true", f"persistence_location {directory}/", "autosave_interval 3600")
        else:
            settings += ("persistence false",)
        self.config.write_text("\n".join(settings) + "\n")
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[str] | None = None
        self.output: Lines | None = None
        self.subscribers: list[Subscriber] = []

    def start(self) -> Broker:
        """Start it and return once it listens (it says so in its log)."""
        mosquitto = tool("mosquitto")
        assert mosquitto is not None
        self.process = subprocess.Popen(
            [mosquitto, "-c", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=self.directory,
        )
        self.output = Lines(self.process)
        self.output.wait_for(" running")
        return self

    def save(self) -> None:
        """Write the persistence database now (SIGUSR1), so a SIGKILL after it keeps the sessions."""
        assert self.process is not None and self.output is not None
        self.process.send_signal(signal.SIGUSR1)
        self.output.wait_for("Saving in-memory database")

    def kill(self) -> None:
        """SIGKILL: the broker vanishes without a word, as in a crash."""
        assert self.process is not None
        end(self.process, signal.SIGKILL)

    def stop(self) -> None:
        if self.process is not None:
            end(self.process)

    def close(self) -> None:
        """End the broker and every subscriber made through it."""
        for subscriber in self.subscribers:
            subscriber.stop()
        self.stop()

    def wait_for_log(self, text: str, timeout: float = TIMEOUT) -> str:
        assert self.output is not None
        return self.output.wait_for(text, timeout)

    def publish(self, topic: str, message: str, *options: str) -> None:
        """``mosquitto_pub -t topic -m message`` against this broker, to its end."""
        pub = tool("mosquitto_pub")
        assert pub is not None
        subprocess.run(
            [pub, "-h", "127.0.0.1", "-p", str(self.port), "-t", topic, "-m", message, *options],
            check=True,
            timeout=TIMEOUT,
            capture_output=True,
        )

    def subscribe(self, *topics: str, options: tuple[str, ...] = ()) -> Subscriber:
        """A running ``mosquitto_sub -v`` on ``topics``, ready: it has seen a message published after it
        subscribed."""
        subscriber = Subscriber(self, topics, options)
        self.subscribers.append(subscriber)
        return subscriber.ready()


class Subscriber:
    """``mosquitto_sub -v`` (``topic payload`` per line) on some topics plus one sync topic of its own."""

    _made = 0

    def __init__(self, broker: Broker, topics: tuple[str, ...], options: tuple[str, ...]) -> None:
        Subscriber._made += 1
        self.broker = broker
        self.sync = f"test-sync/{os.getpid()}/{Subscriber._made}"
        sub = tool("mosquitto_sub")
        assert sub is not None
        arguments = [sub, "-h", "127.0.0.1", "-p", str(broker.port), "-v", *options]
        for topic in (*topics, self.sync):
            arguments += ["-t", topic]
        self.process = subprocess.Popen(
            arguments, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True
        )
        self.lines = Lines(self.process)
        self._early: list[tuple[str, str]] = []

    def ready(self, timeout: float = TIMEOUT) -> Subscriber:
        """Publish to the sync topic until this subscriber sees it: from then on it is subscribed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.broker.publish(self.sync, "sync")
            line = self.lines.next(min(deadline, time.monotonic() + 0.5))
            while line is not None and not line.startswith(self.sync):
                topic, _, payload = line.partition(" ")
                self._early.append((topic, payload))  # retained messages, or ones published meanwhile
                line = self.lines.next(min(deadline, time.monotonic() + 0.5))
            if line is not None:
                return self
        raise AssertionError(f"mosquitto_sub did not subscribe within {timeout} s:\n" + self.lines.tail())

    def messages(self, count: int, timeout: float = TIMEOUT) -> list[tuple[str, str]]:
        """The next ``count`` messages as ``(topic, payload)``, sync messages left out."""
        deadline = time.monotonic() + timeout
        got, self._early = self._early[:count], self._early[count:]
        while len(got) < count:
            line = self.lines.next(deadline)
            if line is None:
                raise AssertionError(f"{len(got)} of {count} messages within {timeout} s; last: {got[-3:]}")
            topic, _, payload = line.partition(" ")
            if not topic.startswith("test-sync/"):
                got.append((topic, payload))
        return got

    def until(self, payload: str, timeout: float = TIMEOUT) -> list[tuple[str, str]]:
        """Every message up to and including the first whose payload is ``payload``."""
        deadline = time.monotonic() + timeout
        got: list[tuple[str, str]] = []
        while not got or got[-1][1] != payload:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {payload!r} within {timeout} s; last: {got[-3:]}")
            got += self.messages(1, left)
        return got

    def stop(self) -> None:
        end(self.process)
