"""``twist leads-comm`` (Twisted's newer runner, which never calls ``privilegedStartService``) listens and relays."""

from __future__ import annotations

import signal
import subprocess

from .twistd_harness import TWIST, Daemons, all_connected, clients, daemon_environment


def test_twist_listens_relays_and_stops_on_sigterm(daemons: Daemons) -> None:
    daemon = daemons.start(
        "--interface", "127.0.0.1", "--port", "0", host="twist", twistd_options=("--log-format", "text")
    )
    with clients(daemon.port, 3) as (a, b, c):
        all_connected([a, b, c])
        a.send(*(b"m%d" % i for i in range(20)))
        assert b.receive(20) == [b"m%d" % i for i in range(20)]
        assert c.receive(20) == [b"m%d" % i for i in range(20)]
        daemon.process.send_signal(signal.SIGTERM)
        for client in (a, b, c):
            assert client.receive_until_closed(timeout=5.0) == b"disconnect;"
    daemon.process.wait(10)
    log = daemon.log() + daemon.errors()
    assert "listening on 127.0.0.1:" in log
    assert "Traceback" not in log


def test_twist_with_a_port_in_use_exits_1_with_one_line(daemons: Daemons, tmp_path) -> None:
    daemon = daemons.start("--interface", "127.0.0.1", "--port", "0", host="twist")
    ended = subprocess.run(
        [TWIST, "leads-comm", "--interface", "127.0.0.1", "--port", str(daemon.port)],
        capture_output=True,
        text=True,
        env=daemon_environment(),
        cwd=tmp_path,
        timeout=30,
    )
    assert ended.returncode == 1, (ended.stdout, ended.stderr)
    output = ended.stdout + ended.stderr
    assert "could not start" in output
    assert "Traceback" not in output
