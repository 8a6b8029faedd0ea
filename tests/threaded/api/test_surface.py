"""The public names and what they promise: callback chains, ``L``, defaults, positional calls."""

from __future__ import annotations

from support import run_python

from .prelude import script


def test_public_names_import_as_the_issue_lists_them():
    code = script(
        """
        from leads_twisted.comm import (
            create_server, start_server, Server, create_client, start_client, Client,
            Callback, Service, ConnectionBase, Connection,
        )
        from leads_twisted import L
        methods = ["on_initialize", "on_connect", "on_receive", "on_fail", "on_disconnect"]
        callback = Callback()
        # Every method is there and is a no-op by default.
        outcomes = [getattr(callback, name)(*([None] * (1 if name == "on_initialize" else 2))) for name in methods]
        result(
            outcomes=outcomes,
            server_api=all(
                hasattr(Server, n) for n in ("broadcast", "num_connections", "close", "port", "set_callback")
            ),
            client_api=all(hasattr(Client, n) for n in ("send", "close", "port", "set_callback")),
            hierarchy=[
                issubclass(Server, Service), issubclass(Client, Service), issubclass(Connection, ConnectionBase)
            ],
            logger=all(callable(getattr(L, n)) for n in ("debug", "info", "warn", "error")),
        )
        """
    )
    assert run_python(code, timeout=30).result() == {
        "outcomes": [None] * 5,
        "server_api": True,
        "client_api": True,
        "hierarchy": [True, True, True],
        "logger": True,
    }


def test_no_shared_mutable_defaults():
    code = script(
        """
        import inspect
        from leads_twisted.comm import create_server, create_client, start_server, start_client, Callback

        class Mark(Callback):
            pass

        a, b = create_server(), create_server()
        c, d = create_client(), create_client()
        a.set_callback(Mark())
        c.set_callback(Mark())
        defaults = {
            name: repr(inspect.signature(function).parameters[param].default)
            for name, function, param in (
                ("create_server.callback", create_server, "callback"),
                ("create_client.callback", create_client, "callback"),
                ("start_server.target", start_server, "target"),
                ("start_client.target", start_client, "target"),
            )
        }
        result(
            distinct_servers=a is not b,
            distinct_server_callbacks=a._callback is not b._callback,
            distinct_client_callbacks=c._callback is not d._callback,
            untouched=[type(b._callback).__name__, type(d._callback).__name__],
            defaults=defaults,
        )
        """
    )
    outcome = run_python(code, timeout=30).result()
    assert outcome["distinct_servers"] is True
    assert outcome["distinct_server_callbacks"] is True
    assert outcome["distinct_client_callbacks"] is True
    assert outcome["untouched"] == ["Callback", "Callback"], "set_callback on one service changed another"
    # Defaults are None (a fresh object per call), never an object built once at import.
    assert set(outcome["defaults"].values()) == {"None"}


def test_positional_calls_as_in_the_original():
    code = script(
        """
        from leads_twisted.comm import create_server, create_client, start_server, start_client
        server_events, client_events = Events(), Events()
        server = create_server(0, server_events, b"end;")
        start_server(server, True)
        client = create_client(server.port(), client_events, b"end;")
        start_client("127.0.0.1", client, True)
        client.send(b"semi;colons;inside")
        server_events.wait_count("receive", 1)
        server.broadcast(b"back;at;you")
        client_events.wait_count("receive", 1)
        client.close()
        server.close()
        result(server=[m.decode() for m in server_events.received()],
               client=[m.decode() for m in client_events.received()],
               separators=[server.separator.decode(), client.separator.decode()])
        """
    )
    assert run_python(code, timeout=30).result() == {
        "server": ["semi;colons;inside"],
        "client": ["back;at;you"],
        "separators": ["end;", "end;"],
    }


def test_set_callback_chains_with_super_through_the_threaded_api():
    code = script(
        """
        from leads_twisted.comm import create_server, create_client, start_server, start_client, Callback
        order = []

        class Inner(Events):
            def on_receive(self, service, msg):
                order.append(("inner", msg.decode()))
                super().on_receive(service, msg)

        class Outer(Callback):
            def on_connect(self, service, connection):
                order.append(("outer connect", None))
                self.super(service, connection)

            def on_receive(self, service, msg):
                order.append(("outer", msg.decode()))
                self.super(service, msg.upper())

        class Outermost(Callback):
            def on_receive(self, service, msg):
                order.append(("outermost", msg.decode()))
                self.super(service, msg + b"!")

        inner = Inner()
        server = create_server(0, inner, interface="127.0.0.1")
        server.set_callback(Outer())
        server.set_callback(Outermost())
        start_server(server, True)
        client = start_client("127.0.0.1", create_client(server.port()), True)
        client.send(b"hi")
        inner.wait_count("receive", 1)
        client.close()
        server.close()
        result(order=order, received=[m.decode() for m in inner.received()], kinds=inner.kinds())
        """
    )
    outcome = run_python(code, timeout=30).result()
    assert outcome["order"] == [["outermost", "hi"], ["outer", "hi!"], ["inner", "HI!"]]
    assert outcome["received"] == ["HI!"]
    # As in LEADS, a call goes down the chain only through super: a method the front link does not override is
    # its no-op, so Outer.on_connect and the inner link's other methods are not reached.
    assert outcome["kinds"] == ["receive"]


def test_l_prints_each_level():
    code = script(
        """
        from leads_twisted import L
        L.debug("a debug line")
        L.info("an info line")
        L.warn("a warning line")
        L.error("an error line")
        L.info("several", "parts")
        """
    )
    done = run_python(code, timeout=30)
    lines = done.stdout.splitlines()
    for level, text in (
        ("DEBUG", "a debug line"),
        ("INFO", "an info line"),
        ("WARN", "a warning line"),
        ("ERROR", "an error line"),
        ("INFO", "several parts"),
    ):
        assert any(level in line and line.endswith(text) for line in lines), (level, text, done.describe())
    order = [next(i for i, line in enumerate(lines) if line.endswith(t)) for t in ("debug line", "info line")]
    assert order == sorted(order)


def test_l_from_callbacks_shows_in_the_output():
    code = script(
        """
        from leads_twisted import L
        from leads_twisted.comm import create_server, create_client, start_server, start_client, Callback

        class Talk(Callback):
            def on_receive(self, service, msg):
                L.warn("server got", msg.decode())

        server = start_server(create_server(0, Talk(), interface="127.0.0.1"), True)
        client = start_client("127.0.0.1", create_client(server.port()), True)
        client.send(b"ping")
        client.close()
        server.close()
        """
    )
    done = run_python(code, timeout=30)
    assert any("WARN" in line and line.endswith("server got ping") for line in done.stdout.splitlines()), (
        done.describe()
    )
