"""Talk to a LEADS server by hand: each line you type is sent as a message; each message received is printed.

    python examples/talk.py [--host 127.0.0.1] [--port 16900]

With the daemon in relay mode, run it in two terminals: what one types, the other prints. End with Ctrl-D.
"""

from __future__ import annotations

import argparse
import sys
import threading

from leads_twisted.comm import Callback, ConnectionBase, ServiceView, create_client, start_client


class Printer(Callback):
    """Prints what the server sends; notes when the link ends."""

    def __init__(self) -> None:
        super().__init__()
        self.ended = threading.Event()

    def on_connect(self, service: ServiceView, connection: ConnectionBase) -> None:
        print(f"connected to {connection}; type a message and press Enter", flush=True)

    def on_receive(self, service: ServiceView, msg: bytes) -> None:
        print(f"< {msg.decode(errors='replace')}", flush=True)

    def on_disconnect(self, service: ServiceView, connection: ConnectionBase) -> None:
        print("the server closed the link", flush=True)
        self.ended.set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=16900)
    args = parser.parse_args()
    printer = Printer()
    client = start_client(args.host, create_client(args.port, printer), parallel=True)
    for line in sys.stdin:  # the main thread reads; the reactor thread prints what arrives
        if printer.ended.is_set():
            break
        text = line.rstrip("\n")
        if ";" in text:
            print("a message cannot hold ';', the separator: it would arrive as two", flush=True)
            continue
        client.send(text.encode())
    client.close()


if __name__ == "__main__":
    main()
