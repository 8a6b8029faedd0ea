"""A simulated car: its computer serves telemetry at 50 Hz to every pit client that connects, until Ctrl-C.

    python examples/simulated_car.py [--port 16900] [--interface 127.0.0.1] [--seconds N]

Each message is ``seq=…;`` framed, with fields ``key=value`` joined by commas, e.g.
``seq=42,t=0.840,speed=87.3,rpm=5120,lap=1``. The 50 Hz loop runs in a thread of its own: callbacks stay quick
(they run in the reactor thread, where a sleep would stall every link). A pit client may send ``pit`` to
ask the car in; the car answers that client alone with ``ack:pit``.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import threading
import time

from leads_twisted import L
from leads_twisted.comm import Callback, ConnectionBase, Server, ServiceView, create_server, start_server

RATE_HZ = 50


class CarComputer(Callback):
    """Greets pit clients and answers their requests; never blocks."""

    def on_initialize(self, service: ServiceView) -> None:
        print(f"car: listening on port {service.port()}", flush=True)

    def on_connect(self, service: ServiceView, connection: ConnectionBase) -> None:
        L.info("pit client connected:", str(connection))

    def on_receive(self, service: ServiceView, msg: bytes) -> None:
        if msg == b"pit":
            service.reply(b"ack:pit")

    def on_disconnect(self, service: ServiceView, connection: ConnectionBase) -> None:
        L.info("pit client left:", str(connection))


def telemetry(seq: int) -> bytes:
    """One sample of a car lapping a 60-second circuit."""
    t = seq / RATE_HZ
    speed = 120 + 60 * math.sin(2 * math.pi * t / 60)
    rpm = int(3000 + speed * 30)
    return f"seq={seq},t={t:.3f},speed={speed:.1f},rpm={rpm},lap={int(t // 60) + 1}".encode()


def broadcast_forever(server: Server, stop: threading.Event) -> None:
    """Send a sample every 1/50 s on a fixed schedule, so late ticks do not drift the rate."""
    start = time.monotonic()
    seq = 0
    while not stop.is_set():
        server.broadcast(telemetry(seq))
        seq += 1
        stop.wait(max(0.0, start + seq / RATE_HZ - time.monotonic()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=16900)
    parser.add_argument("--interface", default="")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long (default: Ctrl-C)")
    args = parser.parse_args()
    server = start_server(create_server(args.port, CarComputer(), interface=args.interface), parallel=True)
    stop = threading.Event()
    threading.Thread(target=broadcast_forever, args=(server, stop), name="telemetry", daemon=True).start()
    with contextlib.suppress(KeyboardInterrupt):
        # The main thread must stay: when it ends, the process ends, and the server with it.
        stop.wait(args.seconds)
    stop.set()
    server.close()
    print("car: stopped", flush=True)


if __name__ == "__main__":
    main()
