"""A WebSocket peer written by hand over a raw TCP link, for the relay's WebSocket tests.

It sends exactly the frames a test asks for (fragments, pings, oversize headers, unmasked frames) and records
every frame the server sends, so each test sees the wire as it is. Runs in pytest-twisted's reactor.
"""

from __future__ import annotations

import base64
import os
import struct
from typing import Any

from support_net import TIMEOUT, Waitable, connect

TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def client_frame(opcode: int, payload: bytes, fin: bool = True, length: int | None = None) -> bytes:
    """A masked client frame; ``length`` overrides the length the header announces."""
    size = len(payload) if length is None else length
    first = (0x80 if fin else 0) | opcode
    if size < 126:
        header = struct.pack("!BB", first, 0x80 | size)
    elif size < 65536:
        header = struct.pack("!BBH", first, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, size)
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


class WsPeer(Waitable):
    """One WebSocket client: ``status`` of the handshake, ``messages`` (bytes, text as UTF-8), ``binary`` flags,
    ``pongs``, ``close_code`` of the server's close frame, ``lost`` once the TCP link ended."""

    def __init__(self, origin: str | None = None, path: str = "/ws", keep: bool = True) -> None:
        super().__init__()
        from twisted.internet.protocol import Protocol

        peer = self

        class Wire(Protocol):
            def connectionMade(self) -> None:
                peer._made(self.transport)

            def dataReceived(self, data: bytes) -> None:
                peer._data(data)

            def connectionLost(self, reason: Any = None) -> None:
                peer.lost = True
                peer.changed()

        self.wire = Wire()
        self.origin = origin
        self.path = path
        self.keep = keep
        self.transport: Any = None
        self.status: int | None = None
        self.response = b""
        self.messages: list[bytes] = []
        self.binary: list[bool] = []
        self.count = 0
        self.pongs: list[bytes] = []
        self.close_code: int | None = None
        self.lost = False
        self._buffer = b""
        self._fragments: list[bytes] = []
        self._opcode = 0

    async def connect(self, port: int, tls: Any = None) -> WsPeer:
        """Connect on loopback, over TLS with ``tls`` (a client's connection creator), and upgrade."""
        if tls is None:
            await connect(self.wire, port, TIMEOUT)
        else:
            from twisted.internet import reactor
            from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, wrapClientTLS

            endpoint = wrapClientTLS(tls, TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=5))
            await connectProtocol(endpoint, self.wire).addTimeout(TIMEOUT, reactor)
        await self.when(lambda: self.status is not None or self.lost, "the handshake's answer")
        return self

    def _made(self, transport: Any) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {self.path} HTTP/1.1",
            "Host: 127.0.0.1",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if self.origin is not None:
            lines.append(f"Origin: {self.origin}")
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def _data(self, data: bytes) -> None:
        self._buffer += data
        if self.status is None:
            head, found, rest = self._buffer.partition(b"\r\n\r\n")
            if not found:
                return
            self.status = int(head.split(b" ", 2)[1])
            self.response = head
            self._buffer = rest
        if self.status != 101:
            self.response += self._buffer
            self._buffer = b""
        else:
            self._frames()
        self.changed()

    def _frames(self) -> None:
        buffer = self._buffer
        while len(buffer) >= 2:
            first, second = buffer[0], buffer[1]
            assert not second & 0x80, "a server's frames are never masked"
            size, at = second & 0x7F, 2
            if size == 126:
                if len(buffer) < 4:
                    break
                size, at = struct.unpack_from("!H", buffer, 2)[0], 4
            elif size == 127:
                if len(buffer) < 10:
                    break
                size, at = struct.unpack_from("!Q", buffer, 2)[0], 10
            if len(buffer) < at + size:
                break
            payload, buffer = buffer[at : at + size], buffer[at + size :]
            self._frame(first & 0x0F, bool(first & 0x80), payload)
        self._buffer = buffer

    def _frame(self, opcode: int, fin: bool, payload: bytes) -> None:
        if opcode == CLOSE:
            self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            return
        if opcode == PONG:
            self.pongs.append(payload)
            return
        if opcode == PING:
            self.send_frame(PONG, payload)
            return
        if opcode != CONTINUATION:
            self._opcode = opcode
        self._fragments.append(payload)
        if fin:
            self.count += 1
            if self.keep:
                self.messages.append(b"".join(self._fragments))
                self.binary.append(self._opcode == BINARY)
            self._fragments = []

    def send_frame(self, opcode: int, payload: bytes, fin: bool = True, length: int | None = None) -> None:
        self.transport.write(client_frame(opcode, payload, fin, length))

    def send_text(self, text: str) -> None:
        self.send_frame(TEXT, text.encode())

    def send_binary(self, data: bytes) -> None:
        self.send_frame(BINARY, data)

    def close(self, code: int = 1000) -> None:
        self.send_frame(CLOSE, struct.pack("!H", code))

    def when_messages(self, count: int, timeout: float | None = None) -> Any:
        return self.when(lambda: self.count >= count or self.lost, f"{count} messages", timeout)

    def when_closed(self, timeout: float | None = None) -> Any:
        return self.when(lambda: self.lost, "the server to end the link", timeout)

    def describe(self) -> str:
        return (
            f"WsPeer(status={self.status}, count={self.count}, last={self.messages[-3:]}, "
            f"close={self.close_code}, lost={self.lost}, response={self.response[:200]!r})"
        )
