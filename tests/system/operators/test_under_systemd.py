"""The template unit under a real systemd (the shared ``systemd-sandbox`` tool): two channels side by side from
their TOML files, the refreshed ``STATUS=``, and the watchdog restarting a daemon whose reactor is held.

The units are the shipped ones with three paths changed (the venv, the channel files, a drop-in putting a copy
of this directory's callbacks on ``PYTHONPATH``) and ``WatchdogSec=1``; the channel files are the shipped examples on
port 0 and loopback. The daemon's venv is made from ``/usr/bin/python3`` under ``/opt`` (the units' PrivateTmp
and ProtectHome hide ``/tmp``, ``/root`` and ``/home`` from them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..daemon.test_systemd_units import UNITS
from ..daemon.twistd_harness import REPO, Client

OPERATORS = Path(__file__).resolve().parent
TOOL = Path(os.environ.get("SYSTEMD_SANDBOX_TOOL", "/work/shared/tools/systemd-sandbox"))


def _missing() -> str | None:
    if not TOOL.is_file():
        return f"the systemd-sandbox tool is not at {TOOL} (set SYSTEMD_SANDBOX_TOOL)"
    if os.geteuid() != 0:
        return "systemd-sandbox needs root"
    if not Path("/lib/systemd/systemd").exists():
        return "systemd is not installed (apt-get install systemd)"
    if not Path("/usr/bin/python3").exists() or shutil.which("nsenter") is None:
        return "needs /usr/bin/python3 and util-linux's nsenter"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


class Sandbox:
    """A private systemd with our units; ``ctl``, ``show`` and ``down``."""

    def __init__(self, state: Path, units: Path) -> None:
        self.env = {**os.environ, "SYSTEMD_SANDBOX": str(state)}
        self.units = units

    def run(self, *arguments: str, check: bool = True) -> str:
        result = subprocess.run(
            [str(TOOL), *arguments], capture_output=True, text=True, env=self.env, timeout=60, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"systemd-sandbox {' '.join(arguments)}: {result.stdout}{result.stderr}")
        return result.stdout

    def show(self, unit: str, name: str) -> str:
        return self.run("ctl", "show", "-p", name, "--value", unit).strip()

    def wait_for(self, unit: str, name: str, wanted: str, timeout: float = 20.0) -> None:
        """Poll a unit property until it has the wanted value (systemd's own state, bounded in time)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.fullmatch(wanted, self.show(unit, name)):
                return
            time.sleep(0.1)
        raise AssertionError(f"{unit} {name}={self.show(unit, name)!r}, never {wanted!r}\n{self.journal(unit)}")

    def journal(self, unit: str) -> str:
        return self.run("journal", "-u", unit, "-o", "cat", check=False)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    root = Path(tempfile.mkdtemp(prefix="leads-comm-systemd-", dir="/opt"))
    root.chmod(0o755)  # the units' dynamic user must read the venv and the files
    try:
        venv = root / "venv"
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run([str(venv / "bin/pip"), "install", "--quiet", f"{REPO}[monitor]"], check=True, timeout=600)
        units, etc = root / "units", root / "etc"
        units.mkdir()
        etc.mkdir()
        template = (UNITS / "leads-comm@.service").read_text()
        template = template.replace("/opt/leads-comm/venv", str(venv)).replace("/etc/leads-comm/", f"{etc}/")
        template = re.sub(r"^WatchdogSec=\d+$", "WatchdogSec=1", template, flags=re.MULTILINE)
        (units / "leads-comm@.service").write_text(template)
        (units / "leads-comm@.service.d").mkdir()
        # The test callbacks beside the venv: the repository may live under /root, which the units cannot see.
        (root / "lib").mkdir()
        shutil.copy(OPERATORS / "callbacks.py", root / "lib")
        (units / "leads-comm@.service.d/test.conf").write_text(f"[Service]\nEnvironment=PYTHONPATH={root / 'lib'}\n")
        for channel in ("telemetry", "video"):
            text = (UNITS / "leads-comm" / f"{channel}.toml").read_text()
            text = re.sub(r"^port = \d+$", 'port = 0\ninterface = "127.0.0.1"', text, flags=re.MULTILINE)
            text = re.sub(r"^monitor = .*$", 'monitor = "tcp:0:interface=127.0.0.1"', text, flags=re.MULTILINE)
            (etc / f"{channel}.toml").write_text(text + 'callback = "callbacks:Block"\n')
        box = Sandbox(root / "state", units)
        box.run("up", str(units))
        try:
            yield box
        finally:
            box.run("down", check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def port_of(box: Sandbox, unit: str) -> int:
    """The port in the unit's ``STATUS=`` (``relay on 127.0.0.1:PORT...``)."""
    return int(re.search(r"127\.0\.0\.1:(\d+)", box.show(unit, "StatusText")).group(1))


def relayed_with_end(port: int) -> None:
    """A message from one client reaches the other through the daemon on ``port``."""
    receiver, sender = Client(port, separator=b"end;"), Client(port, separator=b"end;")
    try:
        sender.send(b"hello")  # the relay holds both once the first sees the second's message
        receiver.receive(1)
        sender.send(b"frame;data")  # a ";" inside a video frame is no separator there
        assert receiver.receive(1) == [b"frame;data"]
    finally:
        receiver.close()
        sender.close()


def test_two_channels_side_by_side_with_a_refreshed_status(sandbox: Sandbox) -> None:
    units = ("leads-comm@telemetry.service", "leads-comm@video.service")
    sandbox.run("ctl", "start", *units)
    for unit in units:
        sandbox.wait_for(unit, "ActiveState", "active")
        # READY=1's status, then the refreshed one with the rates, every 5 s.
        sandbox.wait_for(unit, "StatusText", r"relay on 127\.0\.0\.1:\d+: 0 clients, 0 msg/s in, 0 msg/s out")
    video = port_of(sandbox, "leads-comm@video.service")
    telemetry = port_of(sandbox, "leads-comm@telemetry.service")
    assert video != telemetry
    relayed_with_end(video)
    receiver, sender = Client(telemetry), Client(telemetry)
    try:
        sender.send(b"hello")
        assert receiver.receive(1) == [b"hello"]
    finally:
        receiver.close()
        sender.close()
    assert "configuration from" in sandbox.journal("leads-comm@video.service")  # ExecStartPre's --check
    assert sandbox.show("leads-comm@video.service", "WatchdogUSec") == "1s"


def test_the_watchdog_restarts_a_daemon_whose_reactor_is_held(sandbox: Sandbox) -> None:
    unit = "leads-comm@telemetry.service"
    sandbox.run("ctl", "start", unit)
    sandbox.wait_for(unit, "ActiveState", "active")
    sandbox.wait_for(unit, "StatusText", r"relay on .*msg/s out")
    before = int(sandbox.show(unit, "NRestarts"))
    pid = sandbox.show(unit, "MainPID")
    client = Client(port_of(sandbox, unit))
    try:
        client.send(b"block")  # holds the reactor 2 s: no WATCHDOG=1 for over WatchdogSec=1
        sandbox.wait_for(unit, "Result", "watchdog")
    finally:
        client.close()
    sandbox.wait_for(unit, "NRestarts", str(before + 1))
    sandbox.wait_for(unit, "ActiveState", "active")
    assert sandbox.show(unit, "MainPID") != pid
    # Killed while held: the slow-callback warning, written once a callback returns, never came.
    journal = sandbox.journal(unit)
    assert journal.count("leads-comm (relay) listening on") == 2
    assert "held the reactor for" not in journal
