"""Socket activation without systemd: the daemon adopts a listening socket passed as fd 3, as systemd does."""

from __future__ import annotations

import socket
import sys

from .twistd_harness import HERE, Client, Daemons


def listening_socket() -> tuple[socket.socket, str, str]:
    """A loopback listening socket, IPv6 as systemd's ListenStream= makes it when the host has IPv6."""
    for family, host, domain in ((socket.AF_INET6, "::1", "INET6"), (socket.AF_INET, "127.0.0.1", "INET")):
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.bind((host, 0))
        except OSError:
            listener.close()
            continue
        listener.listen(16)
        return listener, host, domain
    raise AssertionError("no loopback address to listen on")


def test_adopts_the_socket_systemd_passes(daemons: Daemons) -> None:
    listener, host, domain = listening_socket()
    with listener:
        port = listener.getsockname()[1]
        daemon = daemons.start(
            "--endpoint",
            f"systemd:domain={domain}:name=leads-comm",
            "--mode",
            "echo",
            env={"LISTEN_FDS": "1", "LISTEN_FDNAMES": "leads-comm"},
            pass_fds=[listener.fileno()],
            wrapper=[sys.executable, str(HERE / "listen_fds_exec.py"), str(listener.fileno())],
        )
    # Our copy is closed: only the daemon holds the socket now.
    assert daemon.port == port
    client = Client(port, host)
    try:
        client.send(b"ping")
        assert client.receive(1) == [b"ping"]
    finally:
        client.close()
    daemon.terminate()
    assert "Main loop terminated." in daemon.log()
