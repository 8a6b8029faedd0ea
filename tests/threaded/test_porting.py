"""The ``leads.comm`` 0.9 names that keep their meaning, shown over real sockets in subprocesses."""

from __future__ import annotations

import textwrap

import pytest
from support import run_python

from threaded.api.prelude import script


def test_remove_connection_leaves_a_link_out_of_counts_and_broadcasts_but_open():
    code = script(
        """
        watchdog(60)
        from leads_twisted.comm import create_client, create_server, start_client, start_server

        events = Events()
        server = start_server(create_server(0, events, interface="127.0.0.1"), True)
        kept_seen, removed_seen = Events(), Events()
        kept = start_client("127.0.0.1", create_client(server.port(), kept_seen), True)
        events.wait_count("connect", 1)
        removed = start_client("127.0.0.1", create_client(server.port(), removed_seen), True)
        events.wait_count("connect", 2)
        first, second = server.connections()  # oldest first: kept's link, then removed's
        server.remove_connection(second)
        counted = server.num_connections()
        server.broadcast(b"all")
        second.send(b"direct")  # after the broadcast, on the same link: had it come, it would come first
        removed_seen.wait(lambda: removed_seen.received(), "the direct message")
        kept_seen.wait(lambda: kept_seen.received(), "the broadcast")
        removed.send(b"still heard")
        events.wait(lambda: b"still heard" in events.received(), "a message from the removed link")
        server.remove_connection(second)  # a second time: ignored
        server.close()  # closes the removed link too
        kept_seen.wait_count("disconnect", 1)
        removed_seen.wait_count("disconnect", 1)
        result(counted=counted, kept=[m.decode() for m in kept_seen.received()],
               removed=[m.decode() for m in removed_seen.received()])
        """
    )
    out = run_python(code, timeout=60).result()
    assert out == {"counted": 1, "kept": ["all"], "removed": ["direct"]}


def test_drop_remainder_forgets_the_unfinished_message():
    code = script(
        """
        watchdog(60)
        import socket
        from leads_twisted.comm import Callback, create_server, start_server

        class Dropper(Events):
            def on_receive(self, service, msg):
                super().on_receive(service, msg)
                if msg == b"drop":
                    service.sender().drop_remainder()

        events = Dropper()
        server = start_server(create_server(0, events, interface="127.0.0.1"), True)
        peer = socket.create_connection(("127.0.0.1", server.port()), timeout=10)
        peer.sendall(b"keep;ab")  # control: without a drop, "ab" begins the next message
        events.wait(lambda: events.received(), "keep")
        peer.sendall(b"c;drop;xy")  # the drop comes in the same chunk as the start of the next message
        events.wait(lambda: b"drop" in events.received(), "drop")
        peer.sendall(b"z;")
        events.wait(lambda: len(events.received()) == 4, "the message after the drop")
        peer.close()
        server.close()
        result(received=[m.decode() for m in events.received()])
        """
    )
    assert run_python(code, timeout=60).result() == {"received": ["keep", "abc", "drop", "z"]}


def test_run_serves_in_the_calling_thread_until_close():
    code = script(
        """
        watchdog(60)
        from leads_twisted.comm import create_client, create_server

        events = Events()

        up = threading.Event()

        class Stopper(Events):
            def on_initialize(self, service):
                up.set()

            def on_receive(self, service, msg):
                service.close()

        server = create_server(0, Stopper(), interface="127.0.0.1")
        runner = threading.Thread(target=server.run, kwargs={"max_connection": 8}, name="runner", daemon=True)
        runner.start()
        up.wait(10)
        client = create_client(server.port(), events)
        threading.Thread(target=client.run, args=("127.0.0.1",), daemon=True).start()
        events.wait_count("connect", 1)
        client.send(b"stop")
        runner.join(10)
        result(server_ended=not runner.is_alive())
        """
    )
    assert run_python(code, timeout=60).result() == {"server_ended": True}


def test_a_misspelt_option_names_the_call_and_the_valid_options():
    code = """
        from leads_twisted.comm import create_client, create_server
        for call in (create_client, create_server):
            try:
                call(reconect=True) if call is create_client else call(max_conections=3)
            except TypeError as error:
                print("ERROR", error)
        """
    lines = [line for line in run_python(code).stdout.splitlines() if line.startswith("ERROR")]
    assert lines[0].startswith("ERROR create_client() has no option 'reconect' (did you mean 'reconnect'?)")
    assert "connect_timeout" in lines[0] and "queue_while_disconnected" in lines[0] and "LinkPolicy" not in lines[0]
    assert lines[1].startswith("ERROR create_server() has no option 'max_conections' (did you mean 'max_connections'?)")
    assert "backlog" in lines[1] and "idle_timeout" in lines[1]


def test_an_endpoint_with_a_word_for_a_port_says_so():
    code = """
        from leads_twisted.comm import create_server, start_server
        try:
            start_server(create_server(endpoint="tcp:abc"), parallel=True)
        except ValueError as error:
            print("ERROR", error)
        """
    assert "ERROR cannot start on endpoint 'tcp:abc': 'abc' is not a number where the description needs one" in (
        run_python(code).stdout
    )


def test_a_failed_start_says_its_error_once():
    code = """
        import socket
        from leads_twisted.comm import create_server, start_server
        holder = socket.socket()
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        start_server(create_server(holder.getsockname()[1], interface="127.0.0.1"), parallel=True)
        """
    done = run_python(code, check=False)
    both = done.stdout + done.stderr
    assert done.rc == 1
    assert both.count("Address already in use") == 1, both
    assert "another program listens on it" in both


def test_a_port_held_by_lingering_connections_says_so_and_not_that_something_listens():
    # A program that does not allow the port's reuse (as leads 0.9's server) closes its side first and exits:
    # its connection lingers in TIME_WAIT and nothing listens.
    code = """
        import socket
        from leads_twisted.comm import create_server, start_server
        old = socket.socket()
        old.bind(("127.0.0.1", 0))
        old.listen(1)
        port = old.getsockname()[1]
        peer = socket.create_connection(("127.0.0.1", port), timeout=10)
        accepted, _ = old.accept()
        accepted.close()
        assert peer.recv(10) == b""
        peer.close()
        old.close()
        try:
            start_server(create_server(port, interface="127.0.0.1"), parallel=True)
        except OSError as error:
            print("ERROR", error)
        """
    out = run_python(code).stdout
    assert "TIME_WAIT" in out and "nothing listens on it" in out and "start again in a minute" in out, out


BLOCKING_PATTERNS = """
    watchdog(60)
    import queue
    from twisted.internet.threads import deferToThread
    from leads_twisted.comm import Callback, create_client, create_server, start_client, start_server

    started, release = threading.Event(), threading.Event()

    def slow_lookup(msg):
        started.set()
        release.wait(20)  # slow work: done only once the test says so
        return b"slow done"

    work = queue.Queue()

    def worker():
        while True:
            connection, msg = work.get()
            connection.send(slow_lookup(msg))

    threading.Thread(target=worker, daemon=True).start()

    class Handler(Callback):
        def on_receive(self, service, msg):
            if msg == b"ping":
                service.reply(b"pong")
            elif PATTERN == "blocking":
                service.reply(slow_lookup(msg))  # what a thread per connection allowed
            elif PATTERN == "deferToThread":
                connection = service.sender()
                deferToThread(slow_lookup, msg).addCallback(connection.send)
            else:
                work.put((service.sender(), msg))

    server = start_server(create_server(0, Handler(), interface="127.0.0.1"), True)
    slow_seen, ping_seen = Events(), Events()
    slow = start_client("127.0.0.1", create_client(server.port(), slow_seen), True)
    ping = start_client("127.0.0.1", create_client(server.port(), ping_seen), True)
    slow.send(b"look it up")
    started.wait(10)  # the slow work is under way before the ping is sent
    ping.send(b"ping")
    answered = ping_seen.cond
    with answered:
        pong_first = answered.wait_for(lambda: ping_seen.received(), 3.0)
    release.set()
    slow_seen.wait(lambda: slow_seen.received(), "the slow answer")
    ping_seen.wait(lambda: ping_seen.received(), "pong")
    result(pong_before_release=bool(pong_first), slow=slow_seen.received()[0].decode())
"""


@pytest.mark.parametrize("pattern", ["thread", "deferToThread"])
def test_slow_work_handed_to_a_thread_leaves_other_links_moving(pattern):
    code = script(f"PATTERN = {pattern!r}\n" + textwrap.dedent(BLOCKING_PATTERNS))
    assert run_python(code, timeout=60).result() == {"pong_before_release": True, "slow": "slow done"}


def test_control_a_blocking_callback_stalls_every_link():
    code = script("PATTERN = 'blocking'\n" + textwrap.dedent(BLOCKING_PATTERNS))
    assert run_python(code, timeout=60).result() == {"pong_before_release": False, "slow": "slow done"}
