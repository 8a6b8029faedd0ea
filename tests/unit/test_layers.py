"""The core's layers import one way, and nothing in the package imports in a circle: read from the source, type
hints and function-level imports included (docs/architecture.md draws the layers)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "leads_twisted"

FRAMING = {"framing", "length_framing"}
LINK = {"protocol", "connection", "link_state", "direct_write", "write_batch", "drain", "link_policy", "errors"}
HUB = {"hub", "server_hub", "client_hub", "callback"}
FACADE = {"service", "server", "client", "outbox", "reactor_thread", "latch", "__init__", "prototype"}
CORE = FRAMING | LINK | HUB | FACADE
#: What each layer may not import: the layers above it.
ABOVE = {"framing": LINK | HUB | FACADE, "link": HUB | FACADE, "hub": FACADE}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")


def imports(path: Path) -> set[str]:
    """Every ``leads_twisted`` module ``path`` imports, wherever the import stands."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("leads_twisted"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("leads_twisted"))
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports(path) if m in modules and m != name} for name, path in modules.items()}


def comm(name: str) -> str | None:
    prefix = "leads_twisted.comm."
    return name.removeprefix(prefix) if name.startswith(prefix) else None


def test_no_module_of_the_package_imports_in_a_circle() -> None:
    edges = graph()
    done: set[str] = set()
    path: list[str] = []

    def visit(name: str) -> None:
        if name in path:
            pytest.fail("import circle: " + " -> ".join([*path[path.index(name) :], name]))
        if name in done:
            return
        path.append(name)
        for target in sorted(edges[name]):
            visit(target)
        path.pop()
        done.add(name)

    for name in sorted(edges):
        visit(name)


@pytest.mark.parametrize(("layer", "members"), [("framing", FRAMING), ("link", LINK), ("hub", HUB)])
def test_a_layer_imports_nothing_above_it(layer: str, members: set[str]) -> None:
    edges = graph()
    wrong = sorted(
        f"{module} imports {target}"
        for module in members
        for target in edges[f"leads_twisted.comm.{module}"]
        if comm(target) in ABOVE[layer]
    )
    assert not wrong


def test_the_modules_beside_the_layers_import_none_of_them_but_framing() -> None:
    edges = graph()
    beside = [m for m in edges if (c := comm(m)) is not None and c not in CORE]
    assert "leads_twisted.comm.views" in beside and "leads_twisted.comm.observer" in beside
    wrong = sorted(f"{m} imports {t}" for m in beside for t in edges[m] if comm(t) in LINK | HUB | FACADE)
    assert not wrong


def test_the_daemon_and_the_testing_module_use_the_hubs_not_the_facade() -> None:
    edges = graph()
    users = [
        m for m in edges if m.startswith(("leads_twisted.daemon", "leads_twisted.websocket", "leads_twisted.bridge"))
    ]
    users.append("leads_twisted.testing")
    facade = {
        "leads_twisted.comm.Server",
        "leads_twisted.comm.Client",
        "leads_twisted.comm.server",
        "leads_twisted.comm.client",
    }
    assert not sorted(f"{m} imports {t}" for m in users for t in edges[m] if t in facade)
