"""Every public name of ``leads.comm`` 0.9.7 (and of its ``server``, ``client`` and ``prototype`` modules) is at
the same path under ``leads_twisted.comm``, with the same kind, or raises ``PortingError`` saying what to use.

The list of names comes from the installed original, printed by a subprocess in its venv; nothing is listed here.
"""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess

import pytest
from support import run_python

from leads_twisted.comm.errors import PortingError

MODULES = [
    "leads.comm",
    "leads.comm.prototype",
    "leads.comm.server",
    "leads.comm.server.server",
    "leads.comm.client",
    "leads.comm.client.client",
]

LIST_NAMES = f"""
import importlib, inspect, json
out = {{}}
for path in {MODULES!r}:
    module = importlib.import_module(path)
    names = {{}}
    for name in dir(module):
        if name.startswith("_"):
            continue
        value = getattr(module, name)
        if inspect.ismodule(value):
            names[name] = ["module"]
        elif inspect.isclass(value):
            names[name] = ["class"] + sorted(a for a in dir(value) if not a.startswith("_"))
        else:
            names[name] = ["callable" if callable(value) else type(value).__name__]
    out[path] = names
print("NAMES " + json.dumps(out))
"""

#: The methods whose LEADS meaning (reading the socket in the caller's thread) cannot hold on a reactor.
RAISING = {"receive", "use_remainder", "with_remainder"}


@pytest.fixture(scope="module")
def original_names(original_python: str) -> dict[str, dict[str, list[str]]]:
    done = subprocess.run(
        [original_python, "-c", LIST_NAMES], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("NAMES "))
    return json.loads(line[len("NAMES ") :])


def ours(path: str) -> str:
    return path.replace("leads.comm", "leads_twisted.comm", 1)


def test_the_original_lists_the_names_the_issue_names(original_names):
    # A control: the listing really reads the original (these four were missing before).
    assert "my_ip_addresses" in original_names["leads.comm"]
    assert "Entity" in original_names["leads.comm.prototype"]
    assert "remove_connection" in original_names["leads.comm.server"]["Server"]
    assert "drop_remainder" in original_names["leads.comm"]["ConnectionBase"]


@pytest.mark.parametrize("path", MODULES)
def test_every_name_is_here_with_its_kind(original_names, path):
    module = importlib.import_module(ours(path))
    missing = []
    for name, (kind, *members) in original_names[path].items():
        if not hasattr(module, name):
            missing.append(f"{ours(path)}.{name}")
            continue
        value = getattr(module, name)
        if kind == "module":
            assert inspect.ismodule(value), f"{ours(path)}.{name} should be a module"
        elif kind == "class":
            assert inspect.isclass(value), f"{ours(path)}.{name} should be a class"
            missing += [f"{ours(path)}.{name}.{m}" for m in members if not hasattr(value, m)]
        else:
            assert callable(value), f"{ours(path)}.{name} should be callable"
    assert not missing, f"names of leads.comm 0.9.7 missing here: {missing}"


def test_the_methods_that_cannot_hold_say_what_to_use(original_names):
    from leads_twisted.comm import Connection, ConnectionBase

    members = set(original_names["leads.comm"]["ConnectionBase"][1:])
    assert members >= RAISING
    for cls in (ConnectionBase, Connection):
        for name in RAISING:
            with pytest.raises(PortingError, match=r"has no counterpart here: .*on_receive.*docs/porting\.md"):
                getattr(cls, name)(None, *([b"x;"] if name == "with_remainder" else []))
    assert issubclass(PortingError, NotImplementedError)


def test_the_original_import_lines_work_in_a_fresh_process():
    lines = [
        "from leads_twisted.comm import *",
        "from leads_twisted.comm.server.server import Server, Entity, Connection, Callback",
        "from leads_twisted.comm.client.client import Client, Entity, Connection, Callback",
        "from leads_twisted.comm.prototype import my_ip_addresses, Service, ConnectionBase, Entity, CallbackChain",
        "import leads_twisted.comm.server.server as s; assert s.Server is Server",
        "assert isinstance(create_server(), Entity) and isinstance(create_client(), Service)",
    ]
    for first in lines[1:3]:  # each submodule path also as the very first import
        run_python(first, timeout=30)
    run_python("\n".join(lines), timeout=30)


def test_my_ip_addresses_answers_as_the_original_does(original_python):
    code = "from {}.comm import my_ip_addresses; print('IPS', sorted(my_ip_addresses()))"
    theirs = run_python(code.format("leads"), python=original_python, timeout=60).stdout
    here = run_python(code.format("leads_twisted"), timeout=30).stdout
    pick = lambda out: next(line for line in out.splitlines() if line.startswith("IPS"))  # noqa: E731
    assert pick(here) == pick(theirs)
