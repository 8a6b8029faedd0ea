"""A ``unix:`` server refuses a path it must not take, clears a stale socket, and parses its description."""

from __future__ import annotations

import errno
import os
import socket
import stat

import pytest
import pytest_twisted
from twisted.internet import reactor

from leads_twisted.comm import create_server
from leads_twisted.comm.endpoints import (
    DEFAULT_UNIX_MODE,
    UNIXSocketServerEndpoint,
    parse_unix_description,
    server_endpoint,
)
from leads_twisted.testing import Recorder

from .conftest import bounded


async def start_failure(path: str) -> tuple[BaseException, Recorder]:
    """Start a server on ``unix:path`` that is expected to fail; return its error and what its callback saw."""
    seen = Recorder()
    server = create_server(0, seen, endpoint=f"unix:{path}")
    try:
        await bounded(server.start_in_reactor())
    except Exception as error:
        return error, seen
    await bounded(server.close_in_reactor())
    pytest.fail(f"the server started on {path}")


@pytest_twisted.ensureDeferred
async def test_refuses_a_regular_file_and_leaves_it_alone(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"keep me")
    error, seen = await start_failure(str(path))
    assert isinstance(error, FileExistsError)
    assert error.errno == errno.EEXIST
    assert str(path) in str(error) and "regular file" in str(error) and "not a socket" in str(error)
    assert seen.failures == [error], "on_fail hears the same error"
    assert path.read_bytes() == b"keep me"


@pytest_twisted.ensureDeferred
async def test_refuses_a_directory_and_a_symlink(tmp_path):
    directory = tmp_path / "dir"
    directory.mkdir()
    error, _ = await start_failure(str(directory))
    assert isinstance(error, FileExistsError) and "directory" in str(error)
    assert directory.is_dir()

    link = tmp_path / "link.sock"
    link.symlink_to(tmp_path / "elsewhere.sock")
    error, _ = await start_failure(str(link))
    assert isinstance(error, FileExistsError) and "symbolic link" in str(error)
    assert link.is_symlink()


@pytest_twisted.ensureDeferred
async def test_refuses_a_socket_another_server_listens_on(tmp_path):
    path = str(tmp_path / "busy.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        other.bind(path)
        other.listen(1)
        error, _ = await start_failure(path)
        assert isinstance(error, OSError) and error.errno == errno.EADDRINUSE
        assert "another server listens there" in str(error)
        assert stat.S_ISSOCK(os.stat(path).st_mode), "the live socket is left in place"


@pytest_twisted.ensureDeferred
async def test_a_missing_directory_is_named(tmp_path):
    path = str(tmp_path / "no" / "such" / "leads.sock")
    error, _ = await start_failure(path)
    assert isinstance(error, FileNotFoundError) and "directory does not exist" in str(error)


@pytest_twisted.ensureDeferred
async def test_a_stale_socket_is_replaced(services, tmp_path):
    path = str(tmp_path / "stale.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gone:
        gone.bind(path)  # bound and closed without removing the file: what a crashed server leaves behind
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    server_seen, client_seen = Recorder(), Recorder()
    await services.server(server_seen, endpoint=f"unix:{path}")
    assert stat.S_IMODE(os.stat(path).st_mode) == DEFAULT_UNIX_MODE
    client = await services.client(client_seen, endpoint=f"unix:path={path}")
    client.send(b"over the new socket")
    await bounded(server_seen.when(lambda seen: seen.received == [b"over the new socket"]))


def test_descriptions():
    assert parse_unix_description("/run/leads.sock") == {"path": "/run/leads.sock"}
    assert parse_unix_description(r"address=/tmp/a\:b.sock:mode=600:backlog=7:lockfile=1") == {
        "path": "/tmp/a:b.sock",
        "mode": 0o600,
        "backlog": 7,
        "lockfile": True,
    }
    assert parse_unix_description("path=/x.sock") == {"path": "/x.sock"}
    for bad, words in [
        ("", "needs a socket path"),
        ("/x.sock:mode=999", "octal"),
        ("/x.sock:mode=rw", "octal"),
        ("/x.sock:backlog=many", "whole number"),
        ("/x.sock:colour=blue", "unknown option 'colour'"),
        ("/x.sock:path=/y.sock", "given twice"),
    ]:
        with pytest.raises(ValueError, match=words):
            parse_unix_description(bad)


def test_server_endpoint_picks_ours_for_unix_only():
    ours = server_endpoint(reactor, "unix:/tmp/leads-test.sock:mode=640")
    assert isinstance(ours, UNIXSocketServerEndpoint)
    assert (ours.path, ours.mode) == ("/tmp/leads-test.sock", 0o640)
    assert not isinstance(server_endpoint(reactor, "tcp:0"), UNIXSocketServerEndpoint)
    with pytest.raises(ValueError, match="mode"):
        UNIXSocketServerEndpoint(reactor, "/tmp/x.sock", mode=0o1777)
