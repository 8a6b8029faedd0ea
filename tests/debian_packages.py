"""Tests that need a Debian package skip without it, naming the package; under CI they fail instead.

``.ci/run`` installs every package the system tests name and sets ``LEADS_REQUIRE_DEBIAN_PACKAGES=1``, so a
missing one can never pass as a skip there.
"""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRE = "LEADS_REQUIRE_DEBIAN_PACKAGES"


def need_debian_packages(packages: tuple[str, ...], programs: tuple[str, ...]) -> None:
    """Skip (fail under ``$LEADS_REQUIRE_DEBIAN_PACKAGES``) unless every one of ``programs`` is there."""
    missing = [program for program in programs if shutil.which(program) is None]
    if not missing:
        return
    names = " ".join(packages)
    reason = f"needs the Debian packages {names} (apt-get install -y {names}); {', '.join(missing)} not found"
    if os.environ.get(REQUIRE):
        pytest.fail(f"{reason}; {REQUIRE} is set, so this is a failure, not a skip")
    pytest.skip(reason)
