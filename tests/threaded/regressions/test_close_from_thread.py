"""Bug 6: ``Connection.close()`` from a thread other than the reactor's makes ``closed()`` true at once, and a
``send()`` right after it raises ``OSError`` instead of queueing a message behind the goodbye. Both ends: the
server's connection to a client, and a client's own connection (each kept from ``on_connect``)."""

from __future__ import annotations

from support import run_python

from threaded.api.prelude import script


def test_close_from_another_thread_closes_at_once():
    code = script(
        """
        watchdog(20)
        from leads_twisted.comm import create_client, create_server, start_client, start_server

        def close_then_send(connection):
            connection.close()
            closed_at_once = connection.closed()
            try:
                connection.send(b"after close")
                send_after = "sent"
            except OSError as error:
                send_after = "OSError: " + str(error)
            except Exception as error:
                send_after = type(error).__name__ + ": " + str(error)
            connection.close()  # a second call does nothing
            return closed_at_once, send_after

        class NotesSenders(Events):
            def __init__(self):
                super().__init__()
                self.by_name = {}

            def on_receive(self, service, msg):
                self.by_name[msg] = service.sender()
                super().on_receive(service, msg)

        server_events = NotesSenders()
        server = start_server(create_server(0, server_events, interface="127.0.0.1"), True)
        a_events, b_events = Events(), Events()
        a = start_client("127.0.0.1", create_client(server.port(), a_events), True)
        b = start_client("127.0.0.1", create_client(server.port(), b_events), True)
        server_events.wait_count("connect", 2)
        a.send(b"I am a")
        server_events.wait_count("receive", 1)
        a_on_server = server_events.by_name[b"I am a"]

        # The server closes its link to client a, from the main thread.
        server_closed_at_once, server_send_after = close_then_send(a_on_server)
        a_events.wait_count("disconnect", 1)
        # Client b closes its own connection, from the main thread.
        [b_link] = b_events.of("connect")
        client_closed_at_once, client_send_after = close_then_send(b_link)
        b_events.wait_count("disconnect", 1)
        server_events.wait_count("disconnect", 2)
        result(
            server_closed_at_once=server_closed_at_once,
            server_send_after=server_send_after,
            client_closed_at_once=client_closed_at_once,
            client_send_after=client_send_after,
            a_received=[m.decode() for m in a_events.received()],
            server_received=[m.decode() for m in server_events.received()],
            failures=[repr(e) for e in server_events.of("fail") + a_events.of("fail") + b_events.of("fail")],
        )
        server.close()
        """
    )
    outcome = run_python(code, timeout=30).result()
    assert outcome["server_closed_at_once"], f"closed() was False right after close() from a thread: {outcome}"
    assert outcome["server_send_after"].startswith("OSError"), f"send() after close() did not raise: {outcome}"
    assert outcome["client_closed_at_once"], f"closed() was False right after close() from a thread: {outcome}"
    assert outcome["client_send_after"].startswith("OSError"), f"send() after close() did not raise: {outcome}"
    assert outcome["a_received"] == [], outcome
    assert outcome["server_received"] == ["I am a"], outcome
    assert outcome["failures"] == [], outcome
