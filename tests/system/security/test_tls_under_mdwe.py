"""Mutual TLS in the daemon under the kernel's MDWE, which the shipped unit's ``MemoryDenyWriteExecute=yes``
turns on: TLS needs no writable and executable memory, and a daemon whose TLS could not work here ends its
start with one line that says why and what to change, before it ever says READY=1."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from ..daemon.twistd_harness import HERE as DAEMON_TESTS
from ..daemon.twistd_harness import REPO, TIMEOUT, Daemons

HERE = Path(__file__).resolve().parent
MDWE = [sys.executable, str(HERE / "mdwe_exec.py")]


def kernel_has_mdwe() -> bool:
    probe = subprocess.run([*MDWE, sys.executable, "-c", "pass"], capture_output=True, timeout=30)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(not kernel_has_mdwe(), reason="the kernel lacks PR_SET_MDWE (Linux 6.3 or later)")


def tls_arguments(pki) -> list[str]:
    return [
        "--port=0",
        "--interface=127.0.0.1",
        "--mode=echo",
        f"--tls-certificate={pki.server.certificate}",
        f"--tls-key={pki.server.private_key}",
        f"--tls-ca={pki.ca}",
    ]


def mutual_tls_echo(port: int, pki, identity) -> bytes:
    """Connect with ``identity``'s certificate, send one message, and return the first bytes answered."""
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.load_cert_chain(str(identity.certificate), str(identity.private_key))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as link,
    ):
        link.sendall(b"under mdwe;")
        return link.recv(100)


def test_mutual_tls_round_trip_in_a_daemon_under_mdwe(daemons: Daemons, pki) -> None:
    daemon = daemons.start(*tls_arguments(pki), wrapper=MDWE)
    assert mutual_tls_echo(daemon.port, pki, pki.client) == b"under mdwe;"
    # A client of another CA is refused by the same daemon, which keeps serving.
    with pytest.raises((ssl.SSLError, ConnectionError)):
        mutual_tls_echo(daemon.port, pki, pki.stranger)
    assert mutual_tls_echo(daemon.port, pki, pki.client) == b"under mdwe;"
    assert "MemoryError" not in daemon.log() + daemon.errors()


def with_callback_injector() -> dict[str, str]:
    path = [REPO, DAEMON_TESTS, HERE / "callback_injector"]
    return {"PYTHONPATH": ":".join(str(entry) for entry in path)}


def test_tls_that_cannot_run_under_mdwe_ends_the_start_with_one_line(daemons: Daemons, pki) -> None:
    # Control: the injected pyOpenSSL callback alone does no harm; the daemon serves TLS without MDWE.
    control = daemons.start(*tls_arguments(pki), env=with_callback_injector())
    assert mutual_tls_echo(control.port, pki, pki.client) == b"under mdwe;"

    failing = daemons.start(*tls_arguments(pki), env=with_callback_injector(), wrapper=MDWE, wait_ready=False)
    assert failing.process.wait(30) == 1
    lines = failing.errors().strip().splitlines()
    assert len(lines) == 1, failing.errors()
    assert "TLS self-check failed" in lines[0] and "MemoryDenyWriteExecute" in lines[0], lines[0]
    assert "listening" not in failing.log()


def test_the_shipped_unit_keeps_memory_deny_write_execute() -> None:
    # TLS needs no writable and executable memory, so nothing in the units lifts the setting.
    units = REPO / "systemd"
    assert "\nMemoryDenyWriteExecute=yes\n" in (units / "leads-comm.service").read_text()
    for unit in units.rglob("*"):
        if unit.is_file():
            assert "MemoryDenyWriteExecute=no" not in unit.read_text(), unit
