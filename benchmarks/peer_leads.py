"""Benchmark peers written against the public LEADS API, run for leads_twisted or for the original leads 0.9.7.

Both flavours are driven through ``create_server``/``start_server``/``create_client``/``start_client``,
``Client.send``, ``Server.broadcast`` and ``Callback.on_receive``. Where the original has no equivalent, the
smallest shim is used and said so: it binds all interfaces, so its listening socket is held to loopback, and it
has no ``sender()``, so its server learns which connection a message came from through the thread that stages
that connection (the original receives each connection in its own thread).
"""

from __future__ import annotations

import argparse
import queue
import threading
import time
from types import SimpleNamespace
from typing import Any

import benchlib
from benchlib import StreamCheck, emit

LOOPBACK = "127.0.0.1"


class _LoopbackSocket:
    """Wraps the original server's socket so that its ``bind(("0.0.0.0", port))`` binds loopback only."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock

    def bind(self, address: tuple[str, int]) -> None:
        self._sock.bind((LOOPBACK, address[1]))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class Api:
    """One flavour of the LEADS API, with what the benchmark needs on top of it."""

    def __init__(self, flavor: str) -> None:
        # ``twisted-queued``: this library with ``direct_writes=False``, every byte through Twisted's buffer.
        self.flavor = "twisted" if flavor.startswith("twisted") else flavor
        self.options: dict[str, Any] = {"direct_writes": False} if flavor == "twisted-queued" else {}
        if self.flavor == "twisted":
            import leads_twisted.comm as comm
        else:
            import leads.comm as comm  # type: ignore[no-redef]
        self.comm: Any = comm
        self.Callback: Any = comm.Callback
        self._staged = threading.local()

    def start_server(self, callback: Any, timeout: float = 30.0) -> tuple[Any, int]:
        """Create and start a loopback server on a free port; return it and its port once it listens."""
        comm = self.comm
        if self.flavor == "twisted":
            server = comm.create_server(0, callback, interface=LOOPBACK, **self.options)
            comm.start_server(server, True)
            return server, server.port()
        listening = threading.Event()
        chained_initialize = callback.on_initialize

        def on_initialize(service: Any) -> None:
            chained_initialize(service)
            listening.set()

        callback.on_initialize = on_initialize
        server = comm.create_server(0, callback)
        server._socket = _LoopbackSocket(server._socket)
        staged = self._staged
        stage = type(server)._stage

        def stage_recording_sender(connection: Any) -> None:
            staged.connection = connection
            stage(server, connection)

        server._stage = stage_recording_sender
        comm.start_server(server, True)
        if not listening.wait(timeout):
            raise TimeoutError("the original server did not start listening")
        return server, server._socket.getsockname()[1]

    def start_client(self, port: int, callback: Any, timeout: float = 30.0) -> Any:
        """Create a client, connect it to the loopback server, and return it once connected."""
        comm = self.comm
        if self.flavor == "twisted":
            return comm.start_client(LOOPBACK, comm.create_client(port, callback, **self.options), True)
        connected = threading.Event()
        chained_connect = callback.on_connect

        def on_connect(service: Any, connection: Any) -> None:
            chained_connect(service, connection)
            connected.set()

        callback.on_connect = on_connect
        client = comm.start_client(LOOPBACK, comm.create_client(port, callback), True)
        if not connected.wait(timeout):
            raise TimeoutError("the original client did not connect")
        return client

    def reply(self, service: Any, msg: bytes) -> None:
        """Answer the peer whose message is being delivered, from inside ``on_receive``."""
        if self.flavor == "twisted":
            service.reply(msg)
        else:
            self._staged.connection.send(msg)


def oneway_server(api: Api, args: argparse.Namespace) -> None:
    """Count, length-check and checksum every message in ``on_receive``; report the receive rate."""
    check = StreamCheck(args.count, args.size)
    add = check.add

    class Counting(api.Callback):  # type: ignore[name-defined,misc]
        def on_receive(self, service: Any, msg: bytes) -> None:
            add(msg)

    _server, port = api.start_server(Counting())
    emit("ready", port=port)
    check.wait(time.monotonic() + args.timeout, args.idle)
    emit("result", **check.report())
    benchlib.finish()


def oneway_client(api: Api, args: argparse.Namespace) -> None:
    """Send every message from the main thread through ``Client.send``, then hold until told to stop."""
    msgs = benchlib.payloads(args.count, args.size)
    client = api.start_client(args.port, api.Callback())
    send = client.send
    started, cpu = time.monotonic(), time.process_time()
    for msg in msgs:
        send(msg)
    emit("sent", started=started, ended=time.monotonic())
    benchlib.stop_reporting_cpu(args.timeout, cpu)
    client.close()
    benchlib.finish()


def echo_server(api: Api, args: argparse.Namespace) -> None:
    """Reply to every message from ``on_receive``; report when ``--connections`` peers are connected."""
    reply = api.reply
    lock = threading.Lock()
    state = SimpleNamespace(connected=0)

    class Echo(api.Callback):  # type: ignore[name-defined,misc]
        def on_connect(self, service: Any, connection: Any) -> None:
            with lock:
                state.connected += 1
                if state.connected == args.connections:
                    emit("connected", count=state.connected, at=time.monotonic())

        def on_receive(self, service: Any, msg: bytes) -> None:
            reply(service, msg)

    _server, port = api.start_server(Echo())
    emit("ready", port=port)
    benchlib.stop_reporting_cpu(args.timeout, time.process_time())
    benchlib.finish()


def ping_client(api: Api, args: argparse.Namespace) -> None:
    """Time round trips; ``--mode thread`` sends from the main thread, ``callback`` from ``on_receive``."""
    total = args.warmup + args.count
    msgs = benchlib.payloads(total, args.size)
    clock = time.perf_counter_ns
    rtts: list[int] = []
    state = SimpleNamespace(index=0, sent_at=0, wrong=0, cpu=0.0)
    if args.mode == "thread":
        replies: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        put = replies.put

        class Collect(api.Callback):  # type: ignore[name-defined,misc]
            def on_receive(self, service: Any, msg: bytes) -> None:
                put(msg)

        client = api.start_client(args.port, Collect())
        send = client.send
        state.cpu = time.process_time()
        for index in range(total):
            msg = msgs[index]
            started = clock()
            send(msg)
            try:
                answer = replies.get(timeout=args.idle)
            except queue.Empty:
                break
            elapsed = clock() - started
            if answer != msg:
                state.wrong += 1
            if index >= args.warmup:
                rtts.append(elapsed)
    else:
        finished = threading.Event()

        class Volley(api.Callback):  # type: ignore[name-defined,misc]
            def on_receive(self, service: Any, msg: bytes) -> None:
                elapsed = clock() - state.sent_at
                index = state.index
                if msg != msgs[index]:
                    state.wrong += 1
                if index >= args.warmup:
                    rtts.append(elapsed)
                index += 1
                state.index = index
                if index == total:
                    finished.set()
                    return
                state.sent_at = clock()
                service.send(msgs[index])

        client = api.start_client(args.port, Volley())
        state.cpu = time.process_time()
        state.sent_at = clock()
        client.send(msgs[0])
        finished.wait(args.timeout)
    cpu = time.process_time() - state.cpu
    summary = benchlib.latency_summary(rtts, args.count, state.wrong)
    emit("result", cpu=cpu, round_trips=args.warmup + len(rtts), **summary)
    client.close()
    benchlib.finish()


def fanout_server(api: Api, args: argparse.Namespace) -> None:
    """Wait for ``--clients`` ready clients, then broadcast every message from the main (user) thread."""
    msgs = benchlib.payloads(args.count, args.size)
    lock = threading.Lock()
    ready = threading.Event()
    state = SimpleNamespace(ready=0)

    class Gather(api.Callback):  # type: ignore[name-defined,misc]
        def on_receive(self, service: Any, msg: bytes) -> None:
            if msg == b"ready":
                with lock:
                    state.ready += 1
                    if state.ready == args.clients:
                        ready.set()

    server, port = api.start_server(Gather())
    emit("ready", port=port)
    if not ready.wait(args.timeout):
        emit("error", reason=f"only {state.ready} of {args.clients} clients became ready")
        benchlib.finish(1)
    broadcast = server.broadcast
    started, cpu = time.monotonic(), time.process_time()
    for msg in msgs:
        broadcast(msg)
    emit("sent", started=started, ended=time.monotonic())
    benchlib.stop_reporting_cpu(args.timeout, cpu)
    benchlib.finish()


def fanout_clients(api: Api, args: argparse.Namespace) -> None:
    """Fork one process per client; each connects, says ready, and checks the broadcast stream it receives."""

    def one_client(index: int) -> None:
        check = StreamCheck(args.count, args.size)
        add = check.add

        class Counting(api.Callback):  # type: ignore[name-defined,misc]
            def on_receive(self, service: Any, msg: bytes) -> None:
                add(msg)

        client = api.start_client(args.port, Counting())
        client.send(b"ready")
        check.wait(time.monotonic() + args.timeout, args.idle)
        emit("result", client=index, **check.report())

    failed = benchlib.fork_group(args.clients, one_client, args.timeout + 10)
    emit("group", failed=failed)
    benchlib.finish()


ROLES = {
    "oneway-server": oneway_server,
    "oneway-client": oneway_client,
    "echo-server": echo_server,
    "ping-client": ping_client,
    "fanout-server": fanout_server,
    "fanout-clients": fanout_clients,
}


def main() -> None:
    parser = benchlib.peer_arguments(__doc__, ROLES)
    parser.add_argument("--flavor", choices=("twisted", "twisted-queued", "original"), default="twisted")
    args = parser.parse_args()
    benchlib.start_peer(args, forking_roles=("fanout-clients",))
    ROLES[args.role](Api(args.flavor), args)


if __name__ == "__main__":
    main()
