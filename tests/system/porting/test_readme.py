"""The README a newcomer reads top to bottom: short, with contents that lead somewhere, and code that runs."""

from __future__ import annotations

import re
import signal

import pytest
from support import REPO_ROOT

from .test_examples import Example, running

README = (REPO_ROOT / "README.md").read_text()

#: Guides other work writes at the same time: linked from the README before they land.
GUIDES_IN_FLIGHT = {
    "docs/reliability.md",
    "docs/security.md",
    "docs/operations.md",
    "docs/fleet.md",
    "docs/browsers.md",
}


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_at_most_250_lines_with_a_contents_list_that_matches_the_sections():
    assert len(README.splitlines()) <= 250
    contents = README.split("## Contents", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"- \[(.+?)\]\(#(.+?)\)", contents)
    sections = [line[3:] for line in README.splitlines() if line.startswith("## ") and line != "## Contents"]
    assert [title for title, _ in listed] == sections
    assert all(anchor == slug(title) for title, anchor in listed)


def test_every_guide_linked_exists():
    linked = set(re.findall(r"\]\(((?:docs|examples)/[^)#]+)", README))
    assert "docs/deploy.md" in linked and "docs/porting.md" in linked
    missing = [path for path in sorted(linked - GUIDES_IN_FLIGHT) if not (REPO_ROOT / path).exists()]
    assert not missing
    for name in re.findall(r"`examples/([\w.]+\.py)`", README):
        assert (REPO_ROOT / "examples" / name).exists(), name


@pytest.mark.parametrize("name", ["hello_server.py", "hello_client.py"])
def test_the_first_session_code_is_the_example_file(name):
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert (REPO_ROOT / "examples" / name).read_text() in blocks


def test_the_first_session_server_stays_up_and_answers_the_client():
    server = Example("hello_server.py", "0")
    with running(server):
        port = server.expect(r"listening on port (\d+)").group(1)
        client = Example("hello_client.py", port)
        with running(client):
            client.expect(r"^server says: got hello$")
            assert client.end() == 0
        server.expect(r"\] disconnected: 127\.0\.0\.1:\d+$")
        assert server.proc.poll() is None  # still serving after its client left
        server.proc.send_signal(signal.SIGINT)
        assert server.end() == 0
        assert server.lines[-1].endswith("] stopped")
        assert not any("Traceback" in line for line in server.lines)


def test_the_two_commands_are_the_ones_the_tests_check():
    commands = re.findall(r"```sh\n(python3 -m venv .*?)\n```", README)
    assert commands[:2] == [RUN_COMMAND, TEST_COMMAND]


RUN_COMMAND = (
    "python3 -m venv .venv-daemon && .venv-daemon/bin/pip install . && "
    ".venv-daemon/bin/twistd --nodaemon --pidfile= leads-comm --port 16900"
)
TEST_COMMAND = "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest"


def test_the_units_documentation_points_at_the_project_docs_the_deploy_guide_installs():
    deploy = (REPO_ROOT / "docs" / "deploy.md").read_text()
    assert "sudo install -D -m 644 docs/*.md README.md -t /usr/share/doc/leads-comm/" in deploy
    for unit in ("leads-comm.service", "leads-comm.socket"):
        text = (REPO_ROOT / "systemd" / unit).read_text()
        documented = re.findall(r"file:/usr/share/doc/leads-comm/([\w.]+)", text)
        assert documented, f"{unit} has no Documentation= pointing at the project's docs"
        for name in documented:
            assert (REPO_ROOT / name).exists() or (REPO_ROOT / "docs" / name).exists(), name


def test_the_deploy_guide_warns_of_a_venv_made_from_a_python_in_a_home_directory():
    deploy = (REPO_ROOT / "docs" / "deploy.md").read_text()
    warning = deploy.split("**Make the venv from the system's Python", 1)[1].split("\n\n", 2)
    said = " ".join(warning[:2])
    for needed in ("/root", "/home", "pyenv", "uv", "conda", "ProtectHome=yes", "203/EXEC", "sys.base_prefix"):
        assert needed in said, needed
    assert "sudo /usr/bin/python3 -m venv /opt/leads-comm/venv" in deploy
