"""Headless Chromium (Debian's ``chromium`` and ``chromium-driver``) driven by Selenium, and the 0.9.7 venv.

Each test gets a fresh browser profile; the browser is ended by Selenium, and its driver by its ``Service``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from debian_packages import need_debian_packages
from support import REPO_ROOT

from ..interop.conftest import original_python  # noqa: F401 - the fixture, shared with the interop tests

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def artifacts() -> Path:
    """Where screenshots go: ``$LEADS_TEST_ARTIFACTS`` or ``test-output/`` in the repository."""
    place = Path(os.environ.get("LEADS_TEST_ARTIFACTS") or REPO_ROOT / "test-output") / "browser"
    place.mkdir(parents=True, exist_ok=True)
    return place


@pytest.fixture
def chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    need_debian_packages(("chromium", "chromium-driver"), (CHROMIUM, CHROMEDRIVER))
    monkeypatch.setenv("SE_OFFLINE", "true")  # Debian's browser and driver only: Selenium must fetch nothing
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=412,915",  # a phone held upright
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(
        service=Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log")), options=options
    )
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
