"""Real ``twistd leads-comm`` processes for the close tests (the daemon tests' harness), ended with the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from system.daemon.twistd_harness import Daemons


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    started = Daemons(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()
