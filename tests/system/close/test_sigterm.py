"""``twistd leads-comm`` on SIGTERM: with three clients sending unpaced, every message a client's ``send``
accepted reaches the daemon, in order, and the daemon ends within its documented bound (3 x --close-timeout),
which the shipped unit's ``TimeoutStopSec=`` exceeds."""

from __future__ import annotations

import configparser
import json
import os
from pathlib import Path

import pytest
from support import Script

from leads_twisted.comm.link_policy import DEFAULT_CLOSE_TIMEOUT
from leads_twisted.daemon.stopping import stop_within
from system.daemon.twistd_harness import REPO, Daemons

HERE = Path(__file__).resolve().parent

UNPACED_CLIENTS = """
    import sys, threading, time
    from leads_twisted.comm import Callback, create_client, start_client

    port = int(sys.argv[1])
    clients = [start_client("127.0.0.1", create_client(port, Callback()), True) for _ in range(3)]
    accepted = [0, 0, 0]
    refusals = [None, None, None]

    def sender(k):
        name = b"c%d" % k
        i = 0
        while True:
            try:
                clients[k].send(name + b":%d" % i)
            except OSError as error:
                refusals[k] = str(error)
                return
            i += 1
            accepted[k] = i

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(3)]
    for thread in threads:
        thread.start()
    threading.Event().wait(1.0)  # a second of load before the daemon is told to stop
    print("SENDING", flush=True)
    for thread in threads:
        thread.join(60)
    for client in clients:
        client.close()
    import json
    print("RESULT " + json.dumps({"accepted": accepted, "refusals": refusals,
                                  "stuck": [t.is_alive() for t in threads]}), flush=True)
"""


def unit_timeout_stop_seconds() -> float:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(REPO / "systemd" / "leads-comm.service")
    return float(unit["Service"]["TimeoutStopSec"])


def test_the_units_stop_timeout_exceeds_the_daemons_stop_bound():
    assert unit_timeout_stop_seconds() > stop_within(DEFAULT_CLOSE_TIMEOUT) + 5


@pytest.mark.timeout(120)
def test_sigterm_with_three_unpaced_clients_loses_nothing(daemons: Daemons, tmp_path: Path):
    counts = tmp_path / "counts.json"
    env = {
        "LEADS_COUNT_FILE": str(counts),
        "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE)]),
    }
    # Relayed copies that a client does not read fast enough are dropped (and said so), never the link.
    daemon = daemons.start(
        "--port=0", "--interface=127.0.0.1", "--slow-policy=drop", "--callback=counting_callback:Counting", env=env
    )
    with Script(UNPACED_CLIENTS, args=(str(daemon.port),)) as load:
        load.expect("SENDING", timeout=30)
        # SIGTERM while the clients send as fast as they can.
        stopped_in = daemon.terminate(timeout=stop_within(DEFAULT_CLOSE_TIMEOUT) + 10)
        outcome = json.loads(load.expect("RESULT", timeout=60))
    assert daemon.process.returncode in (0, -15), daemon.errors()  # twistd ends by the signal it was sent
    assert stopped_in < stop_within(DEFAULT_CLOSE_TIMEOUT) + 5, stopped_in
    received = json.loads(counts.read_text())
    assert outcome["stuck"] == [False, False, False], outcome
    assert min(outcome["accepted"]) > 0, outcome
    assert [received["got"].get(f"c{k}", 0) for k in range(3)] == outcome["accepted"], (received, outcome)
    assert received["out_of_order"] == 0, received
    assert all("said disconnect" in (r or "") for r in outcome["refusals"]), outcome
