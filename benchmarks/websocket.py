"""Browsers on the relay: fan-out to WebSocket clients beside fan-out to TCP clients, and how many WebSocket
clients one relay holds, with its resident memory.

The relay (a ``Server`` in relay mode with a ``WebSocketGate``) runs in a process of its own; this process is the
load: one TCP sender and the receivers, all in one reactor. Each fan-out run sends ``--count`` messages of
``--size`` bytes from the sender; every receiver must get them all, intact and in order (checked on one receiver
of each kind once the clock has stopped). The runs of the two kinds alternate, ``--reps`` times; the table gives
medians and the ratio WebSocket / TCP of deliveries per second, measured in the same run.

    python benchmarks/websocket.py            # 50 receivers, 1,000 WebSocket clients held; a minute or two
    python benchmarks/websocket.py --quick    # smoke run for CI: small sizes, exit status 0 only if intact
    python benchmarks/websocket.py --only ws --profile ws.prof   # the relay's cProfile, WebSocket fan-out only
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import benchlib

MARK = "@@ports "


def serve(profile: str | None = None) -> None:
    """The relay process: print the ports, then run until stdin closes (the parent's end); with ``profile``,
    under cProfile, its statistics written there at the end."""
    benchlib.raise_fd_limit()
    benchlib.die_with_parent()
    benchlib.exit_after(600)
    from twisted.internet import reactor, stdio
    from twisted.internet.protocol import Protocol

    from leads_twisted.comm import Server
    from leads_twisted.comm.reactor_thread import ReactorRunner
    from leads_twisted.daemon.modes import Relay
    from leads_twisted.websocket import WebSocketGate

    runner = ReactorRunner(reactor)
    # Receivers read as fast as they can; a deep bound keeps a burst from counting as a slow peer.
    server = Server(0, Relay(), interface="127.0.0.1", runner=runner, max_buffered=512 * 1024 * 1024)
    gate = WebSocketGate(server, "tcp:0:interface=127.0.0.1:backlog=4096", runner=runner)

    class Parent(Protocol):
        def connectionLost(self, reason: Any = None) -> None:
            reactor.stop()

    async def start() -> None:
        await server.start_in_reactor()
        await gate.listen()
        ws_port = gate.listening_ports()[0].getHost().port
        sys.stdout.write(MARK + json.dumps({"tcp": server.port(), "ws": ws_port}) + "\n")
        sys.stdout.flush()

    from twisted.internet.defer import ensureDeferred

    stdio.StandardIO(Parent())
    reactor.callWhenRunning(lambda: ensureDeferred(start()))
    if profile is None:
        reactor.run()
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.runcall(reactor.run)
    profiler.dump_stats(profile)


def run_load(args: argparse.Namespace) -> int:
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred, DeferredList, ensureDeferred
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
    from twisted.internet.protocol import Protocol

    benchlib.raise_fd_limit()

    def start_relay(profile: str | None) -> tuple[subprocess.Popen[bytes], dict[str, int]]:
        command = [sys.executable, os.path.abspath(__file__), "--serve"]
        if profile:
            command += ["--profile", profile]
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = process.stdout.readline().decode()  # type: ignore[union-attr]
        if not line.startswith(MARK):
            raise RuntimeError(f"the relay did not start: {line!r}")
        return process, json.loads(line[len(MARK) :])

    def stop_relay(process: subprocess.Popen[bytes]) -> None:
        process.stdin.close()  # type: ignore[union-attr]
        process.wait(30)

    relay, ports = start_relay(args.profile)
    size, count = args.size, args.count
    messages = benchlib.payloads(count, size)
    stream = b"".join(m + b";" for m in messages)
    ws_frame = 2 + size  # every payload is under 126 bytes: a two-byte header, never masked from a server
    assert size < 126

    class Receiver(Protocol):
        """Counts whole messages by bytes (all are one size); keeps the bytes if asked, for the check."""

        def __init__(self, websocket: bool, keep: bool) -> None:
            self.websocket, self.keep = websocket, keep
            self.upgraded = not websocket
            self.data = bytearray()
            self.bytes = 0
            self.frame = ws_frame if websocket else size + 1
            self.goal = 0
            self.done: Deferred[None] | None = None
            self.ready: Deferred[None] = Deferred()
            self.head = b""

        def connectionMade(self) -> None:
            if self.websocket:
                key = base64.b64encode(os.urandom(16)).decode()
                self.transport.write(
                    f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
                )
            else:
                self.ready.callback(None)

        def expect(self, messages: int) -> Deferred[None]:
            self.bytes, self.data = 0, bytearray()
            self.goal = messages * self.frame
            self.done = Deferred()
            return self.done

        def dataReceived(self, data: bytes) -> None:
            if not self.upgraded:
                self.head += data
                if b"\r\n\r\n" not in self.head:
                    return
                status, _, rest = self.head.partition(b"\r\n\r\n")
                assert b" 101 " in status.split(b"\r\n")[0], status
                self.upgraded = True
                self.ready.callback(None)
                data = rest
                if not data:
                    return
            self.bytes += len(data)
            if self.keep:
                self.data += data
            if self.done is not None and self.bytes >= self.goal:
                done, self.done = self.done, None
                done.callback(None)

        def messages(self) -> list[bytes]:
            if not self.websocket:
                return bytes(self.data).split(b";")[:-1]
            out, view = [], bytes(self.data)
            for at in range(0, len(view), ws_frame):
                assert view[at] == 0x81 and view[at + 1] == size, view[at : at + 2]
                out.append(view[at + 2 : at + ws_frame])
            return out

    async def connect(port: int, protocol: Protocol) -> Protocol:
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=30)
        return await connectProtocol(endpoint, protocol)

    async def receivers(websocket: bool, how_many: int, keep_first: bool) -> list[Receiver]:
        made = [Receiver(websocket, keep_first and index == 0) for index in range(how_many)]
        port = ports["ws" if websocket else "tcp"]
        for chunk in range(0, how_many, 200):  # in steps, within the listen backlog
            group = made[chunk : chunk + 200]
            await DeferredList([ensureDeferred(connect(port, r)) for r in group], fireOnOneErrback=True)
            await DeferredList([r.ready for r in group], fireOnOneErrback=True)
        return made

    async def joined(sender: Protocol, group: list[Receiver]) -> None:
        """Every receiver is a link of the relay once a probe message from the sender reaches all of them."""
        waits = [r.expect(1) for r in group]
        sender.transport.write(messages[0] + b";")
        await DeferredList(waits, fireOnOneErrback=True)

    def rss() -> int:
        return benchlib.proc_status(relay.pid)["rss_kib"]

    async def fan_out(websocket: bool) -> float:
        group = await receivers(websocket, args.receivers, keep_first=True)
        sender = await connect(ports["tcp"], Receiver(False, False))
        await joined(sender, group)
        waits = [r.expect(count) for r in group]
        started = time.perf_counter()
        sender.transport.write(stream)
        await DeferredList(waits, fireOnOneErrback=True).addTimeout(args.timeout, reactor)
        seconds = time.perf_counter() - started
        got = group[0].messages()
        if got != messages:
            raise AssertionError(f"{'WebSocket' if websocket else 'TCP'} receiver: messages lost or out of order")
        for protocol in [*group, sender]:
            protocol.transport.abortConnection()
        return args.receivers * count / seconds

    async def hold(websocket: bool) -> dict[str, float]:
        before = rss()
        started = time.perf_counter()
        group = await receivers(websocket, args.clients, keep_first=False)
        sender = await connect(ports["tcp"], Receiver(False, False))
        await joined(sender, group)
        seconds = time.perf_counter() - started
        after = rss()
        for protocol in [*group, sender]:
            protocol.transport.abortConnection()
        return {"seconds": seconds, "rss_before_kib": before, "rss_after_kib": after}

    results: dict[str, Any] = {"ws": [], "tcp": []}

    async def main() -> None:
        kinds = [kind for kind in (True, False) if args.only in (None, "ws" if kind else "tcp")]
        for _ in range(args.reps):
            for websocket in kinds:
                results["ws" if websocket else "tcp"].append(await fan_out(websocket))
        if args.only:
            return
        # Each kind is held by a relay of its own, fresh: memory the fan-outs freed would otherwise be reused
        # and hide what the clients cost.
        nonlocal relay
        for websocket in (True, False):
            stop_relay(relay)
            relay, fresh = start_relay(None)
            ports.update(fresh)
            results["hold_ws" if websocket else "hold_tcp"] = await hold(websocket)

    outcome: list[Any] = []

    def finished(result: Any) -> None:
        outcome.append(result)
        reactor.stop()

    reactor.callWhenRunning(lambda: ensureDeferred(main()).addBoth(finished))
    reactor.run()
    stop_relay(relay)
    if outcome and not isinstance(outcome[0], type(None)):
        outcome[0].printTraceback()
        return 1
    report(args, results)
    return 0


def report(args: argparse.Namespace, results: dict[str, Any]) -> None:
    if args.only:
        rate = statistics.median(results[args.only])
        print(f"fan-out to {args.receivers} {args.only} receivers alone: {rate:,.0f} deliveries/s")
        return
    ws, tcp = statistics.median(results["ws"]), statistics.median(results["tcp"])
    print(f"fan-out: 1 sender -> {args.receivers} receivers, {args.count} messages of {args.size} B, {args.reps} runs")
    print(f"  {'clients':<12}{'deliveries/s':>16}")
    print(f"  {'TCP':<12}{tcp:>16,.0f}")
    print(f"  {'WebSocket':<12}{ws:>16,.0f}   {ws / tcp:.0%} of TCP (goal: at least 50%)")
    print(f"held at once: {args.clients} clients of each kind, each kind by a fresh relay: its resident memory")
    for kind, key in (("WebSocket", "hold_ws"), ("TCP", "hold_tcp")):
        held = results[key]
        grown = held["rss_after_kib"] - held["rss_before_kib"]
        print(
            f"  {kind:<12}{held['rss_after_kib'] / 1024:>8.1f} MiB RSS  (+{grown / 1024:.1f} MiB, "
            f"{grown / args.clients:.1f} KiB per client; all joined in {held['seconds']:.2f} s)"
        )
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"args": vars(args), **results}, out, indent=2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, one run")
    parser.add_argument("--receivers", type=int, default=50)
    parser.add_argument("--count", type=int, default=20_000, help="messages per fan-out run")
    parser.add_argument("--size", type=int, default=64, help="bytes per message (under 126)")
    parser.add_argument("--clients", type=int, default=1000, help="WebSocket clients held at once")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one fan-out run may take")
    parser.add_argument("--json", help="write every run's numbers here")
    parser.add_argument("--profile", help="run the relay under cProfile and write its statistics here")
    parser.add_argument("--only", choices=("ws", "tcp"), help="fan out to this kind of client alone (profiling)")
    args = parser.parse_args()
    if args.serve:
        serve(args.profile)
        return 0
    if args.quick:
        args.receivers, args.count, args.clients, args.reps = 10, 300, 100, 1
    benchlib.exit_after(900)
    return run_load(args)


if __name__ == "__main__":
    sys.exit(main())
