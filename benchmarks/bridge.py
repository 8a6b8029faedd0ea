"""The MQTT bridge measured beside Mosquitto's own clients, in the same run against the same broker.

Rows: messages/s from a local LEADS client through ``twistd leads-comm --bridge`` to ``mosquitto_sub``, beside
``mosquitto_pub -l`` -> ``mosquitto_sub`` directly, at each QoS, with the ratio bridge / direct. Then the
daemon's memory while the broker is down: its resident size before the outage, at its peak while far more
than ``--bridge-queue`` is sent, and what it kept and dropped when the broker came back.

    python benchmarks/bridge.py            # full: 100,000 messages per row, a 64 MiB outage
    python benchmarks/bridge.py --quick    # smoke run for CI: intact streams only, numbers meaningless

Needs ``mosquitto`` and ``mosquitto-clients`` (Debian packages) and paho-mqtt. Exit status 0 only if every
stream arrived complete and in order.
"""

from __future__ import annotations

import argparse
import getpass
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import benchlib

REPO = Path(__file__).resolve().parents[1]
TWISTD = str(Path(sys.executable).with_name("twistd"))
WAIT = 60.0


def tool(name: str) -> str:
    found = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
    if found is None:
        sys.exit(f"bridge.py: {name} is missing: apt-get install -y mosquitto mosquitto-clients")
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Lines:
    """A child's output read by a thread, so every wait has a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.queue.put(line.rstrip("\n"))
        self.queue.put(None)

    def wait_for(self, pattern: str, timeout: float = WAIT) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise SystemExit(f"{self.process.args[0]} ended:\n" + "\n".join(self.seen[-20:]))
            self.seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found
        raise SystemExit(
            f"no {pattern!r} within {timeout} s from {self.process.args[0]}:\n" + "\n".join(self.seen[-20:])
        )


def end(process: subprocess.Popen[str], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


class Broker:
    def __init__(self, directory: str) -> None:
        self.port = free_port()
        self.config = os.path.join(directory, "mosquitto.conf")
        with open(self.config, "w") as config:
            config.write(
                f"listener {self.port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\n"
                "max_queued_messages 0\npersistence false\nlog_dest stderr\nlog_type notice\nlog_type information\n"
            )
        self.process: subprocess.Popen[str] | None = None
        self.lines: Lines | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [tool("mosquitto"), "-c", self.config], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines = Lines(self.process)
        self.lines.wait_for(" running")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None:
            end(self.process, sig)


class Subscriber:
    """``mosquitto_sub -v`` on one topic; ``stream`` times and checks ``count`` numbered messages."""

    def __init__(self, broker: Broker, topic: str, qos: int) -> None:
        self.topic = topic
        self.sync = f"bench-sync/{os.getpid()}/{topic}"
        self.broker = broker
        where = ["-p", str(broker.port), "-h", "127.0.0.1"]
        self.process = subprocess.Popen(
            [tool("mosquitto_sub"), *where, "-v", "-q", str(qos), "-t", topic, "-t", self.sync],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines = Lines(self.process)
        deadline = time.monotonic() + WAIT
        while True:  # subscribed once it hears its own sync message
            publish(broker, self.sync, "sync")
            try:
                self.lines.wait_for(re.escape(self.sync), timeout=0.5)
                break
            except SystemExit:
                if time.monotonic() > deadline:
                    raise

    def stream(self, count: int, started: float) -> tuple[float, bool]:
        """Seconds from ``started`` until ``count`` messages are in, and whether they were 0..count-1 in order."""
        prefix = self.topic + " "
        intact, expected = True, 0
        deadline = time.monotonic() + WAIT * 4
        while expected < count:
            try:
                line = self.lines.queue.get(timeout=max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                raise SystemExit(f"{self.topic}: {expected} of {count} messages within {WAIT * 4:.0f} s") from None
            if line is None:
                raise SystemExit("mosquitto_sub ended early")
            if line.startswith(prefix):
                intact = intact and int(line[len(prefix) : len(prefix) + 10]) == expected
                expected += 1
        return time.monotonic() - started, intact

    def stop(self) -> None:
        end(self.process)


def publish(broker: Broker, topic: str, message: str) -> None:
    subprocess.run(
        [tool("mosquitto_pub"), "-p", str(broker.port), "-h", "127.0.0.1", "-t", topic, "-m", message],
        check=True,
        timeout=30,
    )


class Daemon:
    """``twistd -n leads-comm`` bridged to the broker; ``port`` once it listens and the bridge is connected."""

    def __init__(self, broker: Broker, qos: int, queue_bytes: int | None = None) -> None:
        arguments = ["--port", "0", "--interface", "127.0.0.1", "--bridge", f"mqtt://127.0.0.1:{broker.port}"]
        arguments += ["--vehicle", "bench", "--bridge-qos", str(qos)]
        if queue_bytes is not None:
            arguments += ["--bridge-queue", str(queue_bytes)]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.process = subprocess.Popen(
            [TWISTD, "-n", "--pidfile=", "leads-comm", *arguments],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=tempfile.gettempdir(),
        )
        self.lines = Lines(self.process)
        self.port = int(self.lines.wait_for(r"listening on 127\.0\.0\.1:(\d+)").group(1))
        self.lines.wait_for("bridge: connected")

    def memory(self) -> tuple[int, int]:
        """Resident and peak resident KiB."""
        found = {}
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0])
        return found["VmRSS"], found["VmHWM"]

    def stop(self) -> None:
        end(self.process)


def send_all(port: int, messages: list[bytes]) -> socket.socket:
    link = socket.create_connection(("127.0.0.1", port))
    for start in range(0, len(messages), 2000):
        link.sendall(b"".join(msg + b";" for msg in messages[start : start + 2000]))
    return link


def direct_row(broker: Broker, qos: int, messages: list[bytes]) -> tuple[float, bool]:
    """``mosquitto_pub -l`` fed through a pipe that stays open until the subscriber has every message.

    At end of input mosquitto_pub 2.0.11 disconnects without waiting for the QoS 1 messages still queued in
    libmosquitto beyond its in-flight window (most of 100,000 read from a file are lost), so its input ends
    only once the stream is in, as the bridge's local client stays connected. The clock starts once the
    broker has it connected, as the bridge is before its row starts.
    """
    topic = f"bench/direct/{qos}"
    data = b"".join(msg + b"\n" for msg in messages)
    sub = Subscriber(broker, topic, qos)
    try:
        name = f"bench-direct-{os.getpid()}-{qos}"
        where = ["-p", str(broker.port), "-h", "127.0.0.1", "-i", name]
        pub = subprocess.Popen(
            [tool("mosquitto_pub"), *where, "-q", str(qos), "-t", topic, "-l"], stdin=subprocess.PIPE
        )
        assert pub.stdin is not None and broker.lines is not None
        broker.lines.wait_for(re.escape(f" as {name} "))
        started = time.monotonic()
        feeder = threading.Thread(target=pub.stdin.write, args=(data,), daemon=True)
        feeder.start()
        try:
            seconds, intact = sub.stream(len(messages), started)
        finally:
            feeder.join(WAIT)
            pub.stdin.close()
            end(pub)
    finally:
        sub.stop()
    return seconds, intact


def bridge_row(broker: Broker, qos: int, messages: list[bytes]) -> tuple[float, bool]:
    daemon = Daemon(broker, qos)
    sub = Subscriber(broker, "leads/bench/up", qos)
    try:
        started = time.monotonic()
        link = send_all(daemon.port, messages)
        seconds, intact = sub.stream(len(messages), started)
        link.close()
    finally:
        sub.stop()
        daemon.stop()
    return seconds, intact


def drain(link: socket.socket, total: int, counted: list[int]) -> None:
    """Read up to ``total`` bytes from ``link`` (less if it closes); how many, in ``counted``."""
    received = 0
    while received < total:
        chunk = link.recv(1 << 20)
        if not chunk:
            break
        received += len(chunk)
    counted.append(received)


def outage(broker: Broker, queue_bytes: int, outage_bytes: int, size: int) -> dict[str, int]:
    """The daemon's memory while the broker is down and far more than its queue bound is sent."""
    daemon = Daemon(broker, 1, queue_bytes)
    try:
        reader = socket.create_connection(("127.0.0.1", daemon.port))  # drains the relay, so only the queue grows
        # Within the bridge's queue: a burst larger than it would lose its oldest messages while QoS 1 waits.
        warm = benchlib.payloads(min(1000, queue_bytes // (2 * size)), size)
        sub = Subscriber(broker, "leads/bench/up", 1)
        writer = send_all(daemon.port, warm)
        received = 0
        while received < len(warm) * (size + 1):
            received += len(reader.recv(1 << 20))
        try:  # the warm-up is through the bridge before the broker goes, so the outage alone fills the queue
            sub.stream(len(warm), time.monotonic())
        finally:
            sub.stop()
        before, _ = daemon.memory()
        broker.stop(signal.SIGKILL)
        daemon.lines.wait_for("bridge: no link")
        count = outage_bytes // size
        # The relay's copy is read as it comes (a thread), or the reader would be cut as a slow peer.
        counted: list[int] = []
        drained = threading.Thread(target=drain, args=(reader, count * (size + 1), counted), daemon=True)
        drained.start()
        for start in range(0, count, 10_000):
            writer.sendall(b"".join(benchlib.payload(i, size) + b";" for i in range(start, min(start + 10_000, count))))
        drained.join(WAIT * 4)
        if counted != [count * (size + 1)]:
            raise SystemExit(f"the relay delivered {counted or 'not all'} of {count * (size + 1)} outage bytes")
        after, peak = daemon.memory()
        broker.start()
        back = daemon.lines.wait_for(r"(\d+) messages waiting, (\d+) dropped in all")
        writer.close()
        reader.close()
    finally:
        daemon.stop()
    return {
        "rss_before_kib": before,
        "rss_after_kib": after,
        "peak_kib": peak,
        "sent": count,
        "kept": int(back.group(1)),
        "dropped": int(back.group(2)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: small counts, integrity only")
    parser.add_argument("--count", type=int, default=100_000, help="messages per row [100000]")
    parser.add_argument("--size", type=int, default=64, help="bytes per message [64]")
    parser.add_argument("--queue-bytes", type=int, default=8 * 1024 * 1024, help="--bridge-queue [8 MiB]")
    parser.add_argument("--outage-bytes", type=int, default=64 * 1024 * 1024, help="sent while down [64 MiB]")
    args = parser.parse_args()
    if args.quick:
        args.count, args.queue_bytes, args.outage_bytes = 2000, 256 * 1024, 1024 * 1024
    messages = benchlib.payloads(args.count, args.size)
    ok = True
    with tempfile.TemporaryDirectory() as directory:
        broker = Broker(directory)
        broker.start()
        try:
            print(f"{args.count} messages of {args.size} bytes, one broker, load {os.getloadavg()[0]:.2f}")
            print(f"{'qos':>3}  {'direct msg/s':>12}  {'bridge msg/s':>12}  {'bridge/direct':>13}  intact")
            for qos in (0, 1):
                direct_s, direct_ok = direct_row(broker, qos, messages)
                bridge_s, bridge_ok = bridge_row(broker, qos, messages)
                direct_rate, bridge_rate = args.count / direct_s, args.count / bridge_s
                ok = ok and direct_ok and bridge_ok
                print(
                    f"{qos:>3}  {direct_rate:>12,.0f}  {bridge_rate:>12,.0f}  {bridge_rate / direct_rate:>13.2f}  "
                    f"{'yes' if direct_ok and bridge_ok else 'NO'}"
                )
            memory = outage(broker, args.queue_bytes, args.outage_bytes, 1024)
            print(
                f"broker down, --bridge-queue {args.queue_bytes // 1024} KiB, {memory['sent']} messages of 1 KiB sent: "
                f"RSS {memory['rss_before_kib'] // 1024} MiB before, {memory['rss_after_kib'] // 1024} MiB after, "
                f"peak {memory['peak_kib'] // 1024} MiB; on reconnect {memory['kept']} kept, "
                f"{memory['dropped']} dropped"
            )
            # The queue keeps the newest messages that fit; messages already with paho (at most the bridge's
            # window) are not in it and are not dropped.
            ok = ok and memory["dropped"] == memory["sent"] - args.queue_bytes // 1024
        finally:
            broker.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
