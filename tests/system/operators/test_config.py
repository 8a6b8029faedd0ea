"""``--config FILE`` (TOML), ``--check`` and ``--version`` through the real ``twistd``."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

import leads_twisted
import twisted

from ..daemon.twistd_harness import Client, Daemons, run_twistd
from .conftest import environment


def write(tmp_path: Path, text: str, name: str = "leads.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_version_names_both_versions(tmp_path: Path) -> None:
    result = run_twistd("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith(f"leads-comm {leads_twisted.__version__} (leads_twisted) on Twisted ")
    assert twisted.__version__ in result.stdout


def test_version_is_logged_at_start(daemons: Daemons) -> None:
    daemon = daemons.start("--interface", "127.0.0.1", "--port", "0")
    first = daemon.log().splitlines()[0]
    assert f"leads-comm {leads_twisted.__version__} (leads_twisted) on Twisted {twisted.__version__}" in first


def test_check_accepts_a_good_file_and_starts_nothing(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = write(
        tmp_path,
        f'port = {port}\ninterface = "127.0.0.1"\nseparator = "end;"\nmax-connections = 100\n'
        'max_buffered = 65536\nmode = "echo"\nmonitor = "tcp:0:interface=127.0.0.1"\nslow-callback = 0.05\n',
    )
    result = run_twistd("--config", str(config), "--check", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"twistd leads-comm: configuration from {config} is valid: echo on 127.0.0.1:{port}\n"
    with pytest.raises(ConnectionRefusedError):  # --check listened nowhere
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("port = 70000\n", "--port must be a whole number from 0 to 65535, not '70000'"),
        ("prot = 16900\n", "no option --prot; a key is a long option of --help without its '--'"),
        ("port = \n", "not valid TOML"),
        ('separator = ["a", true]\n', "separator takes a string or a number (or a list of them), not True"),
        ("check = true\n", "check belongs on the command line, not in the file"),
        ("mode = { name = 'relay' }\n", "mode takes a string or a number"),
        ('slow-policy = "later"\n', "--slow-policy must be disconnect or drop, not 'later'"),
    ],
)
def test_check_refuses_a_bad_file_in_one_line(tmp_path: Path, text: str, expected: str) -> None:
    config = write(tmp_path, text)
    result = run_twistd("--config", str(config), "--check", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert expected in output
    assert len(output.strip().splitlines()) == 1, output
    assert "Traceback" not in output


def test_missing_file_and_bad_flag_are_one_line(tmp_path: Path) -> None:
    result = run_twistd("--config", str(tmp_path / "absent.toml"), "--check", cwd=tmp_path)
    assert result.returncode == 1
    assert f"--config {tmp_path / 'absent.toml'}: No such file or directory" in result.stdout + result.stderr
    result = run_twistd("--check", "--endpoint", "tcp:notaport", cwd=tmp_path)
    assert result.returncode == 1
    assert len((result.stdout + result.stderr).strip().splitlines()) == 1


def test_command_line_wins_and_lists_repeat(daemons: Daemons, tmp_path: Path) -> None:
    """The file asks for two endpoints and ``;``; the command line's separator wins; a list gives both endpoints."""
    config = write(
        tmp_path,
        'endpoint = ["tcp:0:interface=127.0.0.1", "tcp:0:interface=127.0.0.1"]\nseparator = ";"\nmax-connections = 1\n',
    )
    daemon = daemons.start("--config", str(config), "--separator", "end;")
    ports = [int(port) for port in re.findall(r":(\d+)", daemon.ready["STATUS"])]
    assert len(ports) == 2
    first = Client(ports[0], separator=b"end;")
    try:
        first.send(b"hello")
        assert "connected (1 connected)" in daemon.wait_for_log("connected (1 connected)")
        second = Client(ports[1], separator=b"end;")  # max-connections = 1 from the file: turned away
        try:
            assert second.receive_until_closed() == b"disconnectend;"
        finally:
            second.close()
    finally:
        first.close()


def test_command_line_endpoint_replaces_the_files_list(daemons: Daemons, tmp_path: Path) -> None:
    config = write(tmp_path, 'endpoint = ["tcp:0:interface=127.0.0.1", "tcp:0:interface=127.0.0.1"]\n')
    daemon = daemons.start("--config", str(config), "--endpoint", "tcp:0:interface=127.0.0.1")
    assert len(re.findall(r":(\d+)", daemon.ready["STATUS"])) == 1


def test_a_file_can_load_a_callback(daemons: Daemons, tmp_path: Path) -> None:
    config = write(tmp_path, 'port = 0\ninterface = "127.0.0.1"\ncallback = "callbacks:Block"\n')
    daemon = daemons.start("--config", str(config), env=environment())
    assert daemon.port > 0
