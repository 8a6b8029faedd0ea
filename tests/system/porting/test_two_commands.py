"""The README's two commands, run as written in a copy of the checkout: run, test, run again.

Before, the test command's editable install replaced the run command's in the one ``.venv``, and
``twistd leads-comm`` became unknown. Each command now has its own venv; this runs them in the order that
broke (and the run command once more after the tests), with the real daemon answering each time.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from support import REPO_ROOT, script_env

from .test_readme import RUN_COMMAND, TEST_COMMAND

pytestmark = pytest.mark.timeout(900)


def copy_checkout(to: Path) -> Path:
    """The files git would have in a fresh clone (tracked, and new ones not ignored), nothing else."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (to / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, to / name)
    return to


def sh(command: str, cwd: Path, timeout: float = 400) -> str:
    done = subprocess.run(
        ["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=script_env()
    )
    assert done.returncode == 0, f"{command}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    return done.stdout


def run_the_daemon(cwd: Path) -> None:
    """The run command: its setup part as written, then its twistd on a free loopback port, answering a client;
    Ctrl-C ends it."""
    setup, twistd = RUN_COMMAND.rsplit(" && ", 1)
    sh(setup, cwd)
    command = twistd.replace("--port 16900", "--port 0 --interface 127.0.0.1").split()
    daemon = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert daemon.stdout is not None
        output = []
        for line in daemon.stdout:
            output.append(line)
            if "listening on 127.0.0.1:" in line:
                break
        else:
            pytest.fail("the daemon ended before listening:\n" + "".join(output))
        port = int(output[-1].rsplit(":", 1)[1])
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as one,
            socket.create_connection(("127.0.0.1", port), timeout=10) as two,
        ):
            # Relay mode: the other client gets it, once the daemon has taken both links (sent again until then).
            two.settimeout(0.2)
            for _ in range(50):
                one.sendall(b"relayed;")
                try:
                    assert two.recv(9) == b"relayed;"
                    break
                except TimeoutError:
                    continue
            else:
                pytest.fail("the daemon relayed nothing in 10 s")
        daemon.send_signal(signal.SIGINT)  # Ctrl-C; twistd ends by raising the signal again, as it does on SIGTERM
        assert daemon.wait(30) in (0, -signal.SIGINT)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(10)


def test_the_run_command_then_the_test_command_then_the_run_command(tmp_path: Path):
    checkout = copy_checkout(tmp_path / "leads_twisted")
    run_the_daemon(checkout)
    setup, _ = TEST_COMMAND.rsplit(" && ", 1)
    sh(setup, checkout)
    # The test command's last step, on the pure tier only: the whole suite is what CI runs.
    assert " passed" in sh(".venv/bin/python -m pytest -q -p no:randomly tests/unit", checkout)
    run_the_daemon(checkout)
    assert "leads-comm" in sh(".venv-daemon/bin/twistd --help", checkout)


def test_control_one_venv_for_both_loses_the_plugin(tmp_path: Path):
    """What the two venvs avoid: an editable install over the plain one hides the plugin from twistd."""
    checkout = copy_checkout(tmp_path / "leads_twisted")
    sh("python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/twistd --help | grep -q leads-comm", checkout)
    sh(".venv/bin/pip install -e .", checkout)
    assert "leads-comm" not in sh(".venv/bin/twistd --help", checkout)
