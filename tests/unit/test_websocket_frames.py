"""The pure WebSocket frame helpers: server frames, the per-broadcast cache, and the meter of incoming frames."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st
from support_ws import BINARY, CONTINUATION, PING, TEXT, client_frame
from wsproto.frame_protocol import FrameProtocol, Opcode

from leads_twisted.websocket.frames import FrameCache, FrameMeter, server_frame, server_frames


def read_as_client(data: bytes) -> list[tuple[bool, bytes, bool]]:
    """What wsproto's frame reader, as a client, makes of server frames: (is text, payload, message finished)."""
    reader = FrameProtocol(client=True, extensions=[])
    reader.receive_bytes(data)
    return [
        (
            frame.opcode is Opcode.TEXT,
            frame.payload.encode() if isinstance(frame.payload, str) else bytes(frame.payload),
            frame.message_finished,
        )
        for frame in reader.received_frames()
    ]


@given(st.lists(st.binary(max_size=70000) | st.text(max_size=300).map(str.encode), min_size=1, max_size=4))
def test_server_frames_read_back_whole_and_in_order(messages):
    frames = read_as_client(server_frames(messages))
    assert [payload for _, payload, _ in frames] == messages
    assert all(finished for _, _, finished in frames)


def test_text_when_utf8_binary_otherwise():
    assert server_frame(b"speed=1")[0] == 0x80 | TEXT
    assert server_frame(b"\xff")[0] == 0x80 | BINARY
    assert server_frame(b"x" * 126)[1:4] == bytes((126,)) + struct.pack("!H", 126)
    assert server_frame(b"x" * 65536)[1] == 127


def test_the_cache_frames_a_broadcast_once_and_never_trusts_identity_alone():
    cache = FrameCache()
    messages = [b"a", b"b"]
    first = cache.frames(messages)
    assert cache.frames(messages) is first
    messages[1] = b"c"  # the same list, new contents
    assert cache.frames(messages) == server_frames([b"a", b"c"])


def feed_in_pieces(meter: FrameMeter, data: bytes, piece: int) -> int | None:
    for start in range(0, len(data), piece):
        over = meter.feed(data[start : start + piece])
        if over is not None:
            return start + over
    return None


@given(st.integers(min_value=1, max_value=40))
def test_the_meter_counts_fragments_skips_control_frames_and_says_where_it_went_over(piece):
    fine = (
        client_frame(TEXT, b"a" * 50, fin=False)
        + client_frame(PING, b"p" * 100)
        + client_frame(CONTINUATION, b"b" * 50)
    )
    assert feed_in_pieces(FrameMeter(100), fine * 3, piece) is None
    start = client_frame(BINARY, b"c" * 60, fin=False)
    over = start + client_frame(CONTINUATION, b"d" * 41)  # 101 bytes: over from the continuation's header
    header_at = len(fine) + len(start)
    said = feed_in_pieces(FrameMeter(100), fine + over, piece)
    assert said is not None and header_at <= said <= header_at + 6  # a header split over pieces: where it ended


def test_the_meter_refuses_from_a_header_alone():
    header = client_frame(BINARY, b"", length=1 << 40)
    assert FrameMeter(8 * 1024 * 1024).feed(header) == 0
    assert FrameMeter(1 << 41).feed(header) is None


def test_the_meter_says_what_an_unfinished_message_holds():
    meter = FrameMeter(1000)
    first = client_frame(TEXT, b"a" * 100, fin=False)
    meter.feed(first)
    assert meter.held == 100
    last = client_frame(CONTINUATION, b"b" * 50)
    meter.feed(last[:-20])
    assert meter.held == 130
    meter = FrameMeter(1000)
    meter.feed(first + client_frame(PING, b"p") + last)
    assert meter.held == 0, "the message is whole: nothing held for it"
    meter.feed(client_frame(BINARY, b""))
    assert meter.held == 0
