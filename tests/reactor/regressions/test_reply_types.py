"""Bug 8: ``service.reply(bytearray(b"x"))`` inside ``on_receive`` raises ``TypeError`` at the call, with a message
that names the type, and sends nothing; never a later ``on_fail(TypeError)`` with nothing sent, nor a message
sent on some transports and not others. The link carries on: a proper reply after it arrives alone."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted

from .conftest import Recorder, client_tls, seen, server_tls


class RepliesWithABytearray(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.raised: list[BaseException] = []
        self.returned = 0

    def on_receive(self, service, msg):
        super().on_receive(service, msg)
        try:
            service.reply(bytearray(b"x"))
            self.returned += 1
        except TypeError as error:
            self.raised.append(error)
        service.reply(b"done")


def options_for(kind: str, request: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    if kind == "tls":
        pytest.importorskip("OpenSSL", reason="TLS needs the tls extra (pyOpenSSL)")
        pki = request.getfixturevalue("pki")
        return {"tls": server_tls(pki)}, {"tls": client_tls(pki)}
    if kind == "length":
        return {"framing": "length"}, {"framing": "length"}
    if kind == "crlf":
        return {"separator": b"\r\n"}, {"separator": b"\r\n"}
    return {}, {}


@pytest.mark.parametrize("kind", ["separator", "crlf", "length", "tls"])
@pytest_twisted.ensureDeferred
async def test_reply_with_a_bytearray_raises_type_error_at_the_call(net, request, kind):
    server_options, client_options = options_for(kind, request)
    server_seen = RepliesWithABytearray()
    server = await net.server(server_seen, **server_options)
    client_seen = Recorder()
    client = await net.started_client(server.port(), client_seen, **client_options)

    client.send(b"ping")
    await seen(client_seen, lambda s: b"done" in s.received)
    await seen(server_seen, lambda s: len(s.received) == 1)

    assert server_seen.returned == 0, f"reply(bytearray) returned without raising ({kind}); got {client_seen.received}"
    [error] = server_seen.raised
    assert isinstance(error, TypeError)
    assert "bytearray" in str(error), f"the TypeError should name the type given: {error!r}"
    assert client_seen.received == [b"done"], "nothing of the refused reply may reach the peer"
    assert server_seen.failures == [], f"a later on_fail: {server_seen.failures}"
    assert client_seen.failures == []
    assert server.num_connections() == 1 and not client_seen.disconnections
