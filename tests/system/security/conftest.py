"""Fixtures of the security system tests: real twistd daemons (ended with the test) and a throwaway PKI."""

from __future__ import annotations

import pytest
from support_net import PKI, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    pytest.importorskip("OpenSSL", reason="TLS needs the tls extra (pyOpenSSL)")
    return make_pki(tmp_path_factory.mktemp("pki"), "security")
