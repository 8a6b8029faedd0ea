"""Fixtures shared by the system tiers: real twistd daemons, and one daemon venv per session for the tests under a
real systemd."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .daemon.twistd_harness import Daemons
from .systemd_sandbox import daemon_venv_built, need_sandbox


@pytest.fixture(scope="session")
def daemon_venv() -> Iterator[Path]:
    """The venv the units run (built once: it takes a while); the test skips or fails first without a sandbox."""
    need_sandbox()
    with daemon_venv_built() as venv:
        yield venv


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    """Starts ``twistd leads-comm`` processes; each is ended (by its pid) when the test ends."""
    started = Daemons(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()
