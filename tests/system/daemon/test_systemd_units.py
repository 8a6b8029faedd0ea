"""The systemd units are code: ``systemd-analyze verify`` prints nothing, and the service is hardened.

``verify`` also checks that each ``ExecStart=`` program exists, so the units are verified as installed in a
scratch root: the host's own units (for the targets they name), ours in ``etc/systemd/system``, and an
executable stand-in for ``/opt/leads-comm/venv/bin/twistd``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .twistd_harness import REPO

UNITS = REPO / "systemd"
ANALYZE = shutil.which("systemd-analyze")
HOST_UNITS = next(
    (path for path in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if path.is_dir()), None
)
MAX_EXPOSURE = 2.0

pytestmark = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed on this machine")


def analyze(*arguments: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run([ANALYZE, *arguments], capture_output=True, text=True, timeout=60)


def install_in_root(root: Path) -> Path:
    """Lay out a root with our units installed; return the directory they are in."""
    if HOST_UNITS is None:
        pytest.skip("systemd-analyze is here but the host's unit directory is not")
    shutil.copytree(HOST_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    installed = root / "etc/systemd/system"
    shutil.copytree(UNITS, installed)
    for unit in installed.rglob("*"):
        for program in re.findall(r"^ExecStart=(\S+)", unit.read_text() if unit.is_file() else "", re.MULTILINE):
            stand_in = root / program.lstrip("/")
            stand_in.parent.mkdir(parents=True, exist_ok=True)
            stand_in.write_text("#!/bin/sh\n")
            stand_in.chmod(0o755)
    return installed


def exposure(result: subprocess.CompletedProcess[str]) -> float:
    found = re.search(r"Overall exposure level for leads-comm\.service: (\d+\.\d+)", result.stdout)
    assert found, result.stdout + result.stderr
    return float(found.group(1))


def test_verify_prints_nothing_for_both_units_and_the_drop_in(tmp_path: Path) -> None:
    install_in_root(tmp_path)
    result = analyze("verify", f"--root={tmp_path}", "leads-comm.service", "leads-comm.socket")
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_verify_in_that_root_does_catch_a_misspelt_key(tmp_path: Path) -> None:
    """The check above can fail: the same command reports a typo."""
    installed = install_in_root(tmp_path)
    service = installed / "leads-comm.service"
    service.write_text(service.read_text().replace("RestartSec=", "RestartSecs="))
    result = analyze("verify", f"--root={tmp_path}", "leads-comm.service")
    assert "Unknown key 'RestartSecs'" in result.stdout + result.stderr


def test_security_exposure_of_the_service_is_at_most_2(tmp_path: Path) -> None:
    # The service alone: a drop-in directory next to the unit file would be read too.
    shutil.copy(UNITS / "leads-comm.service", tmp_path)
    plain = exposure(analyze("security", "--offline=true", str(tmp_path / "leads-comm.service")))
    assert plain <= MAX_EXPOSURE


def test_socket_activation_drop_in_only_tightens_the_service(tmp_path: Path) -> None:
    shutil.copy(UNITS / "leads-comm.service", tmp_path)
    plain = exposure(analyze("security", "--offline=true", str(tmp_path / "leads-comm.service")))
    install_in_root(tmp_path / "root")
    activated = exposure(analyze("security", "--offline=true", f"--root={tmp_path / 'root'}", "leads-comm.service"))
    assert activated < plain


def test_units_agree_with_the_daemon() -> None:
    """The socket's name is the one the activated service asks for; the service lines are the issue's."""
    service = (UNITS / "leads-comm.service").read_text()
    socket_unit = (UNITS / "leads-comm.socket").read_text()
    drop_in = (UNITS / "leads-comm.service.d/socket-activation.conf").read_text()
    assert "FileDescriptorName=leads-comm" in socket_unit
    assert "--endpoint=systemd:domain=INET6:name=leads-comm" in drop_in
    # LimitNOFILE: the daemon could not raise its own soft limit past 1024 under the filter's ~@resources.
    for line in (
        "Type=notify",
        "Restart=on-failure",
        "StartLimitIntervalSec=0",
        "DynamicUser=yes",
        "LimitNOFILE=524288",
    ):
        assert re.search(rf"^{re.escape(line)}$", service, re.MULTILINE), line
    assert "--nodaemon --pidfile= --logfile=- --logger=leads_twisted.daemon.journald.observer leads-comm" in service
