"""Bug 9: ``Server.broadcast(msg, exclude=connection)`` sends to every client but ``connection``: from the reactor
thread (in process) and from another thread (threaded API, in a subprocess). A broadcast to all that follows
shows the excluded client got nothing before it, since each client's messages arrive in order."""

from __future__ import annotations

import pytest_twisted
from support import run_python
from threaded.api.prelude import script

from .conftest import Recorder, seen


class NotesSenders(Recorder):
    """Maps each client's ``hello:N`` to the server's connection it came on."""

    def __init__(self) -> None:
        super().__init__()
        self.by_name: dict[bytes, object] = {}

    def on_receive(self, service, msg):
        self.by_name[msg] = service.sender()
        super().on_receive(service, msg)


@pytest_twisted.ensureDeferred
async def test_broadcast_excludes_one_connection_from_the_reactor_thread(net):
    server_seen = NotesSenders()
    server = await net.server(server_seen)
    clients_seen = [Recorder() for _ in range(3)]
    for number, client_seen in enumerate(clients_seen):
        client = await net.started_client(server.port(), client_seen)
        client.send(b"hello:%d" % number)
    await seen(server_seen, lambda s: len(s.received) == 3)
    excluded = server_seen.by_name[b"hello:0"]

    server.broadcast(b"not to 0", exclude=excluded)
    server.broadcast(b"to all")
    for client_seen in clients_seen:
        await seen(client_seen, lambda s: b"to all" in s.received)

    assert clients_seen[0].received == [b"to all"]
    assert clients_seen[1].received == [b"not to 0", b"to all"]
    assert clients_seen[2].received == [b"not to 0", b"to all"]
    assert not any(client_seen.failures for client_seen in clients_seen) and not server_seen.failures


def test_broadcast_excludes_one_connection_from_another_thread():
    code = script(
        """
        watchdog(20)
        from leads_twisted.comm import create_client, create_server, start_client, start_server

        class NotesSenders(Events):
            def __init__(self):
                super().__init__()
                self.by_name = {}

            def on_receive(self, service, msg):
                self.by_name[msg] = service.sender()
                super().on_receive(service, msg)

        server_events = NotesSenders()
        server = start_server(create_server(0, server_events, interface="127.0.0.1"), True)
        clients = []
        for number in range(3):
            events = Events()
            client = start_client("127.0.0.1", create_client(server.port(), events), True)
            client.send(b"hello:%d" % number)
            clients.append((client, events))
        server_events.wait_count("receive", 3)
        excluded = server_events.by_name[b"hello:1"]

        error = None
        try:
            for i in range(50):  # many, so some go through the outbox in one batch with the others
                server.broadcast(b"not to 1:%d" % i, exclude=excluded)
                server.broadcast(b"to all:%d" % i)
        except Exception as exc:
            error = repr(exc)
        received = []
        for client, events in clients:
            if error is None:
                events.wait(lambda: b"to all:49" in [d for k, d in events.events if k == "receive"], "to all:49")
            received.append([m.decode() for m in events.received()])
        result(error=error, received=received, failures=[repr(e) for e in server_events.of("fail")])
        for client, _ in clients:
            client.close()
        server.close()
        """
    )
    outcome = run_python(code, timeout=30).result()
    assert outcome["error"] is None, outcome
    everything = [msg for i in range(50) for msg in (f"not to 1:{i}", f"to all:{i}")]
    only_all = [f"to all:{i}" for i in range(50)]
    assert outcome["received"][0] == everything
    assert outcome["received"][1] == only_all, f"the excluded client got: {outcome['received'][1][:6]}"
    assert outcome["received"][2] == everything
    assert outcome["failures"] == []
