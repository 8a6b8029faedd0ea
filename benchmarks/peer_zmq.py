"""Benchmark peers in pyzmq, what a user might pick instead: PUSH/PULL, REQ/REP and PUB/SUB over loopback TCP.

Each is written the plain way for its pattern, with two settings a user who must not lose messages would
choose: no high-water mark on PUB/SUB (the default of 1,000 drops messages to a slow subscriber), and a
handshake before publishing, since SUB sockets miss what is published before they have subscribed.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import benchlib
import zmq
from benchlib import StreamCheck, emit

LOOPBACK = "127.0.0.1"
#: How long a blocking receive waits before looking at the clock, in milliseconds.
TICK_MS = 50


def bind(sock: zmq.Socket) -> int:
    sock.bind(f"tcp://{LOOPBACK}:*")
    endpoint = sock.getsockopt(zmq.LAST_ENDPOINT).decode()
    return int(endpoint.rsplit(":", 1)[1])


def endpoint(port: int) -> str:
    return f"tcp://{LOOPBACK}:{port}"


def receive_stream(sock: zmq.Socket, check: StreamCheck, args: argparse.Namespace) -> None:
    """Receive into ``check`` until complete, past the deadline, or silent for ``--idle`` seconds."""
    sock.setsockopt(zmq.RCVTIMEO, TICK_MS)
    recv = sock.recv
    add = check.add
    deadline = time.monotonic() + args.timeout
    seen, since = check.count, time.monotonic()
    while not check.complete:
        try:
            add(recv())
        except zmq.Again:
            quiet, seen, since = check.quiet_for(args.idle, seen, since)
            if quiet or time.monotonic() >= deadline:
                return


def oneway_server(args: argparse.Namespace) -> None:
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    emit("ready", port=bind(pull))
    check = StreamCheck(args.count, args.size)
    receive_stream(pull, check, args)
    emit("result", **check.report())
    benchlib.finish()


def oneway_client(args: argparse.Namespace) -> None:
    msgs = benchlib.payloads(args.count, args.size)
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.connect(endpoint(args.port))
    send = push.send
    started, cpu = time.monotonic(), time.process_time()
    for msg in msgs:
        send(msg)
    emit("sent", started=started, ended=time.monotonic())
    benchlib.stop_reporting_cpu(args.timeout, cpu)
    benchlib.finish()


def echo_server(args: argparse.Namespace) -> None:
    """REP: answer every request; with ``--connections`` above 1, count accepted links through a monitor."""
    ctx = zmq.Context()
    ctx.set(zmq.MAX_SOCKETS, 64)
    rep = ctx.socket(zmq.REP)
    emit("ready", port=bind(rep))
    stopping = False
    cpu = time.process_time()

    def stop() -> None:
        nonlocal stopping
        emit("cpu", seconds=time.process_time() - cpu)
        stopping = True

    benchlib.on_stop(stop, args.timeout)
    if args.connections <= 1:
        rep.setsockopt(zmq.RCVTIMEO, TICK_MS)
        while not stopping:
            try:
                rep.send(rep.recv())
            except zmq.Again:
                continue
        benchlib.finish()
    monitor = rep.get_monitor_socket(zmq.EVENT_ACCEPTED)
    poller = zmq.Poller()
    poller.register(rep, zmq.POLLIN)
    poller.register(monitor, zmq.POLLIN)
    accepted = 0
    while not stopping:
        for sock, _ in poller.poll(TICK_MS):
            if sock is monitor:
                monitor.recv_multipart()
                accepted += 1
                if accepted == args.connections:
                    emit("connected", count=accepted, at=time.monotonic())
            else:
                rep.send(rep.recv())
    benchlib.finish()


def ping_client(args: argparse.Namespace) -> None:
    total = args.warmup + args.count
    msgs = benchlib.payloads(total, args.size)
    ctx = zmq.Context()
    req = ctx.socket(zmq.REQ)
    req.setsockopt(zmq.RCVTIMEO, int(args.idle * 1000))
    req.connect(endpoint(args.port))
    clock = time.perf_counter_ns
    rtts: list[int] = []
    wrong = 0
    cpu = time.process_time()
    for index in range(total):
        msg = msgs[index]
        started = clock()
        req.send(msg)
        try:
            answer = req.recv()
        except zmq.Again:
            break
        elapsed = clock() - started
        if answer != msg:
            wrong += 1
        if index >= args.warmup:
            rtts.append(elapsed)
    summary = benchlib.latency_summary(rtts, args.count, wrong)
    emit("result", cpu=time.process_time() - cpu, round_trips=args.warmup + len(rtts), **summary)
    benchlib.finish()


def fanout_server(args: argparse.Namespace) -> None:
    """PUB from the main thread, after every subscriber has acknowledged a probe on a PULL socket."""
    msgs = benchlib.payloads(args.count, args.size)
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.SNDHWM, 0)
    sync = ctx.socket(zmq.PULL)
    emit("ready", port=bind(pub), sync_port=bind(sync))
    ready = 0
    deadline = time.monotonic() + args.timeout
    while ready < args.clients:
        if time.monotonic() >= deadline:
            emit("error", reason=f"only {ready} of {args.clients} subscribers became ready")
            benchlib.finish(1)
        pub.send(b"probe")
        while sync.poll(TICK_MS):
            sync.recv()
            ready += 1
    send = pub.send
    started, cpu = time.monotonic(), time.process_time()
    for msg in msgs:
        send(msg)
    emit("sent", started=started, ended=time.monotonic())
    benchlib.stop_reporting_cpu(args.timeout, cpu)
    benchlib.finish()


def fanout_clients(args: argparse.Namespace) -> None:
    def one_client(index: int) -> None:
        ctx = zmq.Context()
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.RCVHWM, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(endpoint(args.port))
        push = ctx.socket(zmq.PUSH)
        push.connect(endpoint(args.sync_port))
        sub.setsockopt(zmq.RCVTIMEO, int(args.timeout * 1000))
        first = sub.recv()
        push.send(b"ready")
        while first == b"probe":
            first = sub.recv()
        check = StreamCheck(args.count, args.size)
        check.add(first)
        receive_stream(sub, check, args)
        emit("result", client=index, **check.report())

    failed = benchlib.fork_group(args.clients, one_client, args.timeout + 10)
    emit("group", failed=failed)
    benchlib.finish()


def scale_clients(args: argparse.Namespace) -> None:
    """Open ``--connections`` REQ sockets across ``--procs`` processes, one request each, and hold them."""
    shares = benchlib.split(args.connections, args.procs)

    def one_group(index: int) -> None:
        benchlib.raise_fd_limit()
        count = shares[index]
        ctx = zmq.Context()
        ctx.set(zmq.MAX_SOCKETS, count + 64)
        started = time.monotonic()
        socks: list[Any] = []
        for _ in range(count):
            req = ctx.socket(zmq.REQ)
            req.setsockopt(zmq.LINGER, 0)
            req.connect(endpoint(args.port))
            socks.append(req)
        for number, req in enumerate(socks):
            req.send(benchlib.payload(number, args.size))
        deadline = time.monotonic() + args.timeout
        replied = 0
        for number, req in enumerate(socks):
            left = int((deadline - time.monotonic()) * 1000)
            if left <= 0:
                break
            req.setsockopt(zmq.RCVTIMEO, left)
            try:
                replied += int(req.recv() == benchlib.payload(number, args.size))
            except zmq.Again:
                break
        emit("result", group=index, opened=count, replied=replied, started=started, done=time.monotonic())
        benchlib.wait_for_stop(args.timeout)
        for req in socks:
            req.close()
        ctx.term()

    failed = benchlib.fork_group(args.procs, one_group, args.timeout * 2 + 10)
    emit("group", failed=failed)
    benchlib.finish()


ROLES = {
    "oneway-server": oneway_server,
    "oneway-client": oneway_client,
    "echo-server": echo_server,
    "ping-client": ping_client,
    "fanout-server": fanout_server,
    "fanout-clients": fanout_clients,
    "scale-clients": scale_clients,
}


def main() -> None:
    parser = benchlib.peer_arguments(__doc__, ROLES)
    parser.add_argument("--sync-port", type=int, default=0)
    parser.add_argument("--procs", type=int, default=1)
    args = parser.parse_args()
    benchlib.start_peer(args, forking_roles=("fanout-clients", "scale-clients"))
    ROLES[args.role](args)


if __name__ == "__main__":
    main()
