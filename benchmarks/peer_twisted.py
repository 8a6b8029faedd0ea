"""Benchmark peers in plain Twisted: ``LineReceiver`` with ``delimiter = b";"``, the reactor in the main thread.

This is what a Twisted programmer writes without leads_twisted, so it speaks the same wire format. With the
reactor in the main thread there is no user thread to hand sends over from: senders run in the reactor,
writing one batch of messages per reactor turn so that reading and writing interleave.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import benchlib
from benchlib import StreamCheck, emit
from twisted.internet.protocol import ClientFactory, Factory
from twisted.protocols.basic import LineReceiver

#: The global reactor, installed by ``install_reactor`` (after any fork: an epoll set must not be shared).
reactor: Any = None
LOOPBACK = "127.0.0.1"
#: Messages a sender writes per reactor turn.
BATCH = 1000


class Line(LineReceiver):
    """A LEADS-framed line protocol; each role subclasses it with its own ``lineReceived``."""

    delimiter = benchlib.SEPARATOR
    MAX_LENGTH = 8 * 1024 * 1024

    def lineReceived(self, line: bytes) -> None:
        """Ignore the line unless a role says otherwise."""


def install_reactor() -> None:
    global reactor
    from twisted.internet import reactor as installed

    reactor = installed


def listen(protocol: type[Line]) -> int:
    factory = Factory.forProtocol(protocol)
    factory.noisy = False
    return reactor.listenTCP(0, factory, backlog=4096, interface=LOOPBACK).getHost().port


def connect(port: int, protocol: type[Line]) -> None:
    factory = ClientFactory.forProtocol(protocol)
    factory.noisy = False
    reactor.connectTCP(LOOPBACK, port, factory)


def stop_reactor() -> None:
    if reactor.running:
        reactor.stop()


#: ``time.process_time()`` when the measured work began, for the CPU report made on stopping.
cpu_mark: list[float] = []


def run_until_stopped(args: argparse.Namespace) -> None:
    """Run the reactor here until the orchestrator says stop or the process's time is up."""

    def stop() -> None:
        if cpu_mark:
            emit("cpu", seconds=time.process_time() - cpu_mark[0])
        reactor.callFromThread(stop_reactor)

    benchlib.on_stop(stop, args.timeout)
    reactor.run(installSignalHandlers=False)
    benchlib.finish()


def pump(write: Callable[[bytes], None], msgs: list[bytes], start: int = 0) -> None:
    """Write ``msgs`` from ``start`` on, one batch per reactor turn."""
    end = min(len(msgs), start + BATCH)
    for index in range(start, end):
        write(msgs[index])
    if end < len(msgs):
        reactor.callLater(0, pump, write, msgs, end)


class _ReactorEvent:
    """Stands in for ``threading.Event`` in ``StreamCheck``: completion is acted on in the reactor at once."""

    def __init__(self, action: Callable[[], None]) -> None:
        self._action = action
        self._set = False

    def set(self) -> None:
        if not self._set:
            self._set = True
            reactor.callLater(0, self._action)

    def is_set(self) -> bool:
        return self._set


def watch_stream(check: StreamCheck, args: argparse.Namespace, report: Callable[[], None]) -> None:
    """Call ``report`` once, in the reactor, when ``check`` completes, times out, or goes quiet."""
    deadline = time.monotonic() + args.timeout
    reported = False

    def report_once() -> None:
        nonlocal reported
        if not reported:
            reported = True
            report()

    def watch(seen: int, since: float) -> None:
        quiet, seen, since = check.quiet_for(args.idle, seen, since)
        if check.done.is_set() or quiet or time.monotonic() >= deadline:
            report_once()
        else:
            reactor.callLater(0.05, watch, seen, since)

    check.done = _ReactorEvent(report_once)
    reactor.callLater(0.05, watch, 0, time.monotonic())


def oneway_server(args: argparse.Namespace) -> None:
    check = StreamCheck(args.count, args.size)
    add = check.add

    class Counting(Line):
        def lineReceived(self, line: bytes) -> None:
            add(line)

    def report() -> None:
        emit("result", **check.report())
        stop_reactor()

    emit("ready", port=listen(Counting))
    watch_stream(check, args, report)
    run_until_stopped(args)


def oneway_client(args: argparse.Namespace) -> None:
    msgs = benchlib.payloads(args.count, args.size)

    class Sender(Line):
        def connectionMade(self) -> None:
            emit("sending", started=time.monotonic())
            cpu_mark.append(time.process_time())
            pump(self.sendLine, msgs)

    connect(args.port, Sender)
    run_until_stopped(args)


def echo_server(args: argparse.Namespace) -> None:
    connected = 0

    class Echo(Line):
        def connectionMade(self) -> None:
            nonlocal connected
            connected += 1
            if connected == args.connections:
                emit("connected", count=connected, at=time.monotonic())

        def lineReceived(self, line: bytes) -> None:
            self.sendLine(line)

    emit("ready", port=listen(Echo))
    cpu_mark.append(time.process_time())
    run_until_stopped(args)


def ping_client(args: argparse.Namespace) -> None:
    total = args.warmup + args.count
    msgs = benchlib.payloads(total, args.size)
    clock = time.perf_counter_ns
    rtts: list[int] = []
    index = sent_at = wrong = 0
    cpu = 0.0

    class Volley(Line):
        def connectionMade(self) -> None:
            nonlocal sent_at, cpu
            cpu = time.process_time()
            sent_at = clock()
            self.sendLine(msgs[0])

        def lineReceived(self, line: bytes) -> None:
            nonlocal index, sent_at, wrong
            elapsed = clock() - sent_at
            if line != msgs[index]:
                wrong += 1
            if index >= args.warmup:
                rtts.append(elapsed)
            index += 1
            if index == total:
                summary = benchlib.latency_summary(rtts, args.count, wrong)
                emit("result", cpu=time.process_time() - cpu, round_trips=total, **summary)
                stop_reactor()
                return
            sent_at = clock()
            self.sendLine(msgs[index])

    connect(args.port, Volley)
    run_until_stopped(args)


def fanout_server(args: argparse.Namespace) -> None:
    msgs = benchlib.payloads(args.count, args.size)
    clients: list[Line] = []

    def broadcast(msg: bytes) -> None:
        for proto in clients:
            proto.sendLine(msg)

    class Gather(Line):
        def lineReceived(self, line: bytes) -> None:
            if line == b"ready":
                clients.append(self)
                if len(clients) == args.clients:
                    emit("sending", started=time.monotonic())
                    cpu_mark.append(time.process_time())
                    pump(broadcast, msgs)

    emit("ready", port=listen(Gather))
    run_until_stopped(args)


def fanout_clients(args: argparse.Namespace) -> None:
    def one_client(index: int) -> None:
        check = StreamCheck(args.count, args.size)
        add = check.add

        class Counting(Line):
            def connectionMade(self) -> None:
                self.sendLine(b"ready")

            def lineReceived(self, line: bytes) -> None:
                add(line)

        def report() -> None:
            emit("result", client=index, **check.report())
            stop_reactor()

        install_reactor()
        connect(args.port, Counting)
        watch_stream(check, args, report)
        reactor.run(installSignalHandlers=False)

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
    args = benchlib.peer_arguments(__doc__, ROLES, mode="callback").parse_args()
    if benchlib.start_peer(args, forking_roles=("fanout-clients",)):  # that one installs a reactor per child
        install_reactor()
    ROLES[args.role](args)


if __name__ == "__main__":
    main()
