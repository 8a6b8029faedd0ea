"""The same round trip over every transport: connect, 1,000 messages each way in order, disconnect seen by
both sides. TCP, TCP over IPv6, unix sockets, and a serial line simulated by a pty pair."""

from __future__ import annotations

import os
import socket
import stat

import pytest
import pytest_twisted

from leads_twisted.comm import DISCONNECT
from leads_twisted.comm.serial import SerialEndpoint
from leads_twisted.testing import Recorder

from .conftest import COUNT, TO_CLIENT, TO_SERVER, FramedPeer, PtyMaster, bounded, round_trip


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest_twisted.ensureDeferred
async def test_tcp(services):
    server_seen, client_seen = Recorder(), Recorder()
    server = await services.server(server_seen, endpoint="tcp:0:interface=127.0.0.1")
    client = await services.client(client_seen, endpoint=f"tcp:127.0.0.1:{server.port()}")
    assert str(client.connection()) == f"127.0.0.1:{server.port()}"
    await round_trip(server, server_seen, client, client_seen)


@pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback (cannot bind ::1)")
@pytest_twisted.ensureDeferred
async def test_tcp6(services):
    server_seen, client_seen = Recorder(), Recorder()
    server = await services.server(server_seen, endpoint=r"tcp6:0:interface=\:\:1")
    # The plain form: a port and an IPv6 literal for the address.
    client = await services.client(client_seen, "::1", port=server.port())
    assert client.connection().address[0] == "::1"
    await round_trip(server, server_seen, client, client_seen)


@pytest_twisted.ensureDeferred
async def test_unix_socket(services, tmp_path):
    path = str(tmp_path / "leads.sock")
    server_seen, client_seen = Recorder(), Recorder()
    server = await services.server(server_seen, endpoint=f"unix:{path}:mode=600")
    status = os.stat(path)
    assert stat.S_ISSOCK(status.st_mode)
    assert stat.S_IMODE(status.st_mode) == 0o600
    client = await services.client(client_seen, endpoint=f"unix:path={path}")
    assert client.connection().address is None  # a unix link has no host and port
    # Written straight to its socket at the end of a batch and from a quiet thread, as a TCP link is.
    assert client.connection().direct
    await round_trip(server, server_seen, client, client_seen)
    await bounded(server.close_in_reactor())
    assert not os.path.exists(path), "the server removes its socket when it stops listening"


@pytest_twisted.ensureDeferred
async def test_serial_pty_pair(services):
    master_fd, slave_fd = os.openpty()
    device = os.ttyname(slave_fd)
    peer = FramedPeer()
    master = None
    try:
        client_seen = Recorder()
        client = await services.client(client_seen, endpoint=SerialEndpoint(device, 115200))
        os.close(slave_fd)  # the client holds the slave side now: when it closes, the master side hears it
        slave_fd = -1
        master = PtyMaster(master_fd, peer)
        master_fd = -1
        await bounded(client_seen.when(lambda seen: len(seen.connections) == 1))
        [link] = client_seen.connections
        assert str(link) == device

        for msg in TO_SERVER:
            client.send(msg)
        for msg in TO_CLIENT:
            peer.send(msg)
        await peer.when_received(COUNT)
        await bounded(client_seen.when(lambda seen: len(seen.received) >= COUNT))
        assert peer.received == TO_SERVER
        assert client_seen.received == TO_CLIENT

        await bounded(client.close_in_reactor())
        await bounded(peer.lost)
        assert peer.received == [*TO_SERVER, DISCONNECT], "the client says goodbye before it closes the line"
        assert client_seen.kinds() == ["initialize", "connect"] + ["receive"] * COUNT + ["disconnect"]
        assert client_seen.disconnections == [link]
        assert not client_seen.failures
    finally:
        if master is not None:
            master.end()
        for fd in (master_fd, slave_fd):
            if fd >= 0:
                os.close(fd)
