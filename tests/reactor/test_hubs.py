"""The hubs by themselves, as the daemon and Twisted programs use them: no reactor thread of their own, no
outbox, no blocking call; sends from other threads cross over through the hub's ``ReactorHandoff``."""

from __future__ import annotations

import threading
from typing import Any

import pytest_twisted
from twisted.internet import reactor, threads

from leads_twisted.comm import ClientHub, ReactorHandoff, ReactorThreadError, ServerHub, Service

from .conftest import TIMEOUT, Recorder

LOOPBACK = "127.0.0.1"


def in_thread(function: Any, *args: Any) -> Any:
    return threads.deferToThread(function, *args).addTimeout(TIMEOUT, reactor)


async def hubs(net: Any, server_seen: Recorder, client_seen: Recorder) -> tuple[ServerHub, ClientHub]:
    server = ServerHub(0, server_seen, interface=LOOPBACK)
    net.services.append(server)
    await server.start_in_reactor().addTimeout(TIMEOUT, reactor)
    client = ClientHub(server.port(), client_seen)
    net.services.append(client)
    await client.start_in_reactor(LOOPBACK).addTimeout(TIMEOUT, reactor)
    await server_seen.when_kind("connect")
    return server, client


@pytest_twisted.ensureDeferred
async def test_hubs_relay_in_the_reactor_thread_and_are_not_the_thread_facade(net: Any) -> None:
    server_seen, client_seen = Recorder(), Recorder()
    server, client = await hubs(net, server_seen, client_seen)
    assert not isinstance(server, Service) and not isinstance(client, Service)
    assert isinstance(server.handoff, ReactorHandoff) and server.in_reactor_thread()
    client.send(b"up")
    await server_seen.when(lambda: server_seen.received() == [b"up"])
    server.broadcast(b"down")
    await client_seen.when(lambda: client_seen.received() == [b"down"])
    await client.close_in_reactor().addTimeout(TIMEOUT, reactor)
    await server_seen.when_kind("disconnect")


@pytest_twisted.ensureDeferred
async def test_sends_from_another_thread_cross_over_in_order_and_a_close_comes_after_them(net: Any) -> None:
    server_seen, client_seen = Recorder(), Recorder()
    server, _client = await hubs(net, server_seen, client_seen)
    link = server.connections()[0]
    sent = [f"m{i}".encode() for i in range(500)]

    def from_a_thread() -> bool:
        for msg in sent:
            link.send(msg)
        server.broadcast(b"last")
        link.close()
        return server.in_reactor_thread()

    assert await in_thread(from_a_thread) is False
    await client_seen.when_kind("disconnect")
    assert client_seen.received() == [*sent, b"last"]


@pytest_twisted.ensureDeferred
async def test_a_client_hub_refuses_a_send_from_another_thread_once_its_link_is_gone(net: Any) -> None:
    server_seen, client_seen = Recorder(), Recorder()
    server, client = await hubs(net, server_seen, client_seen)
    await server.close_in_reactor().addTimeout(TIMEOUT, reactor)
    await client_seen.when_kind("disconnect")
    outcome: list[BaseException] = []

    def late_send() -> None:
        try:
            client.send(b"late")
        except OSError as error:
            outcome.append(error)

    await in_thread(late_send)
    assert len(outcome) == 1 and "disconnect" in str(outcome[0])
    assert threading.current_thread() is threading.main_thread()


@pytest_twisted.ensureDeferred
async def test_a_hub_on_the_global_reactor_refuses_to_start_outside_its_thread(net: Any) -> None:
    server = ServerHub(0, Recorder(), interface=LOOPBACK)
    net.services.append(server)

    def start_here() -> str:
        try:
            server.start_in_reactor()
        except ReactorThreadError as error:
            return str(error)
        return "started"

    assert "reactor thread" in await in_thread(start_here)
    await server.start_in_reactor().addTimeout(TIMEOUT, reactor)  # in the reactor thread it starts
    assert server.port() != 0
