"""Fixtures of the security system tests: real twistd daemons (ended with the test) and a throwaway PKI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support_net import PKI, make_pki

from ..daemon.twistd_harness import Daemons


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    """Starts ``twistd leads-comm`` processes; each is ended (by its pid) when the test ends."""
    started = Daemons(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    pytest.importorskip("OpenSSL", reason="TLS needs the tls extra (pyOpenSSL)")
    return make_pki(tmp_path_factory.mktemp("pki"), "security")
