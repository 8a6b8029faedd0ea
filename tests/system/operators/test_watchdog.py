"""systemd's watchdog and status line, with the daemon under a stand-in ``NOTIFY_SOCKET`` and ``WATCHDOG_USEC``:
pings at half the interval from the reactor, none while a callback holds it, and a ``STATUS=`` refreshed with
the clients and rates."""

from __future__ import annotations

import itertools
import os
import re
import time

from ..daemon.twistd_harness import Daemons, all_connected, clients
from .callbacks import BLOCK_SECONDS
from .conftest import environment

WATCHDOG_USEC = 400_000  # a ping every 0.2 s


def notifications(daemons: Daemons, daemon, seconds: float) -> list[tuple[float, dict[str, str]]]:
    """Every notification for ``seconds``, with the time it came."""
    got = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = daemons.notify.receive(daemon.process, timeout=min(left, 1.0))
        except AssertionError:
            continue  # a quiet second: the deadline decides
        got.append((time.monotonic(), message))
    return got


def test_pings_from_the_reactor_stop_while_a_callback_holds_it(daemons: Daemons) -> None:
    daemon = daemons.start(
        "--interface",
        "127.0.0.1",
        "--port",
        "0",
        "--callback",
        "callbacks:Block",
        env=environment(WATCHDOG_USEC=str(WATCHDOG_USEC), WATCHDOG_PID=""),
    )
    quiet = [when for when, message in notifications(daemons, daemon, 1.0) if message.get("WATCHDOG") == "1"]
    assert len(quiet) >= 3  # about five in a second
    gaps = [b - a for a, b in itertools.pairwise(quiet)]
    assert max(gaps) < 0.6

    with clients(daemon.port, 1) as (client,):
        sent = time.monotonic()
        client.send(b"block")
        got = notifications(daemons, daemon, BLOCK_SECONDS + 1.5)
    pings = [when - sent for when, message in got if "WATCHDOG" in message]
    held = [when for when in pings if 0.3 < when < BLOCK_SECONDS - 0.3]
    assert held == [], pings  # none while the reactor was held...
    assert len([when for when in pings if when > BLOCK_SECONDS]) >= 3, pings  # ...and back after it
    assert "pinging every 0.2 s" in daemon.log()


def test_no_pings_for_another_process(daemons: Daemons) -> None:
    """``WATCHDOG_PID`` naming another process (the daemon's parent, here) means: not you."""
    daemon = daemons.start(
        "--interface", "127.0.0.1", "--port", "0", env={"WATCHDOG_USEC": "200000", "WATCHDOG_PID": str(os.getpid())}
    )
    got = notifications(daemons, daemon, 1.0)
    assert [message for _, message in got if "WATCHDOG" in message] == []
    assert "watchdog" not in daemon.log()


def test_status_line_is_refreshed_with_clients_and_rates(daemons: Daemons) -> None:
    daemon = daemons.start("--interface", "127.0.0.1", "--port", "0")
    with clients(daemon.port, 3) as connected:
        all_connected(connected)
        connected[0].send(*[b"x"] * 50)
        for other in connected[1:]:
            assert len(other.receive(50)) == 50
        got = notifications(daemons, daemon, 6.0)
    statuses = [message["STATUS"] for _, message in got if "STATUS" in message]
    assert statuses, got
    assert re.fullmatch(r"relay on 127\.0\.0\.1:\d+: 3 clients, [\d,]+ msg/s in, [\d,]+ msg/s out", statuses[0])
    rate_in, rate_out = (float(n.replace(",", "")) for n in re.findall(r"([\d,]+) msg/s", statuses[0]))
    assert rate_out > rate_in > 0  # each message in went out twice
