"""A mistake ends twistd with one clear line and a failure status, never a traceback or a page of usage."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from .twistd_harness import run_twistd


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        # One of each way to fail; test_parts.py goes through every option in-process.
        (["--bogus"], "option --bogus not recognized"),
        (["--port", "http"], "--port must be a whole number from 0 to 65535, not 'http'"),
        (["--callback", "no_such_module:Handler"], "cannot import 'no_such_module'"),
        (["--callback", "broken_on_import:Anything"], "ZeroDivisionError: division by zero (/"),
        (["--callback", "leads_probe:NeedsArguments"], "NeedsArguments() failed: TypeError"),
        (["--endpoint", "carrier-pigeon:16900"], "--endpoint carrier-pigeon:16900: Unknown endpoint type"),
        (["--endpoint", "systemd:domain=INET6:name=leads-comm"], "systemd passed no socket named 'leads-comm'"),
    ],
)
def test_bad_command_line_is_one_line_on_stderr(tmp_path: Path, arguments: list[str], expected: str) -> None:
    (tmp_path / "broken_on_import.py").write_text("RATIO = 1 / 0\n")
    result = run_twistd(*arguments, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("twistd leads-comm: ")
    assert expected in lines[0]
    assert result.stdout == ""


def test_port_in_use_is_one_logged_line_and_status_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_twistd("--interface", "127.0.0.1", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    reasons = [line for line in output.splitlines() if "Address already in use" in line]
    assert len(reasons) == 1, output
    assert f"cannot listen on 127.0.0.1 port {port}" in reasons[0]
    assert "error]" in reasons[0]  # logged at error level: <3> in the journal
    assert "Main loop" not in output  # it never ran


def test_port_in_use_when_daemonizing_is_reported_to_the_launching_process(tmp_path: Path) -> None:
    """twistd without -n waits for its daemon to say how the start went: it must hear, not wait forever."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        options = ["--pidfile", str(tmp_path / "twistd.pid"), "--logfile", str(tmp_path / "twistd.log")]
        result = run_twistd("--interface", "127.0.0.1", "--port", str(port), cwd=tmp_path, twistd_options=options)
    assert result.returncode == 1
    assert result.stderr.startswith("An error has occurred: b'OSError: [Errno 98] cannot listen on 127.0.0.1 port")
    assert "Address already in use" in (tmp_path / "twistd.log").read_text()
