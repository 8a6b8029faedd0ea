"""Run the leads_twisted benchmarks beside plain Twisted, pyzmq and (optionally) the original leads 0.9.7.

Every server and client is a process of its own on loopback; runs are repeated (3 by default) with the
implementations interleaved, and the table gives medians with ratios of leads_twisted to each reference.
Lost, split or reordered messages are shown in the table. The exit status is 0 only if leads_twisted and the
references that should be intact (plain Twisted, pyzmq) delivered every message intact and in order.

    python benchmarks/run.py                 # full run, 5 to 10 minutes on 2 cores
    python benchmarks/run.py --quick         # smoke run for CI, well under a minute
    python benchmarks/run.py --with-original # also leads==0.9.7, in a Python 3.12 venv made on first use
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import glob
import importlib.metadata
import json
import math
import os
import platform
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import benchlib

HERE = os.path.dirname(os.path.abspath(__file__))
ORIGINAL_VERSION = "0.9.7"
#: At most this many connections per load-generating process (each needs a file descriptor or two).
PER_LOADGEN_PROCESS = 5000


class StepFailed(Exception):
    """One run of one workload did not complete; the message says what was missing."""


@dataclass
class Impl:
    """An implementation under test: the interpreter and peer script that run it."""

    key: str
    title: str
    python: str
    peer: list[str]
    reference: bool = True
    available: bool = True
    missing: str = ""
    env: dict[str, str] = field(default_factory=dict)
    #: Workloads this implementation sits out.
    skips: frozenset[str] = frozenset()

    def argv(self, role: str, **options: Any) -> list[str]:
        argv = [self.python, *self.peer, role]
        for name, value in options.items():
            argv += [f"--{name.replace('_', '-')}", str(value)]
        return argv


class Child:
    """A benchmark process: its report lines are read in a thread; it is stopped politely, then killed by pid."""

    def __init__(self, name: str, argv: list[str], log_dir: str, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = os.path.join(log_dir, f"{name}-{time.monotonic_ns()}.log")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv,
            cwd=HERE,
            env={**os.environ, **(env or {})},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.children: list[int] = []
        self._reader = threading.Thread(target=self._read, name=f"read {name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace")
            if not line.startswith(benchlib.MARK):
                continue
            event = json.loads(line[len(benchlib.MARK) :])
            if event.get("event") == "children":
                self.children.extend(event["pids"])
            self.events.put(event)
        self.events.put({"event": "exit"})

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        """The next report named ``event``; raises ``StepFailed`` on timeout, exit or an error report."""
        return self.collect(event, 1, timeout)[0]

    def collect(self, event: str, count: int, timeout: float) -> list[dict[str, Any]]:
        """The next ``count`` reports named ``event``, skipping others; ``StepFailed`` if they do not come."""
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(found) < count:
            left = deadline - time.monotonic()
            try:
                got = self.events.get(timeout=max(0.0, left))
            except queue.Empty:
                raise StepFailed(
                    f"{self.name}: {len(found)} of {count} '{event}' reports within {timeout:.0f} s"
                ) from None
            if got["event"] == event:
                found.append(got)
            elif got["event"] == "error":
                raise StepFailed(f"{self.name}: {got.get('reason')}")
            elif got["event"] == "exit":
                raise StepFailed(f"{self.name} exited (code {self.proc.poll()}) before '{event}': {self.tail()}")
        return found

    def tail(self, lines: int = 3) -> str:
        with contextlib.suppress(OSError), open(self.log_path, "rb") as log:
            text = log.read()[-2000:].decode(errors="replace").strip().splitlines()
            return " | ".join(text[-lines:])
        return ""

    def stop_for_cpu(self, grace: float = 5.0) -> float | None:
        """Stop the process and return the CPU seconds it reported on the way out, if it did."""
        self.stop(grace)
        self._reader.join(2.0)
        seconds = None
        while not self.events.empty():
            event = self.events.get_nowait()
            if event["event"] == "cpu":
                seconds = event["seconds"]
        return seconds

    def stop(self, grace: float = 5.0) -> None:
        """Say stop on stdin (every process of a group sees it), wait ``grace`` s, then kill what is left."""
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.write(b"stop\n")
            self.proc.stdin.close()
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()
        self._log.close()

    def kill(self) -> None:
        """Kill this process and the processes it forked for us, each by its pid."""
        for pid in self.children:
            if _parent_of(pid) == self.proc.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


def _parent_of(pid: int) -> int:
    """The parent pid of ``pid``, or 0 if it is gone (so a reused pid is never killed)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


@dataclass
class Bench:
    """The configuration of one benchmark run and the processes it has open."""

    args: argparse.Namespace
    log_dir: str
    open_children: list[Child] = field(default_factory=list)

    def spawn(self, impl: Impl, role: str, **options: Any) -> Child:
        return self.spawn_argv(f"{impl.key}-{role}", impl.argv(role, **options), impl.env)

    def spawn_argv(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        if self.args.profile:
            argv = self._profiled(name, argv)
        child = Child(name, argv, self.log_dir, env)
        self.open_children.append(child)
        return child

    def _profiled(self, name: str, argv: list[str]) -> list[str]:
        """Run leads_twisted processes under py-spy, writing collapsed stacks to the profile folder."""
        if name.split("-", 1)[0] not in self.args.profiled or name.endswith("clients"):
            return argv
        spy = shutil.which("py-spy", path=os.path.dirname(sys.executable)) or shutil.which("py-spy")
        if spy is None:
            raise SystemExit("--profile needs py-spy: pip install py-spy")
        out = os.path.join(self.args.profile, f"{name}-{time.monotonic_ns()}.txt")
        return [spy, "record", "--format", "raw", "--rate", "500", "--threads", "--output", out, "--", *argv]

    def stop_all(self) -> None:
        for child in self.open_children:
            child.stop(grace=3.0)
        self.open_children.clear()


# The workloads: each returns one run's metrics, or raises StepFailed.


def oneway(bench: Bench, impl: Impl) -> dict[str, Any]:
    a = bench.args
    limit = 60.0 + a.oneway_count / 5000
    server = bench.spawn(impl, "oneway-server", count=a.oneway_count, size=a.size, timeout=limit)
    port = server.expect("ready", 60)["port"]
    client = bench.spawn(impl, "oneway-client", port=port, count=a.oneway_count, size=a.size, timeout=limit)
    result = server.expect("result", limit + 10)
    client_cpu = client.stop_for_cpu()
    result["server_cpu_us"] = result["cpu"] / a.oneway_count * 1e6
    result["client_cpu_us"] = client_cpu / a.oneway_count * 1e6 if client_cpu is not None else None
    window = result["last"] - result["first"]
    # Payload bytes over the message size, so that a split message is not counted twice.
    result["rate"] = result["bytes"] / a.size / window if window > 0 else 0.0
    result["intact"] = result["received"] == result["expected"] and not result["wrong_length"] and result["order_ok"]
    return result


def pingpong(bench: Bench, impl: Impl, mode: str) -> dict[str, Any]:
    a = bench.args
    limit = 60.0 + (a.ping_count + a.ping_warmup) / 500
    server = bench.spawn(impl, "echo-server", timeout=limit)
    port = server.expect("ready", 60)["port"]
    client = bench.spawn(
        impl, "ping-client", port=port, count=a.ping_count, warmup=a.ping_warmup, size=a.size, mode=mode, timeout=limit
    )
    result = client.expect("result", limit + 10)
    server_cpu = server.stop_for_cpu()
    trips = max(1, result["round_trips"])
    result["cpu_us"] = (result["cpu"] + server_cpu) / trips * 1e6 if server_cpu is not None else None
    result["intact"] = result["received"] == result["expected"] and not result["wrong"]
    return result


def fanout(bench: Bench, impl: Impl) -> dict[str, Any]:
    a = bench.args
    limit = 60.0 + a.fanout_clients * a.fanout_count / 10000
    server = bench.spawn(
        impl, "fanout-server", clients=a.fanout_clients, count=a.fanout_count, size=a.size, timeout=limit
    )
    ready = server.expect("ready", 60)
    extra = {"sync_port": ready["sync_port"]} if "sync_port" in ready else {}
    clients = bench.spawn(
        impl,
        "fanout-clients",
        port=ready["port"],
        clients=a.fanout_clients,
        count=a.fanout_count,
        size=a.size,
        timeout=limit,
        **extra,
    )
    results = clients.collect("result", a.fanout_clients, limit + 20)
    server_cpu = server.stop_for_cpu()
    expected = a.fanout_clients * a.fanout_count
    received = sum(r["received"] for r in results)
    wrong = sum(r["wrong_length"] for r in results)
    started = [r["first"] for r in results if r["received"]]
    window = max(r["last"] for r in results) - min(started) if started else 0.0
    return {
        "expected": expected,
        "received": received,
        "wrong_length": wrong,
        "order_ok": all(r["order_ok"] for r in results),
        "intact": received == expected and not wrong and all(r["order_ok"] for r in results),
        "rate": sum(r["bytes"] for r in results) / a.size / window if window > 0 else 0.0,
        "server_cpu_us": server_cpu / expected * 1e6 if server_cpu is not None else None,
    }


def scale_level(bench: Bench, impl: Impl, connections: int) -> dict[str, Any]:
    """Hold ``connections`` links at once, one echo each; sample the server while they are all open."""
    a = bench.args
    limit = 30.0 + connections / 100
    server = bench.spawn(impl, "echo-server", connections=connections, timeout=limit * 3)
    ready = server.expect("ready", 60)
    procs = max(1, math.ceil(connections / PER_LOADGEN_PROCESS))
    if impl.key == "pyzmq":
        argv = impl.argv("scale-clients", port=ready["port"], connections=connections, procs=procs, size=a.size)
    else:
        argv = [sys.executable, "loadgen.py", "--port", str(ready["port"]), "--connections", str(connections)]
        argv += ["--procs", str(procs), "--size", str(a.size)]
    argv += ["--timeout", str(limit)]
    loadgen = bench.spawn_argv(f"{impl.key}-scale-clients", argv)
    results = loadgen.collect("result", procs, limit * 2 + 20)
    try:
        connected_at = server.expect("connected", 2.0)["at"]
    except StepFailed:
        connected_at = None
    status = benchlib.proc_status(ready["pid"])
    server.stop()  # the server goes first: the original spins on a link that its peer closes
    replied = sum(r["replied"] for r in results)
    connected = sum(r.get("connected", r.get("opened", 0)) for r in results)
    failures: dict[str, int] = {}
    for r in results:
        for name, count in r.get("failed", {}).items():
            failures[name] = failures.get(name, 0) + count
    started = min(r["started"] for r in results)
    return {
        "connections": connections,
        "replied": replied,
        "connected": connected,
        "failures": failures,
        "ok": replied == connections and connected_at is not None,
        "connect_s": connected_at - started if connected_at is not None else None,
        "rss_mib": status["rss_kib"] / 1024,
        "threads": status["threads"],
    }


def scale(bench: Bench, impl: Impl) -> dict[str, Any]:
    """Climb the levels until one does not fully work; report the largest that did, and the first that did not."""
    best: dict[str, Any] | None = None
    broke: dict[str, Any] | None = None
    for connections in bench.args.scale_levels:
        try:
            level = scale_level(bench, impl, connections)
        except StepFailed as error:
            level = {"connections": connections, "ok": False, "replied": 0, "error": str(error)}
        finally:
            bench.stop_all()
        if not level["ok"]:
            broke = level
            break
        best = level
    smallest = bench.args.scale_levels[0]
    return {"best": best, "broke": broke, "intact": best is not None and best["connections"] >= smallest}


WORKLOADS: dict[str, Callable[[Bench, Impl], dict[str, Any]]] = {
    "one-way": oneway,
    "ping-pong": lambda bench, impl: pingpong(bench, impl, "thread"),
    "ping-pong-callback": lambda bench, impl: pingpong(bench, impl, "callback"),
    "fan-out": fanout,
    "scale": scale,
}


# Setting up the implementations.


def find_python312(given: str | None) -> str:
    """A working Python 3.12 interpreter: the one given, else one on PATH or under pyenv."""
    candidates = [given] if given else []
    candidates += [shutil.which("python3.12") or ""]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")), reverse=True)
    candidates += ["/usr/bin/python3.12", "/usr/local/bin/python3.12"]
    for candidate in filter(None, candidates):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            probe = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
                capture_output=True,
                timeout=30,
                check=False,
            )
            if probe.stdout.strip() == b"True":
                return candidate
    raise SystemExit("--with-original needs Python 3.12 (leads 0.9.7 requires it); pass --original-python PATH")


def original_python(args: argparse.Namespace) -> str:
    """The interpreter of a venv holding leads 0.9.7, made (and filled from PyPI) on first use."""
    venv = os.path.abspath(args.original_venv)
    python = os.path.join(venv, "bin", "python")
    check = [python, "-c", f"import importlib.metadata as m; assert m.version('leads') == '{ORIGINAL_VERSION}'"]
    if os.path.exists(python) and subprocess.run(check, capture_output=True, timeout=60, check=False).returncode == 0:
        return python
    base = find_python312(args.original_python)
    print(f"creating {venv} with {base} and installing leads=={ORIGINAL_VERSION} ...", file=sys.stderr)
    subprocess.run([base, "-m", "venv", venv], check=True, timeout=300)
    subprocess.run([python, "-m", "pip", "install", "--quiet", f"leads=={ORIGINAL_VERSION}"], check=True, timeout=900)
    return python


def implementations(args: argparse.Namespace) -> list[Impl]:
    impls = [
        Impl(
            "leads_twisted", "leads_twisted", sys.executable, ["peer_leads.py", "--flavor", "twisted"], reference=False
        ),
        # The same code with direct writes off (``direct_writes=False``): what the direct path buys, measured.
        Impl(
            "leads_twisted-queued",
            "leads_twisted-queued",
            sys.executable,
            ["peer_leads.py", "--flavor", "twisted-queued"],
            reference=False,
            skips=frozenset({"scale"}),  # connection counts do not depend on how bytes are written
        ),
        Impl("twisted", "plain Twisted", sys.executable, ["peer_twisted.py"]),
        Impl("pyzmq", "pyzmq", sys.executable, ["peer_zmq.py"]),
    ]
    try:
        importlib.metadata.version("pyzmq")
    except importlib.metadata.PackageNotFoundError:
        impls[3].available = False
        impls[3].missing = "pyzmq is not installed: pip install -e '.[bench]'"
    if args.with_original:
        impls.append(
            Impl(
                "original",
                f"leads {ORIGINAL_VERSION}",
                original_python(args),
                ["peer_leads.py", "--flavor", "original"],
            )
        )
    for position, variant in enumerate(args.variant or [], start=1):
        name, _, path = variant.partition("=")
        if not name or not os.path.isdir(path):
            raise SystemExit(
                f"--variant wants NAME=PATH with PATH a folder holding a leads_twisted package: {variant!r}"
            )
        env = {"PYTHONPATH": os.path.abspath(path)}
        if name == "leads_twisted":  # the subject itself, from a copy (a snapshot of a tree that is changing)
            impls[0].env = impls[1].env = env  # and its queued twin
            continue
        impls.insert(
            position + 1, Impl(name, name, sys.executable, ["peer_leads.py", "--flavor", "twisted"], False, env=env)
        )
    if args.impls:
        wanted = set(args.impls)
        impls = [impl for impl in impls if impl.key in wanted]
    return impls


# Reporting.


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def fmt_number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def integrity_cell(runs: list[dict[str, Any]], kind: str) -> str:
    """'intact' if every run was; else what went wrong in the first run that was not, and in how many runs."""
    bad = [r for r in runs if not r.get("intact")]
    if not runs:
        return "—"
    if not bad:
        return f"intact ({len(runs)}/{len(runs)})"
    first = bad[0]
    if "error" in first:
        what = f"failed: {first['error'][:120]}"
    elif kind == "ping":
        what = f"{first['received']:,}/{first['expected']:,} answered, {first['wrong']:,} wrong"
    else:
        lost = first["expected"] - first["received"]
        parts = [f"{first['received']:,}/{first['expected']:,} received"]
        if first["wrong_length"]:
            parts.append(f"{first['wrong_length']:,} split (wrong length)")
        elif lost > 0:
            parts.append(f"{lost:,} lost")
        if not first["order_ok"]:
            parts.append("content/order check failed")
        what = ", ".join(parts)
    return f"NOT INTACT in {len(bad)}/{len(runs)}: {what}"


def ratio(subject: float | None, reference: float | None) -> str:
    if subject is None or reference is None or reference == 0:
        return "—"
    return f"{subject / reference:.2f}x"


def build_table(
    impls: list[Impl], results: dict[str, dict[str, list[dict[str, Any]]]], args: argparse.Namespace
) -> str:
    """The results as a Markdown table: medians per implementation, ratios of leads_twisted to each reference."""
    subject = next((impl for impl in impls if impl.key == "leads_twisted"), None)
    if subject is None:  # with --impls leaving it out, the first variant stands in for it
        subject = next((impl for impl in impls if not impl.reference), None)
    refs = [impl for impl in impls if impl.reference]
    variants = [impl for impl in impls if not impl.reference and impl is not subject]
    head = ["workload", "metric", *[impl.title for impl in impls]]
    extra = 0
    if subject is not None:
        head += [f"vs {impl.title}" for impl in refs]
        head += [f"{impl.title} vs {subject.title}" for impl in variants]
        extra = len(refs) + len(variants)
    rows: list[list[str]] = []

    def runs(workload: str, impl: Impl) -> list[dict[str, Any]]:
        return results.get(workload, {}).get(impl.key, [])

    def metric_row(
        workload: str,
        label: str,
        metric: str,
        pick: Callable[[dict[str, Any]], float | None],
        digits: int = 0,
        fallback: str | None = None,
    ) -> None:
        values: dict[str, float | None] = {}
        borrowed: set[str] = set()
        for impl in impls:
            got = runs(workload, impl)
            if not got and fallback and runs(fallback, impl):
                got = runs(fallback, impl)
                borrowed.add(impl.key)
            values[impl.key] = median([pick(r) if "error" not in r else None for r in got]) if got else None
        row = [label, metric]
        for impl in impls:
            cell = fmt_number(values[impl.key], digits) + (" *" if impl.key in borrowed else "")
            row.append(cell if impl.available else "not installed")
        if subject is not None:
            row += [ratio(values[subject.key], values[impl.key]) for impl in refs]
            row += [ratio(values[impl.key], values[subject.key]) for impl in variants]
        rows.append(row)

    def integrity_row(workload: str, label: str, kind: str = "stream") -> None:
        row = [label, "integrity"] + [integrity_cell(runs(workload, impl), kind) for impl in impls]
        row += [""] * extra
        rows.append(row)

    n, c, fo, p = args.oneway_count, args.fanout_clients, args.fanout_count, args.ping_count
    if "one-way" in args.workloads:
        label = f"one-way {n:,} x {args.size} B"
        metric_row("one-way", label, "msg/s (higher is better)", lambda r: r["rate"])
        metric_row("one-way", label, "server CPU µs per message", lambda r: r["server_cpu_us"], 2)
        metric_row("one-way", label, "client CPU µs per message", lambda r: r.get("client_cpu_us"), 2)
        integrity_row("one-way", label)
    if "ping-pong" in args.workloads:
        label = f"ping-pong {p:,} (+{args.ping_warmup} warm-up), client sends from its own thread"
        for name, key in (("p50", "p50_us"), ("p99", "p99_us"), ("max", "max_us")):
            metric_row("ping-pong", label, f"{name} µs (lower is better)", lambda r, k=key: r[k], 1)
        metric_row("ping-pong", label, "CPU µs per round trip, both ends", lambda r: r.get("cpu_us"), 1)
        integrity_row("ping-pong", label, "ping")
    if "ping-pong-callback" in args.workloads:
        label = f"ping-pong {p:,}, client sends the next ping from on_receive"
        for name, key in (("p50", "p50_us"), ("p99", "p99_us"), ("max", "max_us")):
            pick = lambda r, k=key: r[k]  # noqa: E731
            metric_row("ping-pong-callback", label, f"{name} µs (lower is better)", pick, 1, fallback="ping-pong")
        pick = lambda r: r.get("cpu_us")  # noqa: E731
        metric_row("ping-pong-callback", label, "CPU µs per round trip, both ends", pick, 1, fallback="ping-pong")
        integrity_row("ping-pong-callback", label, "ping")
    if "fan-out" in args.workloads:
        label = f"fan-out {c} clients x {fo:,} x {args.size} B"
        metric_row("fan-out", label, "deliveries/s (higher is better)", lambda r: r["rate"])
        metric_row("fan-out", label, "server CPU µs per delivery", lambda r: r.get("server_cpu_us"), 3)
        integrity_row("fan-out", label)
    if "scale" in args.workloads:
        label = "scale " + " → ".join(f"{level:,}" for level in args.scale_levels)

        def best(r: dict[str, Any], key: str) -> float | None:
            return r["best"][key] if r.get("best") else None

        metric_row("scale", label, "largest fully working (median)", lambda r: best(r, "connections"))
        metric_row("scale", label, "connect all there, s (lower is better)", lambda r: best(r, "connect_s"), 2)
        metric_row("scale", label, "server RSS there, MiB (lower is better)", lambda r: best(r, "rss_mib"), 1)
        metric_row("scale", label, "server threads there", lambda r: best(r, "threads"))
        row = [label, "first level that failed"]
        for impl in impls:
            broke = [r["broke"] for r in runs("scale", impl) if r.get("broke")]
            if not broke:
                row.append("none" if runs("scale", impl) else "—")
                continue
            first = broke[0]
            detail = first.get("error") or (
                f"{first['replied']:,} replied, {first['connected']:,} connected (client side)"
                + (f", errors {first['failures']}" if first.get("failures") else "")
            )
            row.append(f"{first['connections']:,} in {len(broke)} run(s): {str(detail)[:100]}")
        row += [""] * extra
        rows.append(row)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    if "ping-pong-callback" in args.workloads:
        notes.append(
            "\n\\* A reference has one natural ping client (plain Twisted's runs in the reactor, pyzmq's REQ blocks "
            "its thread): its numbers are those of the ping-pong rows above."
        )
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines + notes)


def load_average() -> str:
    """The 1-minute load average: how busy the machine was besides the benchmark."""
    with open("/proc/loadavg") as loadavg:
        return loadavg.read().split()[0]


def machine_details(impls: list[Impl]) -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        mem_gib = int(meminfo.readline().split()[1]) / 1024 / 1024
    versions = []
    for impl in impls:
        if not impl.available:
            continue
        probe = subprocess.run(
            [impl.python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            timeout=30,
            check=False,
        )
        versions.append(f"{impl.title}: Python {probe.stdout.decode().strip()}")
    libs = []
    for dist in ("Twisted", "pyzmq", "leads_twisted"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            libs.append(f"{dist} {importlib.metadata.version(dist)}")
    with contextlib.suppress(ImportError):
        import zmq

        libs.append(f"libzmq {zmq.zmq_version()}")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, timeout=10, check=False
    )
    return (
        f"{datetime.datetime.now().isoformat(timespec='seconds')}; {model}, {os.cpu_count()} cores, {mem_gib:.0f} GiB; "
        f"Linux {platform.release()}; {'; '.join(versions)}; {', '.join(libs)}; "
        f"leads_twisted commit {commit.stdout.decode().strip() or 'unknown'}"
    )


def subject_failed(impls: list[Impl], results: dict[str, dict[str, list[dict[str, Any]]]]) -> list[str]:
    """What makes the run fail: leads_twisted, plain Twisted or pyzmq not intact in any run of any workload."""
    problems = []
    for workload, per_impl in results.items():
        for impl in impls:
            if impl.key == "original" or (workload == "scale" and impl.key != "leads_twisted"):
                continue
            for run in per_impl.get(impl.key, []):
                if not run.get("intact"):
                    problems.append(f"{impl.title} {workload}: {run.get('error') or 'messages not intact'}")
    return problems


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small counts, one run: a smoke test for CI")
    parser.add_argument("--with-original", action="store_true", help=f"include leads=={ORIGINAL_VERSION}")
    parser.add_argument("--original-python", help="a Python 3.12 interpreter for the original's venv")
    parser.add_argument("--original-venv", default=os.path.join(HERE, ".original-venv"), help="where that venv lives")
    parser.add_argument(
        "--impls",
        type=lambda s: s.split(","),
        help="comma-separated: leads_twisted,leads_twisted-queued,twisted,pyzmq,original",
    )
    parser.add_argument("--workloads", type=lambda s: s.split(","), default=list(WORKLOADS), help=",".join(WORKLOADS))
    parser.add_argument("--reps", type=int, help="runs per implementation and workload (3; 1 with --quick)")
    parser.add_argument("--size", type=int, default=64, help="message size in bytes")
    parser.add_argument("--oneway-count", type=int)
    parser.add_argument("--ping-count", type=int)
    parser.add_argument("--ping-warmup", type=int)
    parser.add_argument("--fanout-clients", type=int)
    parser.add_argument("--fanout-count", type=int)
    parser.add_argument("--scale-levels", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--json", help="also write every run's raw results to this file")
    parser.add_argument(
        "--variant",
        action="append",
        metavar="NAME=PATH",
        help="also run leads_twisted imported from PATH (a modified copy) as implementation NAME; "
        "NAME leads_twisted takes the subject itself from PATH",
    )
    parser.add_argument("--profile", help="run leads_twisted servers and clients under py-spy, stacks to this folder")
    parser.add_argument(
        "--profiled",
        type=lambda s: s.split(","),
        default=["leads_twisted"],
        help="which implementations --profile covers (leads_twisted by default)",
    )
    parser.add_argument(
        "--simulate-loss", type=int, metavar="N", help="receivers drop one message in N: the run must then fail"
    )
    parser.add_argument("--log-dir", help="where each process's stderr goes (a temporary folder by default)")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "reps": 1 if quick else 3,
        "oneway_count": 20_000 if quick else 200_000,
        "ping_count": 500 if quick else 5_000,
        "ping_warmup": 50 if quick else 500,
        "fanout_clients": 5 if quick else 50,
        "fanout_count": 2_000 if quick else 20_000,
        "scale_levels": [100] if quick else [100, 1_000, 10_000],
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    unknown = set(args.workloads) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; choose from {', '.join(WORKLOADS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    benchlib.raise_fd_limit()
    if args.simulate_loss:
        os.environ["LEADS_BENCH_DROP_EVERY"] = str(args.simulate_loss)
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="leads-bench-")
    os.makedirs(log_dir, exist_ok=True)
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)
    impls = implementations(args)
    for impl in impls:
        if not impl.available:
            print(f"skipping {impl.title}: {impl.missing}", file=sys.stderr)
    active = [impl for impl in impls if impl.available]
    bench = Bench(args, log_dir)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {w: {} for w in args.workloads}
    began = time.monotonic()
    load_before = load_average()
    try:
        for rep in range(args.reps):
            order = active[rep % len(active) :] + active[: rep % len(active)]
            for workload in args.workloads:
                for impl in order:
                    if workload == "ping-pong-callback" and impl.reference and impl.key != "original":
                        continue  # a reference has one natural client, measured by ping-pong
                    if workload in impl.skips:
                        continue
                    t0 = time.monotonic()
                    try:
                        outcome = WORKLOADS[workload](bench, impl)
                    except StepFailed as error:
                        outcome = {"error": str(error), "intact": False}
                    finally:
                        bench.stop_all()
                    results[workload].setdefault(impl.key, []).append(outcome)
                    state = "ok" if outcome.get("intact") else f"NOT OK {outcome.get('error', '')}"
                    took = time.monotonic() - t0
                    step = f"[run {rep + 1}/{args.reps}] {workload:<18} {impl.title:<14} {took:5.1f} s"
                    print(f"{step}  {state}", file=sys.stderr)
    finally:
        bench.stop_all()
    print(f"\nMachine: {machine_details(active)}")
    took = time.monotonic() - began
    print(f"Medians of {args.reps} run(s), implementations interleaved; {took:.0f} s in all.")
    print(f"Load average (1 min) before the run {load_before}, after it {load_average()}: the machine's other work.")
    print(
        "Ratios: a reference's column is leads_twisted ÷ reference; a variant's is variant ÷ leads_twisted."
        f" Process logs: {log_dir}\n"
    )
    print(build_table(impls, results, args))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"args": vars(args), "results": results}, out, indent=1, default=str)
    problems = subject_failed(active, results)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
