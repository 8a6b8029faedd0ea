"""Helpers shared by the test packages: subprocess scripts with timeouts, free ports, finding python3.12,
loading an example as a module.

Every process started here is ended here, by its pid, if it outlives its timeout.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import json
import os
import queue
import socket
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT: Path = Path(__file__).resolve().parents[1]

#: The interpreter running the tests: the repo's venv, where leads_twisted is installed.
PYTHON: str = sys.executable


@dataclass
class Result:
    """What a finished script left behind."""

    stdout: str
    stderr: str
    rc: int
    seconds: float

    def describe(self) -> str:
        return f"rc={self.rc} after {self.seconds:.1f}s\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"

    def result(self) -> dict:
        """The JSON object the script printed on its last ``RESULT`` line."""
        return result_of(self.stdout, self.describe())


def result_of(stdout: str, context: str = "") -> dict:
    for line in reversed(stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    pytest.fail(f"the script printed no RESULT line\n{context}")


def script_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONPATH", None)
    if extra:
        env.update(extra)
    return env


def _kill(proc: subprocess.Popen) -> None:
    """End a process this module started, by its pid, and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, 9)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def run_python(
    code: str,
    timeout: float = 30.0,
    args: tuple[str, ...] = (),
    python: str = PYTHON,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> Result:
    """Run ``code`` (dedented) with ``python`` and return its output; fail the test if it outlives ``timeout``.

    With ``check``, a non-zero exit code fails the test too, showing both streams.
    """
    started = time.monotonic()
    proc = subprocess.Popen(
        [python, "-c", textwrap.dedent(code), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(REPO_ROOT),
        env=script_env(env),
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        stdout, stderr = proc.communicate()
        pytest.fail(
            f"the script did not finish within {timeout}s and was killed\n"
            f"--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
        )
    result = Result(stdout, stderr, proc.returncode, time.monotonic() - started)
    if check and result.rc != 0:
        pytest.fail(f"the script failed: {result.describe()}")
    return result


class Script:
    """A script running alongside the test, read line by line; use it as a context manager so it always ends."""

    def __init__(
        self, code: str, args: tuple[str, ...] = (), python: str = PYTHON, env: dict[str, str] | None = None
    ) -> None:
        self.proc = subprocess.Popen(
            [python, "-c", textwrap.dedent(code), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=str(REPO_ROOT),
            env=script_env(env),
        )
        self.lines: list[str] = []
        self._stderr: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _drain(self) -> None:
        """Move every line read so far into ``lines``."""
        for reader in self._readers:
            reader.join(1)
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)

    def describe(self) -> str:
        self._drain()
        return (
            f"rc={self.proc.poll()}\n--- stdout ---\n"
            + "\n".join(self.lines)
            + "\n--- stderr ---\n"
            + "".join(self._stderr)
        )

    def expect(self, prefix: str, timeout: float = 15.0) -> str:
        """Wait for the next stdout line that starts with ``prefix`` and return the rest of it."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no line starting with {prefix!r} within {timeout}s\n{self.describe()}")
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(5)
                pytest.fail(f"the script ended before printing {prefix!r}\n{self.describe()}")
            self.lines.append(line)
            if line.startswith(prefix):
                return line[len(prefix) :].strip()

    def finish(self, timeout: float = 15.0) -> Result:
        """Wait for the script to end by itself (kill it and fail the test if it does not) and return its output."""
        started = time.monotonic()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill(self.proc)
            pytest.fail(f"the script did not end within {timeout}s and was killed\n{self.describe()}")
        self._drain()
        return Result("\n".join(self.lines), "".join(self._stderr), self.proc.returncode, time.monotonic() - started)

    def __enter__(self) -> Script:
        return self

    def __exit__(self, *exc_info: object) -> None:
        _kill(self.proc)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now (another program may take it later: use it at once)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _python_version(argv: list[str], env: dict[str, str] | None = None) -> tuple[str, tuple[int, int]] | None:
    """Run ``argv`` as a Python and return its real executable and version, or ``None`` if it does not run."""
    probe = "import sys, venv, ensurepip; print(sys.executable); print(sys.version_info[0], sys.version_info[1])"
    try:
        done = subprocess.run(
            [*argv, "-c", probe],
            capture_output=True,
            text=True,
            timeout=20,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = done.stdout.split("\n")
    if done.returncode != 0 or len(lines) < 2:
        return None
    try:
        major, minor = (int(part) for part in lines[1].split())
    except ValueError:
        return None
    return lines[0].strip(), (major, minor)


def _pyenv_312_versions() -> list[str]:
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    return sorted((path.name for path in root.glob("versions/3.12*") if path.is_dir()), reverse=True)


@cache
def find_python312() -> tuple[str | None, str]:
    """A working python3.12 with venv and ensurepip, as ``(executable, how it was found)``; ``None`` if absent.

    ``python3.12`` may be a pyenv shim that exists but fails until a version is selected, so each candidate is
    run, not just looked up.
    """
    tried: list[str] = []
    home = str(Path.home())
    candidates: list[tuple[list[str], dict[str, str] | None, str]] = []
    if os.environ.get("LEADS_PYTHON312"):
        candidates.append(([os.environ["LEADS_PYTHON312"]], None, "$LEADS_PYTHON312"))
    candidates.append((["python3.12"], None, "python3.12 on PATH"))
    for version in _pyenv_312_versions():
        candidates.append((["python3.12"], {**os.environ, "PYENV_VERSION": version}, f"PYENV_VERSION={version}"))
    patterns = [
        f"{home}/.pyenv/versions/3.12*/bin/python3.12",
        "/usr/bin/python3.12",
        "/usr/local/bin/python3.12",
        "/opt/python*/bin/python3.12",
        "/opt/homebrew/bin/python3.12",
    ]
    for pattern in patterns:
        for path in sorted(glob.glob(pattern), reverse=True):
            candidates.append(([path], None, path))
    for argv, env, how in candidates:
        found = _python_version(argv, env)
        tried.append(how)
        if found is not None and found[1] == (3, 12):
            return found[0], how
    return None, "no working python3.12 (with venv and ensurepip) found; tried: " + ", ".join(tried)


def load_example(path: Path, module_name: str) -> ModuleType:
    """Load the example script ``path`` as a fresh module named ``module_name`` (not put in ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None, f"cannot load {path}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
