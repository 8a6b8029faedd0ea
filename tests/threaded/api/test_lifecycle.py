"""Starting, blocking, failing and closing through the threaded API, each in a subprocess with a timeout."""

from __future__ import annotations

import signal
import socket
import textwrap

import pytest
from support import Script, free_port, run_python

from .prelude import script

IMPORTS = "from leads_twisted.comm import *\n"


def api_script(body: str) -> str:
    return script(IMPORTS + textwrap.dedent(body))


def read_until_closed(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything the peer sends until it closes; fails the test if it does not close in time."""
    sock.settimeout(timeout)
    data = b""
    for _ in range(100_000):
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            pytest.fail(f"the peer did not close within {timeout}s; got {data[-200:]!r}")
        if not chunk:
            return data
        data += chunk
    pytest.fail("the peer kept sending")


def test_close_twice_and_from_inside_callbacks():
    code = api_script(
        """
        watchdog(20)
        problems = []

        class CloseOnRequest(Events):
            def on_receive(self, service, msg):
                super().on_receive(service, msg)
                try:
                    if msg == b"close the service":
                        service.close()
                        service.close()
                    elif msg == b"close the link":
                        link = service.sender()
                        link.close()
                        link.close()
                except Exception as error:
                    problems.append(repr(error))

        # A server that closes one link from inside on_receive, then itself.
        server_events = CloseOnRequest()
        server = start_server(create_server(0, server_events, interface="127.0.0.1"), True)
        first = start_client("127.0.0.1", create_client(server.port()), True)
        first.send(b"close the link")
        server_events.wait_count("disconnect", 1)
        second = start_client("127.0.0.1", create_client(server.port()), True)
        second.send(b"close the service")
        server_events.wait_count("disconnect", 2)

        # A client that closes itself from inside on_receive.
        helper_events = Events()
        helper = start_server(create_server(0, helper_events, interface="127.0.0.1"), True)
        client_events = CloseOnRequest()
        client = start_client("127.0.0.1", create_client(helper.port(), client_events), True)
        helper_events.wait_count("connect", 1)
        helper_events.of("connect")[0].send(b"close the service")
        client_events.wait_count("disconnect", 1)

        started = time.monotonic()
        for service in (server, client, first, second, helper, server, client, helper):
            service.close()
        never_started = create_server(0)
        never_started.close()
        never_started.close()
        result(
            problems=problems,
            fails=[repr(e) for e in server_events.of("fail") + client_events.of("fail")],
            seconds=time.monotonic() - started,
            states=[s.state.value for s in (server, client, first, second, helper, never_started)],
        )
        """
    )
    outcome = run_python(code, timeout=30).result()
    assert outcome["problems"] == []
    assert outcome["fails"] == []
    assert outcome["states"] == ["closed"] * 6
    assert outcome["seconds"] < 5, "closing what is closed must not wait"


@pytest.mark.parametrize("parallel", [True, False])
def test_connecting_to_a_closed_port_fails_promptly(parallel):
    port = free_port()
    code = api_script(
        f"""
        watchdog(20)
        events = Events()
        client = create_client({port}, events)
        started = time.monotonic()
        try:
            start_client("127.0.0.1", client, {parallel})
            raised = None
        except Exception as error:
            raised = [type(error).__name__, isinstance(error, ConnectionRefusedError), str(error)]
        result(
            raised=raised,
            seconds=time.monotonic() - started,
            kinds=events.kinds(),
            fail=[isinstance(e, ConnectionRefusedError) for e in events.of("fail")],
            state=client.state.value,
        )
        """
    )
    outcome = run_python(code, timeout=30).result()
    assert outcome["raised"] is not None, "start_client must raise"
    assert outcome["raised"][1] is True, outcome["raised"]
    assert str(port) in outcome["raised"][2], "the error names where it tried"
    assert outcome["seconds"] < 5
    assert outcome["kinds"] == ["initialize", "fail"]
    assert outcome["fail"] == [True]
    assert outcome["state"] == "closed"


@pytest.mark.parametrize("holder", ["a plain socket", "another leads server"])
@pytest.mark.parametrize("parallel", [True, False])
def test_port_in_use_raises_os_error(holder, parallel):
    code = api_script(
        f"""
        import errno, socket
        watchdog(20)
        if {holder!r} == "a plain socket":
            holder = socket.socket()
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            port = holder.getsockname()[1]
        else:
            holder = start_server(create_server(0, interface="127.0.0.1"), True)
            port = holder.port()
        events = Events()
        server = create_server(port, events, interface="127.0.0.1")
        started = time.monotonic()
        try:
            start_server(server, {parallel})
            raised = None
        except OSError as error:
            raised = [type(error).__name__, error.errno == errno.EADDRINUSE, str(error)]
        result(
            raised=raised,
            seconds=time.monotonic() - started,
            fail=[isinstance(e, OSError) for e in events.of("fail")],
            state=server.state.value,
        )
        holder.close()
        """
    )
    outcome = run_python(code, timeout=30).result()
    assert outcome["raised"] is not None, "start_server must raise OSError"
    assert outcome["raised"][1] is True, outcome["raised"]
    assert outcome["seconds"] < 5
    assert outcome["fail"] == [True]
    assert outcome["state"] == "closed"


def test_parallel_false_server_blocks_until_closed_from_another_thread():
    code = api_script(
        """
        watchdog(20)
        events = Events()
        server = create_server(0, events, interface="127.0.0.1")
        order = []

        def closer():
            events.wait_count("initialize", 1)
            visitor = start_client("127.0.0.1", create_client(server.port()), True)
            visitor.send(b"are you serving?")
            events.wait_count("receive", 1)
            order.append("closing")
            server.close()
            order.append("closed")

        thread = threading.Thread(target=closer)
        thread.start()
        returned = start_server(server)
        order.append("returned")
        thread.join(10)
        result(order=order, same=returned is server, state=server.state.value, received=len(events.received()))
        """
    )
    outcome = run_python(code, timeout=30).result()
    assert outcome["order"][0] == "closing", "start_server(parallel=False) returned before close()"
    assert sorted(outcome["order"]) == ["closed", "closing", "returned"]
    assert outcome["same"] is True
    assert outcome["state"] == "closed"
    assert outcome["received"] == 1


@pytest.mark.parametrize("ender", ["the server closes", "the client is closed from another thread"])
def test_parallel_false_client_blocks_until_the_link_ends(ender):
    code = api_script(
        f"""
        watchdog(20)
        server_events = Events()
        server = start_server(create_server(0, server_events, interface="127.0.0.1"), True)
        events = Events()
        client = create_client(server.port(), events)
        order = []

        def ender():
            server_events.wait_count("connect", 1)
            order.append("ending")
            if {ender!r} == "the server closes":
                server.close()
            else:
                client.close()

        thread = threading.Thread(target=ender)
        thread.start()
        start_client("127.0.0.1", client)
        order.append("returned")
        thread.join(10)
        server.close()
        result(order=order, kinds=events.kinds(), state=client.state.value)
        """
    )
    outcome = run_python(code, timeout=30).result()
    assert outcome["order"][0] == "ending"
    assert "returned" in outcome["order"]
    assert outcome["kinds"] == ["initialize", "connect", "disconnect"]
    assert outcome["state"] == "closed"


def test_blocking_calls_inside_a_callback_raise_instead_of_deadlocking():
    code = api_script(
        """
        watchdog(20)
        from leads_twisted.comm import ReactorThreadError
        outcomes = {}

        class TriesToBlock(Events):
            def on_connect(self, service, connection):
                for name, call in (
                    ("start_server", lambda: start_server(create_server(0, interface="127.0.0.1"))),
                    ("start_client", lambda: start_client("127.0.0.1", create_client(service.port()))),
                ):
                    started = time.monotonic()
                    try:
                        call()
                        outcomes[name] = "returned"
                    except ReactorThreadError as error:
                        outcomes[name] = ["ReactorThreadError", isinstance(error, RuntimeError), str(error)]
                    except Exception as error:
                        outcomes[name] = repr(error)
                    outcomes[name + " seconds"] = time.monotonic() - started
                # Not blocking is fine from here: a server started in parallel comes up.
                self.extra_events = Events()
                self.extra = start_server(create_server(0, self.extra_events, interface="127.0.0.1"), True)
                super().on_connect(service, connection)

        events = TriesToBlock()
        server = start_server(create_server(0, events, interface="127.0.0.1"), True)
        client = start_client("127.0.0.1", create_client(server.port()), True)
        events.wait_count("connect", 1)
        extra = events.extra
        events.extra_events.wait_count("initialize", 1)
        extra_port = extra.port()
        for service in (client, server, extra):
            service.close()
        result(outcomes=outcomes, extra_port=extra_port)
        """
    )
    outcome = run_python(code, timeout=30).result()
    for name in ("start_server", "start_client"):
        assert outcome["outcomes"][name][:2] == ["ReactorThreadError", True], outcome["outcomes"]
        assert "parallel=True" in outcome["outcomes"][name][2], "the error says what to do instead"
        assert outcome["outcomes"][name + " seconds"] < 1
    assert outcome["extra_port"] > 0


def test_starting_twice_is_an_error():
    code = api_script(
        """
        watchdog(20)
        server = start_server(create_server(0, interface="127.0.0.1"), True)
        try:
            start_server(server, True)
            again = "returned"
        except RuntimeError as error:
            again = type(error).__name__
        server.close()
        result(again=again)
        """
    )
    assert run_python(code, timeout=30).result() == {"again": "RuntimeError"}


def test_a_server_open_at_exit_tells_its_peers_disconnect():
    code = api_script(
        """
        watchdog(20)

        class Say(Events):
            def on_connect(self, service, connection):
                super().on_connect(service, connection)
                say("CONNECTED")

            def on_disconnect(self, service, connection):
                super().on_disconnect(service, connection)
                say("DISCONNECTED")

        events = Say()
        server = start_server(create_server(0, events, interface="127.0.0.1"), True)
        say("PORT", server.port())
        events.wait_count("connect", 1)
        server.broadcast(b"before exit")
        say("EXITING")
        # No close(): the interpreter exits with the server open.
        """
    )
    with Script(code) as running:
        port = int(running.expect("PORT"))
        with socket.create_connection(("127.0.0.1", port), timeout=5) as peer:
            running.expect("EXITING")
            data = read_until_closed(peer)
        done = running.finish(15)
    assert data == b"before exit;disconnect;"
    assert done.rc == 0, done.stderr
    assert "DISCONNECTED" in done.stdout
    assert "Traceback" not in done.stderr, done.stderr


def test_a_client_open_at_exit_delivers_what_it_sent_then_disconnect():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(15)
        port = listener.getsockname()[1]
        code = api_script(
            f"""
            watchdog(20)
            client = start_client("127.0.0.1", create_client({port}), True)
            for i in range(1000):
                client.send(b"m%d" % i)
            # No close(): the interpreter exits with the client open and messages perhaps still queued.
            """
        )
        with Script(code) as running:
            peer, _ = listener.accept()
            with peer:
                data = read_until_closed(peer)
            done = running.finish(15)
    assert data == b"".join(b"m%d;" % i for i in range(1000)) + b"disconnect;"
    assert done.rc == 0, done.stderr


@pytest.mark.parametrize("service", ["server", "client"])
def test_ctrl_c_during_a_blocking_start_closes_cleanly(service):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(15)
        code = api_script(
            f"""
            import signal, socket
            watchdog(20)
            # As in a terminal: a shell may start background jobs with SIGINT ignored, and Python then keeps
            # ignoring it.
            signal.signal(signal.SIGINT, signal.default_int_handler)

            class Say(Events):
                def on_connect(self, service, connection):
                    super().on_connect(service, connection)
                    say("CONNECTED")

            events = Say()
            if {service!r} == "server":
                target = create_server(0, events, interface="127.0.0.1")
                threading.Thread(
                    target=lambda: (events.wait_count("initialize", 1), say("PORT", target.port())),
                    daemon=True,
                ).start()
                start = lambda: start_server(target)
            else:
                target = create_client({listener.getsockname()[1]}, events)
                start = lambda: start_client("127.0.0.1", target)
            try:
                start()
                outcome = "returned"
            except KeyboardInterrupt:
                outcome = "KeyboardInterrupt"
            state = target.state.value
            events.wait_count("disconnect", 1, timeout=5)
            rebound = None
            if {service!r} == "server":
                probe = socket.socket()
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(("127.0.0.1", target.port()))
                probe.close()
                rebound = True
            result(outcome=outcome, state=state, kinds=events.kinds(), rebound=rebound)
            """
        )
        with Script(code) as running:
            if service == "server":
                port = int(running.expect("PORT"))
                peer = socket.create_connection(("127.0.0.1", port), timeout=5)
            else:
                peer, _ = listener.accept()
            with peer:
                running.expect("CONNECTED")
                running.proc.send_signal(signal.SIGINT)
                data = read_until_closed(peer)
            done = running.finish(15)
    assert data == b"disconnect;"
    assert done.rc == 0, done.describe()
    outcome = done.result()
    assert outcome["outcome"] == "KeyboardInterrupt", "Ctrl-C reaches the caller of the blocking start"
    assert outcome["state"] == "closed", "the service is closed by the time start raises"
    assert outcome["kinds"] == ["initialize", "connect", "disconnect"]
    if service == "server":
        assert outcome["rebound"] is True


@pytest.mark.parametrize("service", ["server", "client"])
def test_ctrl_c_while_a_blocking_start_is_still_starting_closes_cleanly(service):
    # on_initialize runs while start is still waiting for the listening port or the connection: a Ctrl-C that
    # lands there must close what was begun, not leave it running behind the KeyboardInterrupt.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        code = api_script(
            f"""
            import signal
            watchdog(20)
            signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (see above)

            class Interrupt(Events):
                def on_initialize(self, service):
                    super().on_initialize(service)
                    os.kill(os.getpid(), signal.SIGINT)

            events = Interrupt()
            if {service!r} == "server":
                target = create_server(0, events, interface="127.0.0.1")
                start = lambda: start_server(target)
            else:
                target = create_client({listener.getsockname()[1]}, events)
                start = lambda: start_client("127.0.0.1", target)
            try:
                start()
                outcome = "returned"
            except KeyboardInterrupt:
                outcome = "KeyboardInterrupt"
            result(outcome=outcome, state=target.state.value, kinds=events.kinds())
            """
        )
        done = run_python(code, timeout=30)
        listener.settimeout(0.5)
        try:
            peer, _ = listener.accept()
        except TimeoutError:
            data = None
        else:
            with peer:
                data = read_until_closed(peer, 5)
    outcome = done.result()
    assert outcome["outcome"] == "KeyboardInterrupt"
    assert outcome["state"] == "closed", "closed by the time start raises"
    assert outcome["kinds"][0] == "initialize"
    # The client's link, if it was made at all, ended with disconnect.
    assert data in (None, b"", b"disconnect;")


def test_parallel_start_client_returns_after_on_connect_has_run():
    # A common pattern: on_connect keeps the connection (after logging it); the code after a parallel
    # start_client then uses it. That works only if start_client returns once on_connect has run.
    code = api_script(
        """
        watchdog(20)
        from leads_twisted import L

        class KeepsLink(Callback):
            link = None

            def on_connect(self, service, connection):
                L.info("Connected")
                self.link = connection

        server = start_server(create_server(0, interface="127.0.0.1"), True)
        missed = 0
        for _ in range(10):
            callback = KeepsLink()
            client = start_client("127.0.0.1", create_client(server.port(), callback), True)
            missed += callback.link is None
            client.close()
        server.close()
        result(missed=missed)
        """
    )
    assert run_python(code, timeout=30).result() == {"missed": 0}


def test_a_memory_runner_server_starts_in_reactor_while_the_shared_reactor_runs_in_its_thread():
    """``start_in_reactor`` is checked against the service's own runner: a ``Server`` on a ``MemoryRunner``
    starts in the calling thread even though Twisted's global reactor runs in the library's thread, while a
    ``Server`` on the shared runner, called from that same thread, is refused."""
    code = api_script(
        """
        watchdog(20)
        from leads_twisted.testing import MemoryRunner

        shared = start_server(create_server(0, Events(), interface="127.0.0.1"), True)  # the reactor thread runs
        in_memory = Server(0, Events(), runner=MemoryRunner())
        started = []
        in_memory.start_in_reactor().addCallback(started.append)
        refused = ""
        try:
            Server(0, Events(), interface="127.0.0.1").start_in_reactor()
        except ReactorThreadError as error:
            refused = str(error)
        result(started=len(started), refused=refused)
        shared.close()
        """
    )
    outcome = run_python(code, timeout=30).result()
    assert outcome["started"] == 1
    assert "use start() elsewhere" in outcome["refused"]
