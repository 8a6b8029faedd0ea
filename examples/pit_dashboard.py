"""A pit dashboard: connects to the car and prints its telemetry, coming back by itself if the link drops.

    python examples/pit_dashboard.py [--host 127.0.0.1] [--port 16900] [--count N] [--pit]

``--count N`` stops after N samples (default: Ctrl-C); ``--pit`` asks the car in once connected.
"""

from __future__ import annotations

import argparse
import contextlib
import threading

from leads_twisted.comm import Callback, ConnectionBase, ServiceView, create_client, start_client


class Dashboard(Callback):
    """Prints one line per sample; counts them so the main thread knows when to stop."""

    def __init__(self, count: int | None) -> None:
        super().__init__()
        self.count = count
        self.seen = 0
        self.done = threading.Event()

    def on_connect(self, service: ServiceView, connection: ConnectionBase) -> None:
        print(f"pit: connected to {connection}", flush=True)

    def on_receive(self, service: ServiceView, msg: bytes) -> None:
        if not msg.startswith(b"seq="):
            print(f"pit: car says {msg.decode()}", flush=True)
            return
        sample = dict(field.split("=", 1) for field in msg.decode().split(","))
        print(
            f"lap {sample['lap']:>2}  t={float(sample['t']):8.2f}s  speed {float(sample['speed']):6.1f} km/h  "
            f"rpm {int(sample['rpm']):5d}  (#{sample['seq']})",
            flush=True,
        )
        self.seen += 1
        if self.count is not None and self.seen >= self.count:
            self.done.set()

    def on_disconnect(self, service: ServiceView, connection: ConnectionBase) -> None:
        print("pit: link ended (it comes back by itself unless we closed it)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=16900)
    parser.add_argument("--count", type=int, default=None)
    parser.add_argument("--pit", action="store_true")
    args = parser.parse_args()
    dashboard = Dashboard(args.count)
    client = start_client(args.host, create_client(args.port, dashboard, reconnect=True), parallel=True)
    if args.pit:
        client.send(b"pit")
    with contextlib.suppress(KeyboardInterrupt):
        dashboard.done.wait()  # the main thread waits: when it ends, the process ends
    client.close()


if __name__ == "__main__":
    main()
