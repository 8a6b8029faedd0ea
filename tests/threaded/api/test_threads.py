"""Sending from many threads through the threaded API: nothing lost, nothing doubled, each thread in order."""

from __future__ import annotations

from support import run_python

from .prelude import script


def test_eight_threads_times_5000_client_sends():
    code = script(
        """
        watchdog(60)
        from leads_twisted.comm import create_client, create_server, start_client, start_server

        THREADS, EACH = 8, 5000
        # Switch threads often, so that the senders really overlap however fast each one finishes.
        sys.setswitchinterval(1e-5)
        events = Events()
        server = start_server(create_server(0, events, interface="127.0.0.1"), True)
        client = start_client("127.0.0.1", create_client(server.port()), True)
        go = threading.Barrier(THREADS)
        errors = []

        def sender(t):
            try:
                go.wait(10)
                for i in range(EACH):
                    client.send(b"%d:%d" % (t, i))
            except Exception as error:
                errors.append(repr(error))

        threads = [threading.Thread(target=sender, args=(t,)) for t in range(THREADS)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        events.wait_count("receive", THREADS * EACH, timeout=30)
        seconds = time.monotonic() - started
        received = events.received()
        per_thread = {}
        for msg in received:
            t, i = msg.split(b":")
            per_thread.setdefault(int(t), []).append(int(i))
        client.close()
        server.close()
        result(
            errors=errors,
            alive=[t.name for t in threads if t.is_alive()],
            total=len(received),
            distinct=len(set(received)),
            in_order={t: seq == list(range(EACH)) for t, seq in per_thread.items()},
            interleaved=sum(1 for a, b in zip(received, received[1:]) if a.split(b":")[0] != b.split(b":")[0]),
            seconds=seconds,
            kinds=sorted(set(events.kinds())),
        )
        """
    )
    outcome = run_python(code, timeout=90).result()
    assert outcome["errors"] == []
    assert outcome["alive"] == []
    assert outcome["total"] == 40_000
    assert outcome["distinct"] == 40_000, "every message exactly once"
    assert outcome["in_order"] == {str(t): True for t in range(8)}
    # The senders really ran at the same time (else this test would prove little).
    assert outcome["interleaved"] > 8, outcome


def test_broadcast_from_a_non_reactor_thread_to_50_clients():
    code = script(
        """
        watchdog(60)
        from leads_twisted.comm import create_client, create_server, start_client, start_server

        CLIENTS, COUNT = 50, 1000
        server_events = Events()
        server = start_server(create_server(0, server_events, interface="127.0.0.1"), True)
        clients = []
        for _ in range(CLIENTS):
            events = Events()
            clients.append((start_client("127.0.0.1", create_client(server.port(), events), True), events))
        server_events.wait_count("connect", CLIENTS)
        assert server.num_connections() == CLIENTS, server.num_connections()
        sent = [b"broadcast %d " % i + b"x" * (i % 97) for i in range(COUNT)]

        def broadcaster():
            for msg in sent:
                server.broadcast(msg)

        thread = threading.Thread(target=broadcaster, name="broadcaster")
        thread.start()
        thread.join(30)
        complete = 0
        for _, events in clients:
            events.wait_count("receive", COUNT, timeout=30)
            complete += events.received() == sent
        extra = sum(len(events.received()) - COUNT for _, events in clients)
        reactor_threads = set()
        for _, events in clients:
            reactor_threads |= events.threads
        server.close()
        for client, events in clients:
            events.wait_count("disconnect", 1, timeout=10)
        result(
            alive=thread.is_alive(),
            complete=complete,
            extra=extra,
            callback_threads=sorted(reactor_threads),
            closed=sum(client.state.value == "closed" for client, _ in clients),
        )
        """
    )
    outcome = run_python(code, timeout=90).result()
    assert outcome["alive"] is False
    assert outcome["complete"] == 50, "every client got every message, in order"
    assert outcome["extra"] == 0
    # Callbacks all ran in the one reactor thread, never in the broadcasting thread or the main one.
    assert len(outcome["callback_threads"]) == 1
    assert outcome["callback_threads"][0] not in ("broadcaster", "MainThread")
    assert outcome["closed"] == 50


def test_server_to_client_and_client_to_server_from_many_threads_at_once():
    # Connections' own send from several threads, while the client sends back: both directions keep each
    # thread's order.
    code = script(
        """
        watchdog(60)
        from leads_twisted.comm import create_client, create_server, start_client, start_server

        THREADS, EACH = 4, 2000
        server_events, client_events = Events(), Events()
        server = start_server(create_server(0, server_events, interface="127.0.0.1"), True)
        client = start_client("127.0.0.1", create_client(server.port(), client_events), True)
        server_events.wait_count("connect", 1)
        [link] = server_events.of("connect")

        def run(send, tag):
            for i in range(EACH):
                send(b"%s:%d" % (tag, i))

        threads = [threading.Thread(target=run, args=(link.send, b"s%d" % t)) for t in range(THREADS)]
        threads += [threading.Thread(target=run, args=(client.send, b"c%d" % t)) for t in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        server_events.wait_count("receive", THREADS * EACH, timeout=30)
        client_events.wait_count("receive", THREADS * EACH, timeout=30)

        def ordered(messages):
            seqs = {}
            for msg in messages:
                tag, i = msg.split(b":")
                seqs.setdefault(tag, []).append(int(i))
            return len(seqs), all(seq == list(range(EACH)) for seq in seqs.values())

        result(server=ordered(server_events.received()), client=ordered(client_events.received()))
        client.close()
        server.close()
        """
    )
    outcome = run_python(code, timeout=90).result()
    assert outcome["server"] == [4, True]
    assert outcome["client"] == [4, True]


def test_one_mib_messages_both_ways_through_the_threaded_api():
    code = script(
        """
        watchdog(60)
        from leads_twisted.comm import Callback, create_client, create_server, start_client, start_server

        class Echo(Callback):
            def on_receive(self, service, msg):
                service.reply(msg[::-1])

        server = start_server(create_server(0, Echo(), interface="127.0.0.1"), True)
        events = Events()
        client = start_client("127.0.0.1", create_client(server.port(), events), True)
        sent = [bytes((seed + i) % 256 for i in range(256)).replace(b";", b"!") * 4096 for seed in (7, 8, 9)]
        for msg in sent:
            client.send(msg)
        events.wait_count("receive", 3, timeout=30)
        client.close()
        server.close()
        result(sizes=[len(m) for m in sent], echoed=events.received() == [m[::-1] for m in sent])
        """
    )
    outcome = run_python(code, timeout=60).result()
    assert outcome == {"sizes": [1024 * 1024] * 3, "echoed": True}
