"""The template unit under a real systemd (the shared ``systemd-sandbox`` tool): two channels side by side from
their TOML files, the refreshed ``STATUS=``, and the watchdog restarting a daemon whose reactor is held.

The units are the shipped ones with three paths changed (the venv, the channel files, a drop-in putting a copy
of this directory's callbacks on ``PYTHONPATH``) and ``WatchdogSec=1``; the channel files are the shipped examples on
port 0 and loopback. The daemon's venv is the session's one (``tests/system/systemd_sandbox.py``).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..daemon.test_systemd_units import UNITS
from ..daemon.twistd_harness import Client
from ..systemd_sandbox import Sandbox, need_sandbox, sandbox_up, scratch_directory

OPERATORS = Path(__file__).resolve().parent
#: The session's daemon venv is built in the first test's setup.
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(autouse=True)
def _sandbox_possible() -> None:
    """Skip without root, systemd or the tool, naming what is missing; under CI fail instead."""
    need_sandbox()


@pytest.fixture(scope="module")
def sandbox(daemon_venv: Path) -> Iterator[Sandbox]:
    root = scratch_directory("leads-comm-systemd-")
    try:
        units, etc = root / "units", root / "etc"
        units.mkdir()
        etc.mkdir()
        template = (UNITS / "leads-comm@.service").read_text()
        template = template.replace("/opt/leads-comm/venv", str(daemon_venv)).replace("/etc/leads-comm/", f"{etc}/")
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
        with sandbox_up(root / "state", units) as box:
            yield box
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
