"""Starts real ``twistd leads-comm`` processes for the daemon tests, and talks to them as raw-socket clients.

Nothing here sleeps to synchronise: the daemon is ready when it sends ``READY=1`` to the test's notify socket
(the port is read from its ``STATUS=``), and clients read until they have what they expect. Every wait has a
deadline, and a process is only ever signalled or killed through its own ``Popen``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
TWISTD = str(Path(sys.executable).with_name("twistd"))
#: Twisted's newer runner; it calls ``startService`` only, never ``privilegedStartService``.
TWIST = str(Path(sys.executable).with_name("twist"))
TIMEOUT = 10.0


def daemon_environment(extra: dict[str, str] | None = None, path: Sequence[Path] = ()) -> dict[str, str]:
    """The environment for twistd: the repository on the path (an editable install does not expose
    ``twisted/plugins`` to twistd's plugin scan), this directory for the test callbacks, then ``path``; no
    inherited systemd variables."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "JOURNAL_STREAM"}
    }
    env["PYTHONPATH"] = os.pathsep.join(str(entry) for entry in [REPO, HERE, *path])
    env.update(extra or {})
    return env


class NotifySocket:
    """A Unix datagram socket standing in for systemd's ``NOTIFY_SOCKET``."""

    def __init__(self) -> None:
        # A short directory: socket paths are limited to about 100 bytes, and pytest's tmp_path can be longer.
        self._directory = tempfile.mkdtemp(prefix="leads-notify-")
        self.path = os.path.join(self._directory, "notify")
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(self.path)

    def receive(self, process: subprocess.Popen[bytes] | None = None, timeout: float = TIMEOUT) -> dict[str, str]:
        """The next notification as a dict; fails if the process ends or ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            self._socket.settimeout(min(remaining, 0.2))
            try:
                data = self._socket.recv(4096)
            except TimeoutError:
                if process is not None and process.poll() is not None:
                    raise AssertionError(f"twistd ended with status {process.returncode} before notifying") from None
                continue
            return dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        raise AssertionError(f"no notification within {timeout} s")

    def close(self) -> None:
        self._socket.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
            os.rmdir(self._directory)


@dataclass
class Daemon:
    """A running ``twistd -n leads-comm``, its output files, and the port it announced."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    port: int = 0
    ready: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.stdout.read_text(errors="replace")

    def errors(self) -> str:
        return self.stderr.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = TIMEOUT) -> str:
        """Poll the log until it contains ``text`` (for a daemon that has no notify socket to wait on)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            if text in log:
                return log
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not logged within {timeout} s:\n{self.log()}{self.errors()}")

    def terminate(self, timeout: float = TIMEOUT) -> float:
        """SIGTERM, then wait for the end; returns how long it took."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout)
        return time.monotonic() - started


class Daemons:
    """Starts daemons for one test and makes sure each has ended when the test does."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._started: list[Daemon] = []
        self.notify = NotifySocket()

    def start(
        self,
        *arguments: str,
        twistd_options: Sequence[str] = (),
        env: dict[str, str] | None = None,
        wait_ready: bool = True,
        pass_fds: Sequence[int] = (),
        wrapper: Sequence[str] = (),
        journal: bool = False,
        host: str = "twistd",
    ) -> Daemon:
        """Run ``twistd -n --pidfile= [twistd_options] leads-comm [arguments]`` and, by default, wait for READY=1.

        With ``host="twist"`` it runs ``twist leads-comm [arguments]`` instead.

        With ``journal``, stdout is announced in ``JOURNAL_STREAM`` as systemd announces the journal's stream.
        """
        index = len(self._started)
        stdout, stderr = self._directory / f"twistd{index}.out", self._directory / f"twistd{index}.err"
        if host == "twist":
            command = [*wrapper, TWIST, *twistd_options, "leads-comm", *arguments]
        else:
            command = [*wrapper, TWISTD, "-n", "--pidfile=", *twistd_options, "leads-comm", *arguments]
        environment = daemon_environment({"NOTIFY_SOCKET": self.notify.path, **(env or {})})
        with stdout.open("wb") as out, stderr.open("wb") as err:
            if journal:
                status = os.fstat(out.fileno())
                environment["JOURNAL_STREAM"] = f"{status.st_dev}:{status.st_ino}"
            process = subprocess.Popen(
                command, stdout=out, stderr=err, env=environment, cwd=self._directory, pass_fds=pass_fds
            )
        daemon = Daemon(process, stdout, stderr)
        self._started.append(daemon)
        if wait_ready:
            try:
                daemon.ready = self.notify.receive(process)
            except AssertionError as error:
                raise AssertionError(f"{error}\n--- stdout\n{daemon.log()}--- stderr\n{daemon.errors()}") from None
            assert daemon.ready.get("READY") == "1", daemon.ready
            daemon.port = int(re.findall(r":(\d+)", daemon.ready["STATUS"])[-1])
        return daemon

    def stop_all(self) -> None:
        for daemon in self._started:
            process = daemon.process
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(TIMEOUT)
        self.notify.close()


def run_twistd(
    *arguments: str, cwd: Path, twistd_options: Sequence[str] = ("-n", "--pidfile=")
) -> subprocess.CompletedProcess[str]:
    """Run ``twistd -n --pidfile= leads-comm ...`` to its end (``cwd`` on the path), for commands that fail."""
    return subprocess.run(
        [TWISTD, *twistd_options, "leads-comm", *arguments],
        capture_output=True,
        text=True,
        env=daemon_environment(path=[cwd]),
        cwd=cwd,
        timeout=30,
    )


class Client:
    """A raw TCP client that speaks the wire format by hand: ``message;`` bytes."""

    def __init__(self, port: int, host: str = "127.0.0.1", separator: bytes = b";") -> None:
        self.socket = socket.create_connection((host, port), timeout=TIMEOUT)
        self.separator = separator
        self._buffer = b""

    def send(self, *messages: bytes) -> None:
        self.socket.sendall(b"".join(message + self.separator for message in messages))

    def receive(self, count: int, timeout: float = TIMEOUT) -> list[bytes]:
        """The next ``count`` messages; fails if they do not all arrive within ``timeout``."""
        deadline = time.monotonic() + timeout
        while self._buffer.count(self.separator) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"wanted {count} messages within {timeout} s, have {self._buffer!r}")
            self.socket.settimeout(remaining)
            chunk = self.socket.recv(65536)
            if not chunk:
                raise AssertionError(f"the server closed the link; wanted {count} messages, have {self._buffer!r}")
            self._buffer += chunk
        *messages, self._buffer = self._buffer.split(self.separator, count)
        return messages

    def receive_until_closed(self, timeout: float = TIMEOUT) -> bytes:
        """Everything until the server closes the link."""
        deadline = time.monotonic() + timeout
        data, self._buffer = self._buffer, b""
        while (remaining := deadline - time.monotonic()) > 0:
            self.socket.settimeout(remaining)
            chunk = self.socket.recv(65536)
            if not chunk:
                return data
            data += chunk
        raise AssertionError(f"the server did not close the link within {timeout} s; have {data!r}")

    def close(self) -> None:
        self.socket.close()


@contextlib.contextmanager
def clients(port: int, count: int, host: str = "127.0.0.1") -> Iterator[list[Client]]:
    """``count`` clients of one daemon, closed afterwards."""
    made = [Client(port, host) for _ in range(count)]
    try:
        yield made
    finally:
        for client in made:
            client.close()


def all_connected(daemon_clients: list[Client]) -> None:
    """Return once the relay daemon has registered every client (connected one after another).

    The last client's message reaches the others: the server accepts links in the order they were made, so by the
    time it reads from the last one it has registered every earlier one.
    """
    *others, last = daemon_clients
    last.send(b"hello")
    for client in others:
        assert client.receive(1) == [b"hello"]
