"""A real systemd for the system tests: the shared ``systemd-sandbox`` tool and a daemon venv for the units.

The tool lives beside the repository (``shared/tools/systemd-sandbox``, as in CI's checkout) unless
``$SYSTEMD_SANDBOX_TOOL`` names another. It boots ``/lib/systemd/systemd`` as PID 1 of private namespaces, so a
test can ``systemctl start`` the shipped units and see what systemd really does with them. Without root, the
tool, systemd or util-linux the tests skip, naming what is missing; under ``$LEADS_REQUIRE_DEBIAN_PACKAGES``
(CI) they fail instead.

The units' ProtectHome and PrivateTmp hide ``/root``, ``/home`` and ``/tmp`` from the daemon, so its venv is made
from Debian's ``/usr/bin/python3`` under ``/opt``, once per session (``daemon_venv`` in ``tests/system/conftest.py``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from debian_packages import REQUIRE, need_debian_packages

REPO = Path(__file__).resolve().parents[2]
TOOL = Path(os.environ.get("SYSTEMD_SANDBOX_TOOL") or REPO.parent / "shared" / "tools" / "systemd-sandbox")
#: Debian packages the sandbox needs: systemd itself, util-linux (unshare, nsenter, setsid), mount, procps (pgrep).
PACKAGES = ("systemd", "util-linux", "mount", "procps")
PROGRAMS = ("systemctl", "journalctl", "unshare", "nsenter", "setsid", "mount", "pgrep")
#: Extras the daemon venv installs: the monitor for the template unit's channels, pyOpenSSL for --tls-*.
EXTRAS = "monitor,tls"
#: How long a wait on systemd's state may take.
TIMEOUT = 20.0


def need_sandbox() -> None:
    """Skip (fail under ``$LEADS_REQUIRE_DEBIAN_PACKAGES``) unless a sandboxed systemd can be booted here."""
    need_debian_packages(PACKAGES, PROGRAMS)
    missing = []
    if not TOOL.is_file():
        missing.append(f"the systemd-sandbox tool is not at {TOOL} (set SYSTEMD_SANDBOX_TOOL)")
    if os.geteuid() != 0:
        missing.append("systemd-sandbox needs root")
    if not Path("/lib/systemd/systemd").exists():
        missing.append("/lib/systemd/systemd is missing (apt-get install -y systemd)")
    if not Path("/usr/bin/python3").exists():
        missing.append("the daemon venv needs Debian's /usr/bin/python3 (apt-get install -y python3-venv)")
    if not missing:
        return
    reason = "; ".join(missing)
    if os.environ.get(REQUIRE):
        pytest.fail(f"{reason}; {REQUIRE} is set, so this is a failure, not a skip")
    pytest.skip(reason)


def scratch_directory(prefix: str) -> Path:
    """A fresh directory under ``/opt`` that the units' dynamic user can read (``/tmp`` is private to them)."""
    Path("/opt").mkdir(exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/opt"))
    path.chmod(0o755)
    return path


@contextlib.contextmanager
def daemon_venv_built() -> Iterator[Path]:
    """A venv made from ``/usr/bin/python3`` with this repository installed (not editable); removed afterwards."""
    root = scratch_directory("leads-comm-venv-")
    try:
        venv = root / "venv"
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run(
            [str(venv / "bin/pip"), "install", "--quiet", "--no-warn-script-location", f"{REPO}[{EXTRAS}]"],
            check=True,
            timeout=600,
            capture_output=True,
        )
        yield venv
    finally:
        shutil.rmtree(root, ignore_errors=True)


class Sandbox:
    """A private systemd reading units from one directory: ``run`` the tool, ``show`` and ``wait_for`` state."""

    def __init__(self, state: Path, units: Path) -> None:
        self.env = {**os.environ, "SYSTEMD_SANDBOX": str(state)}
        self.units = units

    def run(self, *arguments: str, check: bool = True, timeout: float = 60.0) -> str:
        """``systemd-sandbox ARGUMENTS``; its stdout, or an AssertionError with its output if it failed."""
        result = subprocess.run(
            ["bash", str(TOOL), *arguments], capture_output=True, text=True, env=self.env, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"systemd-sandbox {' '.join(arguments)}: {result.stdout}{result.stderr}")
        return result.stdout

    def ctl(self, *arguments: str, check: bool = True) -> str:
        return self.run("ctl", *arguments, check=check)

    def show(self, unit: str, name: str) -> str:
        return self.ctl("show", "-p", name, "--value", unit).strip()

    def properties(self, unit: str, *names: str) -> dict[str, str]:
        """Several properties at once, as systemd reports them."""
        text = self.ctl("show", *(f"--property={name}" for name in names), unit)
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def wait_for(self, unit: str, name: str, wanted: str, timeout: float = TIMEOUT) -> None:
        """Poll a unit property until it matches ``wanted`` (systemd's own state: there is no event to wait on)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.fullmatch(wanted, self.show(unit, name)):
                return
            time.sleep(0.1)
        raise AssertionError(f"{unit} {name}={self.show(unit, name)!r}, never {wanted!r}\n{self.journal(unit)}")

    def journal(self, unit: str, *arguments: str) -> str:
        return self.run("journal", "-u", unit, "-o", "cat", *arguments, check=False)


@contextlib.contextmanager
def sandbox_up(state: Path, units: Path) -> Iterator[Sandbox]:
    """Boot a sandbox on ``units``; every process in it ends when the block does."""
    box = Sandbox(state, units)
    box.run("up", str(units))
    try:
        yield box
    finally:
        box.run("down", check=False)


def free_port(host: str = "127.0.0.1") -> int:
    """A loopback port nothing listens on now (for a unit, which cannot report a port 0 back to a socket unit)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
