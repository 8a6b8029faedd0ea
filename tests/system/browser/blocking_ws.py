"""A blocking WebSocket client over a plain socket, for tests against a real daemon (no reactor)."""

from __future__ import annotations

import base64
import os
import socket
import struct
import time

from support_ws import CLOSE, TEXT, client_frame


class BlockingWs:
    """Connects, upgrades at ``/ws``, sends text frames, and reads whole frames with a deadline."""

    def __init__(self, port: int, origin: str | None = None, timeout: float = 10.0) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            + (f"Origin: {origin}\r\n" if origin else "")
            + "\r\n"
        )
        self.socket.sendall(request.encode())
        self._buffer = b""
        head = self._read_until(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])

    def _read_until(self, marker: bytes) -> bytes:
        deadline = time.monotonic() + self.timeout
        while marker not in self._buffer:
            self._more(deadline)
        head, _, self._buffer = self._buffer.partition(marker)
        return head

    def _more(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"nothing whole within {self.timeout} s; have {self._buffer[:200]!r}")
        self.socket.settimeout(left)
        chunk = self.socket.recv(65536)
        if not chunk:
            raise ConnectionError(f"the server closed the link; have {self._buffer[:200]!r}")
        self._buffer += chunk

    def _take(self, count: int, deadline: float) -> bytes:
        while len(self._buffer) < count:
            self._more(deadline)
        taken, self._buffer = self._buffer[:count], self._buffer[count:]
        return taken

    def frame(self) -> tuple[int, bytes]:
        """The next frame from the server: (opcode, payload)."""
        deadline = time.monotonic() + self.timeout
        first, second = self._take(2, deadline)
        size = second & 0x7F
        if size == 126:
            size = struct.unpack("!H", self._take(2, deadline))[0]
        elif size == 127:
            size = struct.unpack("!Q", self._take(8, deadline))[0]
        return first & 0x0F, self._take(size, deadline)

    def message(self) -> bytes:
        while True:
            opcode, payload = self.frame()
            if opcode == CLOSE:
                raise ConnectionError(f"closed with {struct.unpack('!H', payload[:2])[0]}")
            if opcode in (1, 2):
                return payload

    def close_code(self) -> int:
        """Read until the server's close frame; its code."""
        while True:
            opcode, payload = self.frame()
            if opcode == CLOSE:
                return struct.unpack("!H", payload[:2])[0]

    def send(self, text: str) -> None:
        self.socket.sendall(client_frame(TEXT, text.encode()))

    def close(self) -> None:
        self.socket.close()
