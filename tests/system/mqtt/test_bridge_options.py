"""The daemon's bridge options: each mistake ends twistd with one line that says what to fix."""

from __future__ import annotations

import pytest

from ..daemon.twistd_harness import run_twistd


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--bridge", "http://broker", "--vehicle", "car1"], "must start with mqtt:// or mqtts://"),
        (["--bridge", "mqtt://broker"], "--bridge needs --vehicle NAME"),
        (["--bridge", "mqtt://broker:99999", "--vehicle", "car1"], "not a number from 1 to 65535"),
        (["--bridge", "mqtt://user:pw@broker", "--vehicle", "car1"], "give credentials in a credentials file"),
        (["--bridge", "mqtt://broker", "--vehicle", "car/1"], "must be one topic level"),
        (["--bridge", "mqtt://broker", "--vehicle", "car1", "--bridge-topic", "fleet/#"], "no + # or final /"),
        (["--bridge", "mqtt://broker", "--vehicle", "car1", "--bridge-qos", "2"], "--bridge-qos must be"),
        (["--bridge", "mqtt://broker", "--vehicle", "car1", "--bridge-queue", "-1"], "--bridge-queue must be"),
        (["--bridge", "mqtt://broker", "--vehicle", "car1", "--bridge-ca", "/nonexistent"], "--bridge-ca /nonexistent"),
        (["--vehicle", "car1"], "--vehicle needs --bridge"),
    ],
)
def test_mistakes_are_one_line(tmp_path, arguments, expected):
    done = run_twistd("--port", "0", *arguments, cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("twistd leads-comm: ") and expected in lines[0], lines[0]


def test_ca_without_mqtts(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not used")
    done = run_twistd("--bridge", "mqtt://broker", "--vehicle", "car1", "--bridge-ca", str(ca), cwd=tmp_path)
    assert done.returncode == 1
    assert "need an mqtts:// broker address" in done.stderr


def test_empty_credentials_file(tmp_path):
    empty = tmp_path / "credentials"
    empty.write_text("\n")
    done = run_twistd(
        "--bridge", "mqtt://broker", "--vehicle", "car1", "--bridge-credentials", str(empty), cwd=tmp_path
    )
    assert done.returncode == 1
    assert "must hold a user name on its first line" in done.stderr


def test_without_paho_the_daemon_runs_and_bridge_says_what_to_install(tmp_path):
    fake = tmp_path / "paho"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('paho-mqtt is not installed here')\n")
    done = run_twistd("--bridge", "mqtt://broker", "--vehicle", "car1", cwd=tmp_path)
    assert done.returncode == 1
    assert "--bridge needs paho-mqtt 2 or later: pip install 'leads_twisted[mqtt]'" in done.stderr
    # Without --bridge nothing imports paho: --help goes through the whole command line and the tap module.
    done = run_twistd("--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "--bridge-queue" in done.stdout
