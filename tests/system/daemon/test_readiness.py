"""sd_notify readiness: READY=1 once the port accepts connections, STOPPING=1 on SIGTERM."""

from __future__ import annotations

import socket

from .twistd_harness import Daemons


def test_ready_once_listening_and_stopping_on_sigterm(daemons: Daemons) -> None:
    daemon = daemons.start("--interface", "127.0.0.1", "--port", "0", wait_ready=False)
    ready = daemons.notify.receive(daemon.process)
    assert ready["READY"] == "1"
    assert ready["STATUS"].startswith("relay on 127.0.0.1:")
    port = int(ready["STATUS"].rsplit(":", 1)[1])
    # The moment READY=1 arrives, the port takes connections.
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass

    daemon.process.terminate()
    stopping = daemons.notify.receive(daemon.process)
    assert stopping["STOPPING"] == "1"
    daemon.process.wait(5)


def test_no_notification_without_notify_socket(daemons: Daemons) -> None:
    """Run by hand (no NOTIFY_SOCKET), the daemon starts and stops just the same and sends nothing."""
    daemon = daemons.start("--interface", "127.0.0.1", "--port", "0", env={"NOTIFY_SOCKET": ""}, wait_ready=False)
    daemon.wait_for_log("leads-comm (relay) listening on 127.0.0.1:")
    daemon.terminate()
    log = daemon.log()
    assert "Main loop terminated." in log
    assert "systemd" not in log  # no complaint about a missing notify socket
