"""The shipped ``leads-comm.service``, ``leads-comm.socket``, socket-activation drop-in and template unit under a
real systemd.

One sandbox serves the whole folder. Before each test the unit directory is written afresh: the shipped files
with the venv's path changed, and a drop-in of the test's own that changes only the port (a free loopback one)
and adds the options the test is about. The hardening lines are never touched.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..daemon.test_systemd_units import UNITS
from ..systemd_sandbox import Sandbox, free_port, need_sandbox, sandbox_up, scratch_directory

SERVICE, SOCKET = "leads-comm.service", "leads-comm.socket"
TEMPLATE = "leads-comm@.service"
SHIPPED_VENV = "/opt/leads-comm/venv"
SHIPPED_CHANNELS = "/etc/leads-comm/"


@pytest.fixture(autouse=True)
def _sandbox_possible() -> None:
    """Skip without root, systemd, util-linux or the tool, naming what is missing; under CI fail instead."""
    need_sandbox()


class Units:
    """The shipped units in the sandbox, and the drop-ins one test adds to them."""

    def __init__(self, box: Sandbox, venv: Path, files: Path) -> None:
        self.box = box
        self.venv = venv
        #: A directory the units' dynamic user can read, for the test's own files (certificates).
        self.files = files
        self.port = 0

    def _shipped(self, name: str) -> str:
        text = (UNITS / name).read_text().replace(SHIPPED_VENV, str(self.venv))
        return text.replace(SHIPPED_CHANNELS, f"{self.files / 'etc'}/")

    def reset(self) -> None:
        """The shipped service and socket, nothing else; systemd re-reads them."""
        for entry in self.box.units.iterdir():
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        for name in (SERVICE, SOCKET, TEMPLATE):
            (self.box.units / name).write_text(self._shipped(name))
        self.box.ctl("daemon-reload")

    def _drop_in(self, unit: str, name: str, text: str) -> None:
        directory = self.box.units / f"{unit}.d"
        directory.mkdir(exist_ok=True)
        (directory / name).write_text(text)

    def listen(self, *options: str) -> int:
        """The service on a free loopback port, with ``options`` added to its command line; returns the port."""
        self.port = free_port()
        command = re.search(r"^ExecStart=(.+)$", self._shipped(SERVICE), re.MULTILINE)
        assert command and " --port=16900" in command.group(1), "the shipped ExecStart changed: update this test"
        line = command.group(1).replace(
            " --port=16900", " ".join(["", f"--port={self.port}", "--interface=127.0.0.1", *options])
        )
        self._drop_in(SERVICE, "test.conf", f"[Service]\nExecStart=\nExecStart={line}\n")
        self.box.ctl("daemon-reload")
        return self.port

    def socket_activated(self) -> int:
        """The socket unit on a free ``[::1]`` port and the shipped socket-activation drop-in; returns the port."""
        self.port = free_port("::1")
        self._drop_in(SERVICE, "socket-activation.conf", self._shipped("leads-comm.service.d/socket-activation.conf"))
        self._drop_in(SOCKET, "test.conf", f"[Socket]\nListenStream=\nListenStream=[::1]:{self.port}\n")
        self.box.ctl("daemon-reload")
        return self.port

    def channel(self, name: str) -> int:
        """The shipped example file of channel ``name`` for ``leads-comm@NAME``, on free loopback ports."""
        self.port = free_port()
        text = (UNITS / "leads-comm" / f"{name}.toml").read_text()
        text, ports = re.subn(r"^port = \d+$", f'port = {self.port}\ninterface = "127.0.0.1"', text, flags=re.MULTILINE)
        text, monitors = re.subn(r"^monitor = .*$", 'monitor = "tcp:0:interface=127.0.0.1"', text, flags=re.MULTILINE)
        assert (ports, monitors) == (1, 1), "the shipped channel file changed: update this test"
        (self.files / "etc").mkdir(mode=0o755, exist_ok=True)
        (self.files / "etc" / f"{name}.toml").write_text(text)
        return self.port

    def stop(self) -> None:
        self.box.ctl("stop", SOCKET, SERVICE, "leads-comm@*.service", check=False)
        self.box.ctl("reset-failed", check=False)


@pytest.fixture(scope="package")
def systemd_box(daemon_venv: Path) -> Iterator[tuple[Sandbox, Path]]:
    """One sandboxed systemd for the folder, and a readable scratch directory beside its units."""
    root = scratch_directory("leads-comm-units-")
    try:
        (root / "units").mkdir()
        (root / "files").mkdir(mode=0o755)
        with sandbox_up(root / "state", root / "units") as box:
            yield box, root / "files"
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def units(systemd_box: tuple[Sandbox, Path], daemon_venv: Path) -> Iterator[Units]:
    """The shipped units, fresh for this test; stopped (and any failure forgotten) when it ends."""
    box, files = systemd_box
    made = Units(box, daemon_venv, files)
    made.reset()
    try:
        yield made
    finally:
        made.stop()
