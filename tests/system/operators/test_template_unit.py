"""The template unit ``leads-comm@.service`` and its channel files: verified, hardened, and valid for the daemon."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from debian_packages import need_debian_packages

from ..daemon.test_systemd_units import MAX_EXPOSURE, UNITS, analyze, install_in_root
from ..daemon.twistd_harness import run_twistd


@pytest.fixture(autouse=True)
def _systemd_analyze() -> None:
    """Skip without systemd-analyze, naming the package; under CI (which installs it) fail instead."""
    need_debian_packages(("systemd",), ("systemd-analyze",))


TEMPLATE = UNITS / "leads-comm@.service"
CHANNELS = {"telemetry": (16900, ";"), "video": (16901, "end;")}


def exposure_of(result, unit: str) -> float:
    found = re.search(rf"Overall exposure level for {re.escape(unit)}: (\d+\.\d+)", result.stdout)
    assert found, result.stdout + result.stderr
    return float(found.group(1))


def test_verify_prints_nothing_for_both_channels(tmp_path: Path) -> None:
    install_in_root(tmp_path)
    result = analyze("verify", f"--root={tmp_path}", *(f"leads-comm@{channel}.service" for channel in CHANNELS))
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_verify_of_the_template_catches_a_misspelt_key(tmp_path: Path) -> None:
    installed = install_in_root(tmp_path)
    template = installed / "leads-comm@.service"
    template.write_text(template.read_text().replace("WatchdogSec=", "WatchdogSecs="))
    result = analyze("verify", f"--root={tmp_path}", "leads-comm@telemetry.service")
    assert "Unknown key 'WatchdogSecs'" in result.stdout + result.stderr


@pytest.mark.parametrize("unit", ["leads-comm@telemetry.service", "leads-comm@video.service", "leads-comm.service"])
def test_security_exposure_is_at_most_2(tmp_path: Path, unit: str) -> None:
    source = TEMPLATE if "@" in unit else UNITS / unit
    shutil.copy(source, tmp_path / unit)  # alone: no drop-in directory beside it
    assert exposure_of(analyze("security", "--offline=true", str(tmp_path / unit)), unit) <= MAX_EXPOSURE


def test_both_services_have_the_watchdog_and_the_template_reads_its_channel_file() -> None:
    for unit in (TEMPLATE, UNITS / "leads-comm.service"):
        assert re.search(r"^WatchdogSec=\d+$", unit.read_text(), re.MULTILINE), unit
        assert re.search(r"^Type=notify$", unit.read_text(), re.MULTILINE), unit
    text = TEMPLATE.read_text()
    assert "leads-comm --config=/etc/leads-comm/%i.toml\n" in text
    assert "leads-comm --config=/etc/leads-comm/%i.toml --check\n" in text
    assert "AssertPathExists=/etc/leads-comm/%i.toml" in text


@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_each_example_channel_file_passes_the_check(tmp_path: Path, channel: str) -> None:
    port, separator = CHANNELS[channel]
    path = UNITS / "leads-comm" / f"{channel}.toml"
    assert f"port = {port}\n" in path.read_text()
    assert f'separator = "{separator}"\n' in path.read_text()
    result = run_twistd(f"--config={path}", "--check", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == f"twistd leads-comm: configuration from {path} is valid: relay on *:{port}\n"


def test_the_template_keeps_the_services_hardening() -> None:
    """Every setting from ``# Who it runs as`` on is the same in both units: a change to one must reach both."""

    def hardening(unit: Path) -> list[str]:
        text = unit.read_text().split("# Who it runs as", 1)[1]
        return [line for line in text.splitlines() if line and not line.startswith("#")]

    assert hardening(TEMPLATE) == hardening(UNITS / "leads-comm.service")
    assert len(hardening(TEMPLATE)) > 25
