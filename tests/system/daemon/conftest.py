"""Fixtures of the daemon tests: real twistd processes, ended with the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .twistd_harness import Daemons


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    """Starts ``twistd leads-comm`` processes; each is ended (by its pid) when the test ends."""
    started = Daemons(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()
