"""The venv with the original ``leads==0.9.7`` under Python 3.12, made once and kept (it is gitignored).

Its place is ``$LEADS_INTEROP_VENV`` or ``.venv-interop`` in the repo. It is built beside its final place and
renamed into it, under a lock, so an interrupted or concurrent run never leaves a half-made venv behind.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from support import REPO_ROOT, find_python312

LEADS_VERSION = "0.9.7"
CHECK = f"import importlib.metadata as m, leads.comm; assert m.version('leads') == '{LEADS_VERSION}'"


def venv_path() -> Path:
    return Path(os.environ.get("LEADS_INTEROP_VENV") or REPO_ROOT / ".venv-interop")


def works(python: Path) -> bool:
    if not python.exists():
        return False
    try:
        done = subprocess.run(
            [str(python), "-c", CHECK], capture_output=True, timeout=60, cwd="/", stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def run_step(argv: list[str], timeout: float) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(argv)} did not finish within {timeout}s")
    if done.returncode != 0:
        pytest.fail(f"{' '.join(argv)} failed (rc={done.returncode}):\n{done.stdout}\n{done.stderr}")


@pytest.fixture(scope="session")
def original_python() -> str:
    """The Python of a venv where ``import leads.comm`` gives the original LEADS 0.9.7."""
    python312, how = find_python312()
    if python312 is None:
        pytest.skip(f"interop with leads 0.9.7 needs python3.12, which is absent here: {how}")
    venv = venv_path()
    python = venv / "bin" / "python"
    if works(python):
        return str(python)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if works(python):
                return str(python)
            building = venv.parent / f"{venv.name}.building-{os.getpid()}"
            shutil.rmtree(building, ignore_errors=True)
            run_step([python312, "-m", "venv", str(building)], 120)
            run_step([str(building / "bin/python"), "-m", "pip", "install", "--quiet", f"leads=={LEADS_VERSION}"], 240)
            if venv.exists():
                shutil.rmtree(venv)
            building.rename(venv)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    if not works(python):
        pytest.fail(f"the venv at {venv} was made but `{CHECK}` fails in it")
    return str(python)
