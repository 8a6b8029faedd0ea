"""The daemon's flags for limits and framing reach its server: checked against a real twistd."""

from __future__ import annotations

import contextlib
import resource
import struct
import sys
from pathlib import Path

import pytest

from .twistd_harness import Client, Daemons, run_twistd


def echoed(*clients: Client) -> None:
    """Each client's link is registered by the echo daemon: its message comes back."""
    for client in clients:
        client.send(b"ping")
        assert client.receive(1) == [b"ping"]


def test_max_connections_turns_the_extra_client_away(daemons: Daemons) -> None:
    daemon = daemons.start("--interface", "127.0.0.1", "--port", "0", "--mode", "echo", "--max-connections", "2")
    first, second = Client(daemon.port), Client(daemon.port)
    try:
        echoed(first, second)
        extra = Client(daemon.port)
        try:
            assert extra.receive_until_closed() == b"disconnect;"  # told at once, then closed
        finally:
            extra.close()
        first.send(b"still here")
        assert first.receive(1) == [b"still here"]
        daemon.wait_for_log("max_connections")
    finally:
        first.close()
        second.close()


def test_length_framing_carries_the_separator(daemons: Daemons) -> None:
    daemon = daemons.start("--interface", "127.0.0.1", "--port", "0", "--mode", "echo", "--framing", "length")
    client = Client(daemon.port)
    try:
        payload = b"a;b;c"
        client.socket.sendall(struct.pack(">I", len(payload)) + payload)
        client.socket.settimeout(10)
        echoed = b""
        while len(echoed) < 4 + len(payload):
            chunk = client.socket.recv(65536)
            assert chunk, "the daemon closed the link instead of echoing"
            echoed += chunk
        assert echoed == struct.pack(">I", len(payload)) + payload
    finally:
        client.close()


def test_a_message_over_max_message_drops_only_that_client(daemons: Daemons) -> None:
    daemon = daemons.start("--interface", "127.0.0.1", "--port", "0", "--mode", "echo", "--max-message", "1024")
    big, small = Client(daemon.port), Client(daemon.port)
    try:
        echoed(big, small)
        big.socket.sendall(b"x" * 4096)
        # Cut while its unread bytes were still queued, the link may end in a reset rather than a clean close.
        with contextlib.suppress(ConnectionResetError):
            assert big.receive_until_closed() == b""
        small.send(b"fine")
        assert small.receive(1) == [b"fine"]
        daemon.wait_for_log("exceeds the limit of 1024 bytes")
    finally:
        big.close()
        small.close()


def test_flags_that_do_not_fit_say_so_in_one_line(tmp_path) -> None:
    cases = {
        ("--slow-policy", "later"): "--slow-policy must be disconnect or drop",
        ("--idle-timeout", "-1"): "--idle-timeout must be a positive number of seconds",
        ("--framing", "xml"): "--framing must be separator or length",
        ("--tls-key", str(tmp_path / "missing.key")): "--tls-key",
        ("--tls-certificate", __file__): "TLS needs both --tls-certificate and --tls-key",
    }
    for arguments, expected in cases.items():
        finished = run_twistd(*arguments, cwd=tmp_path)
        assert finished.returncode == 1, (arguments, finished.stderr)
        lines = finished.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (arguments, finished.stderr)


def test_the_daemon_raises_its_descriptor_limit_to_the_hard_limit(daemons: Daemons) -> None:
    # Started as systemd starts a service: a soft limit of 256 (systemd's is 1024), the hard limit as it is.
    soft_limit = 256
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= soft_limit:
        pytest.fail(f"this machine's hard limit on open files ({hard}) leaves nothing to raise")
    lowered = [
        sys.executable,
        "-c",
        "import os, resource, sys;"
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({soft_limit}, resource.getrlimit(resource.RLIMIT_NOFILE)[1]));"
        "os.execv(sys.argv[1], sys.argv[1:])",
    ]
    daemon = daemons.start("--interface", "127.0.0.1", "--port", "0", "--mode", "echo", wrapper=lowered)
    limits = Path(f"/proc/{daemon.process.pid}/limits").read_text()
    [line] = [line for line in limits.splitlines() if line.startswith("Max open files")]
    soft_now, hard_now = line.split()[3:5]
    assert soft_now == hard_now, line
    assert soft_now != str(soft_limit), line
    daemon.wait_for_log("limit raised from 256")
    client = Client(daemon.port)
    try:
        echoed(client)
    finally:
        client.close()
