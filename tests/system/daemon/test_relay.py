"""The real daemon relays between raw-socket clients, and shuts down cleanly on SIGTERM."""

from __future__ import annotations

import signal
import socket
import time

from .twistd_harness import Daemons, all_connected, clients


def test_relays_to_every_other_client_in_order_and_says_disconnect_on_sigterm(daemons: Daemons) -> None:
    daemon = daemons.start("--interface", "127.0.0.1", "--port", "0")
    with clients(daemon.port, 3) as (a, b, c):
        all_connected([a, b, c])  # c says hello to a and b

        burst = [f"a{i}".encode() for i in range(50)]
        a.send(*burst[:20])
        a.send(*burst[20:])
        assert b.receive(50) == burst
        assert c.receive(50) == burst

        # Had a been sent its own messages, they would come before b's, which b sent after they were relayed.
        b.send(b"from b")
        assert a.receive(1) == [b"from b"]
        assert c.receive(1) == [b"from b"]

        # Each client answers the daemon's disconnect by closing, as a LEADS client does; the daemon then ends
        # at once (one that does not answer is cut after --close-timeout: tests/system/close).
        started = time.monotonic()
        daemon.process.send_signal(signal.SIGTERM)
        for client in (a, b, c):
            assert client.receive(1, timeout=2.0) == [b"disconnect"]
            client.socket.shutdown(socket.SHUT_WR)
            assert client.receive_until_closed(timeout=2.0) == b""
        daemon.process.wait(2.0)
        took = time.monotonic() - started

    assert took < 2.0
    # twistd ends a signal shutdown by re-raising the signal: the status systemd counts as a clean stop.
    assert daemon.process.returncode == -signal.SIGTERM
    log = daemon.log()
    assert "Received SIGTERM, shutting down." in log
    assert "stopping: telling 3 clients to disconnect" in log
    assert "Main loop terminated." in log
    assert "Traceback" not in log + daemon.errors()
    # Not under systemd: twistd's ordinary lines, no journald priorities.
    assert not any(line.startswith("<") for line in log.splitlines())
