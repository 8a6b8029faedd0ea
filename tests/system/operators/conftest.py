"""Fixtures of the operator tests: real ``twistd leads-comm`` daemons (the daemon tier's harness) and a way to
find the monitor's port, which the daemon logs."""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from ..daemon.twistd_harness import HERE, REPO, Daemon

OPERATORS = Path(__file__).resolve().parent


def environment(**extra: str) -> dict[str, str]:
    """The daemon's environment with this directory's callbacks on the path."""
    return {"PYTHONPATH": os.pathsep.join(str(path) for path in (REPO, HERE, OPERATORS)), **extra}


def monitor_url(daemon: Daemon) -> str:
    """``http://127.0.0.1:PORT`` of a daemon started with ``--monitor tcp:0:interface=127.0.0.1``."""
    log = daemon.wait_for_log("monitor on http://")
    return re.search(r"monitor on (http://[^/ ]+)/", log).group(1)


def get(url: str, timeout: float = 10.0) -> tuple[int, str]:
    """Status and body of a GET, also for an error status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
