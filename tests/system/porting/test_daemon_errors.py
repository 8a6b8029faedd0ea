"""The daemon's start errors a newcomer met, each one line that says what is wrong."""

from __future__ import annotations

import socket
from pathlib import Path

from system.daemon.twistd_harness import run_twistd


def test_an_endpoint_with_a_word_for_a_port_is_one_line_naming_the_option(tmp_path: Path) -> None:
    result = run_twistd("--endpoint", "tcp:abc", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "twistd leads-comm: --endpoint tcp:abc: 'abc' is not a number where the description needs one "
        "(a port, as in tcp:16900)"
    ]


def lingering_port() -> int:
    """A port nothing listens on, held by a connection in TIME_WAIT of a socket that did not allow reuse."""
    with socket.socket() as old:
        old.bind(("127.0.0.1", 0))
        old.listen(1)
        port = old.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as peer:
            accepted, _ = old.accept()
            accepted.close()  # this side closes first: its socket lingers in TIME_WAIT
            assert peer.recv(10) == b""
    return port


def test_a_port_in_time_wait_is_not_blamed_on_a_listener(tmp_path: Path) -> None:
    port = lingering_port()
    result = run_twistd("--interface", "127.0.0.1", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 1
    reasons = [line for line in (result.stdout + result.stderr).splitlines() if "Address already in use" in line]
    assert len(reasons) == 1, result.stdout + result.stderr
    assert "nothing listens on it" in reasons[0] and "TIME_WAIT" in reasons[0]
    assert "listens on it (" not in reasons[0]
