"""A video channel: frames end with ``end;`` (as LEADS's video stream does), each base64-encoded.

    python examples/video_channel.py send  [--port 16901] [--fps 30] [--frames N]
    python examples/video_channel.py watch [--host 127.0.0.1] [--port 16901] [--frames N]

A raw frame may hold any bytes, ``end;`` among them, and ``send`` refuses a message that contains the
separator (the peer would read two messages). base64's alphabet has no ``;``, so an encoded frame never does.
The sender waits for a first watcher, then makes synthetic 160x120 grey frames; the watcher checks each one
and prints its number and size.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import threading
import time

from leads_twisted.comm import Callback, ServiceView, create_client, create_server, start_client, start_server

SEPARATOR = b"end;"
WIDTH, HEIGHT = 160, 120


def frame(number: int) -> bytes:
    """A grey gradient that moves with the frame number, behind an 8-byte number and a 16-byte digest."""
    pixels = bytes((x + y + number) % 256 for y in range(HEIGHT) for x in range(WIDTH))
    return number.to_bytes(8, "big") + hashlib.blake2b(pixels, digest_size=16).digest() + pixels


def check(data: bytes) -> int:
    """The frame's number, once its digest matches its pixels."""
    number, digest, pixels = int.from_bytes(data[:8], "big"), data[8:24], data[24:]
    if hashlib.blake2b(pixels, digest_size=16).digest() != digest or len(pixels) != WIDTH * HEIGHT:
        raise ValueError(f"frame {number} is damaged")
    return number


class Camera(Callback):
    """Says where it serves, and lets the sender start once someone watches."""

    def __init__(self) -> None:
        super().__init__()
        self.watched = threading.Event()

    def on_initialize(self, service: ServiceView) -> None:
        print(f"video: sending on port {service.port()}", flush=True)

    def on_connect(self, service: ServiceView, connection: object) -> None:
        self.watched.set()


class Screen(Callback):
    """Checks and counts the frames; done after ``frames`` of them, or when the sender closes."""

    def __init__(self, frames: int | None) -> None:
        super().__init__()
        self.frames, self.seen, self.done = frames, 0, threading.Event()

    def on_receive(self, service: ServiceView, msg: bytes) -> None:
        data = base64.b64decode(msg)
        print(f"video: frame {check(data)} ({len(data)} bytes)", flush=True)
        self.seen += 1
        if self.frames is not None and self.seen >= self.frames:
            self.done.set()

    def on_disconnect(self, service: ServiceView, connection: object) -> None:
        self.done.set()


def send(port: int, fps: float, frames: int | None) -> None:
    camera = Camera()
    server = start_server(create_server(port, camera, SEPARATOR), parallel=True)
    with contextlib.suppress(KeyboardInterrupt):
        camera.watched.wait()
        start, number = time.monotonic(), 0
        while frames is None or number < frames:
            server.broadcast(base64.b64encode(frame(number)))  # encoded: never holds the separator
            number += 1
            time.sleep(max(0.0, start + number / fps - time.monotonic()))
    server.close()


def watch(host: str, port: int, frames: int | None) -> None:
    screen = Screen(frames)
    client = start_client(host, create_client(port, screen, SEPARATOR), parallel=True)
    with contextlib.suppress(KeyboardInterrupt):
        screen.done.wait()
    client.close()
    print(f"video: watched {screen.seen} frames", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=["send", "watch"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=16901)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--frames", type=int, default=None)
    args = parser.parse_args()
    if args.role == "send":
        send(args.port, args.fps, args.frames)
    else:
        watch(args.host, args.port, args.frames)


if __name__ == "__main__":
    main()
