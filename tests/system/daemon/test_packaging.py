"""The plugin is found by twistd after a plain ``pip install`` of the wheel, and imports nothing heavy.

Other Twisted projects have shipped wheels whose plugin twistd could not find (an ``__init__.py`` under
``twisted/``, the plugin package left out, a stale ``dropin.cache`` inside): this builds and installs the real
wheel in a fresh virtual environment, away from the repository, and asks twistd.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from .twistd_harness import REPO

SOURCES = ["pyproject.toml", "README.md", "leads_twisted", "twisted"]
OPTIONS = ["--port=", "--interface=", "--endpoint=", "--separator=", "--max-message=", "--mode=", "--callback="]


def run(*command: str | Path, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    result = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


def test_wheel_installs_a_plugin_that_twistd_lists(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "dropin.cache"))
        else:
            shutil.copy(REPO / name, source / name)
    # What running twistd from a checkout leaves behind: it must not end up in the wheel.
    (source / "twisted/plugins/dropin.cache").write_bytes(b"stale")

    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", tmp_path / "dist", source, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("leads_twisted-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "twisted/plugins/leads_comm.py" in names
    assert "leads_twisted/daemon/tap.py" in names
    assert not [name for name in names if name.endswith("dropin.cache")]
    assert "twisted/__init__.py" not in names
    assert "twisted/plugins/__init__.py" not in names

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    run(venv / "bin/python", "-m", "pip", "install", "--quiet", wheel, cwd=tmp_path)

    listing = run(venv / "bin/twistd", "--help", cwd=tmp_path).stdout
    assert any(line.split()[:1] == ["leads-comm"] for line in listing.splitlines()), listing
    usage = run(venv / "bin/twistd", "-n", "leads-comm", "--help", cwd=tmp_path).stdout
    for option in OPTIONS:
        assert option in usage, usage


def test_plugin_module_imports_nothing_heavy() -> None:
    probe = (
        "import sys, twisted.plugins.leads_comm as plugin\n"
        "heavy = [m for m in ('twisted.internet.reactor', 'leads_twisted') if m in sys.modules]\n"
        "print(plugin.leads_comm.tapname, plugin.leads_comm.module, heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        timeout=60,
    )
    assert result.stdout.split() == ["leads-comm", "leads_twisted.daemon.tap", "[]"], result.stderr


def test_no_init_file_in_the_shared_plugin_namespace() -> None:
    assert not (REPO / "twisted/__init__.py").exists()
    assert not (REPO / "twisted/plugins/__init__.py").exists()
    ignored = (REPO / ".gitignore").read_text().split()
    assert "dropin.cache" in ignored
