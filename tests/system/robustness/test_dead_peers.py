"""Peers that vanish: reset mid-message (SO_LINGER 0), half-closed, or silent while the server closes the link.

Each is reported to ``on_disconnect`` exactly once, the server does not spin on the dead socket, and the
other clients carry on.
"""

from __future__ import annotations

import contextlib
import socket
import struct

import pytest_twisted
from support_net import LOOPBACK, RawPeer, window

from .harness import EchoLoop, Recorder, cpu_seconds

#: A server with nothing to do uses next to no CPU; one spinning on a dead socket uses the whole window.
CPU_WINDOW_SECONDS = 1.5
IDLE_CPU_SECONDS = 0.25


def reset(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP reset instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def peer_name(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"


@pytest_twisted.ensureDeferred
async def test_reset_and_half_closed_peers_disconnect_once_without_spinning(processes, net):
    server = await processes.server()
    chatter = EchoLoop()
    await net.started_client(server.port, chatter)
    await chatter.round_trips(20)

    def disconnected(name: str):
        return server.when(lambda: any(e["peer"] == name for e in server.of("disconnect")), f"{name} disconnected", 10)

    # A reset in the middle of a message the server is reading.
    reading = socket.create_connection((LOOPBACK, server.port), timeout=5)
    reading_name = peer_name(reading)
    await server.when(lambda: any(e["peer"] == reading_name for e in server.of("connect")), "connect", 10)
    reading.sendall(b"echo:half a message, never ended")
    reset(reading)
    await disconnected(reading_name)

    # A reset in the middle of a 6 MB answer the server is writing.
    writing = socket.create_connection((LOOPBACK, server.port), timeout=5)
    writing_name = peer_name(writing)
    writing.sendall(b"echo:" + b"z" * 6_000_000 + b";")
    assert writing.recv(1) == b"z"  # the answer has begun: the server is writing it now
    reset(writing)
    await disconnected(writing_name)

    # Half-closed: part of a message, then our write side shut while we keep reading.
    half = await net.peer(RawPeer(), server.port)
    half_name = f"{LOOPBACK}:{half.transport.getHost().port}"
    half.transport.write(b"echo:cut short")
    half.transport.loseWriteConnection()
    await disconnected(half_name)
    await half.when_lost()

    await chatter.round_trips(20)
    used_before = cpu_seconds(server.pid)
    await window(CPU_WINDOW_SECONDS)
    used = cpu_seconds(server.pid) - used_before
    await chatter.round_trips(20)
    stats = await server.stats()
    print(f"dead peers: server used {used:.2f} s of CPU in a {CPU_WINDOW_SECONDS} s idle window")

    assert used < IDLE_CPU_SECONDS, f"the server used {used:.2f} s of CPU in {CPU_WINDOW_SECONDS} s while idle"
    assert stats["counts"] == {"connect": 4, "disconnect": 3}, stats
    assert stats["repeated_disconnects"] == [], stats
    assert stats["connections"] == 1, stats
    # The cut-short message was never answered; the server closed its side as after any peer's end: disconnect.
    assert half.data == b"disconnect;", half.describe()
    assert chatter.of("disconnect") == [] and not chatter.wrong, chatter.describe()


@pytest_twisted.ensureDeferred
async def test_a_peer_that_never_answers_disconnect_is_cut_after_close_timeout(net):
    recorder = Recorder()
    server = await net.server(recorder, close_timeout=1.0)
    # A peer that neither reads nor closes: it never hears the server's disconnect.
    silent = socket.create_connection((LOOPBACK, server.port()), timeout=5)
    try:
        other = await net.peer(RawPeer(), server.port())
        await recorder.when_count("connect", 2)
        silent_link = next(c for c in recorder.of("connect") if c.address[1] == silent.getsockname()[1])
        silent_link.close()
        await recorder.when_count("disconnect", 1, timeout=5)
        other.transport.write(b"still here;")
        await recorder.when_count("receive")
        assert recorder.of("disconnect") == [silent_link]
        assert recorder.of("receive") == [b"still here"]
        assert server.num_connections() == 1
        silent.settimeout(5)
        assert silent.recv(100) == b"disconnect;"
    finally:
        with contextlib.suppress(OSError):
            silent.close()
