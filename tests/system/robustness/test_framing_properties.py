"""Both framings against any cut of the stream and any garbage: the only error is MessageTooLong, raised exactly
when the stream breaks the bound; nothing is lost, invented or held beyond the bound."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leads_twisted.comm.framing import Decoder, Encoder, MessageTooLong
from leads_twisted.comm.length_framing import HEADER_SIZE, LengthDecoder, LengthEncoder

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Few distinct bytes, so separators, near-separators and self-overlapping separators turn up often.
ALPHABET = [ord(c) for c in "ab;e\x00"]
separators = st.sampled_from([b";", b"end;", b"aa", b"aba", b"\x00\x00"]) | st.binary(min_size=1, max_size=3)
garbage = st.lists(st.sampled_from(ALPHABET), max_size=300).map(bytes) | st.binary(max_size=300)
bounds = st.integers(min_value=1, max_value=40)


def cut(data: bytes, points: list[int]) -> list[bytes]:
    """``data`` in pieces at ``points`` (any numbers; taken modulo the length), empty pieces included."""
    places = sorted(point % (len(data) + 1) for point in points)
    pieces, start = [], 0
    for place in [*places, len(data)]:
        pieces.append(data[start:place])
        start = place
    return pieces


cuts = st.lists(st.integers(min_value=0, max_value=10_000), max_size=40)


def feed_all(decoder, pieces: list[bytes], check_held=None) -> tuple[list[bytes], bool]:
    """Feed the pieces in order; returns the messages and whether MessageTooLong ended the stream.

    Any other exception escapes and fails the test. ``check_held(decoder, messages, fed)`` runs after every
    piece taken whole, with every message so far and the number of bytes fed so far.
    """
    messages: list[bytes] = []
    fed = 0
    for piece in pieces:
        fed += len(piece)
        try:
            messages.extend(decoder.feed(piece))
        except MessageTooLong as error:
            # Messages that arrived whole before the offending bytes may come with the error, to be delivered.
            messages.extend(getattr(error, "complete", []))
            return messages, True
        if check_held is not None:
            check_held(decoder, messages, fed)
    return messages, False


# Separator framing.


@SETTINGS
@given(separators, bounds, garbage, cuts)
def test_separator_framing_reads_garbage_as_the_whole_stream_says_under_any_cut(separator, bound, data, points):
    slack = len(separator) - 1  # the first bytes of a separator that the next piece may complete

    def check_held(decoder, messages, fed):
        # Bytes are neither lost nor invented: what is not a message yet is held, and no more than the bound.
        assert sum(len(m) + len(separator) for m in messages) + decoder.buffered == fed
        assert decoder.buffered <= bound + slack
        assert all(len(m) <= bound for m in messages)

    messages, too_long = feed_all(Decoder(separator, bound), cut(data, points), check_held)
    *expected, rest = data.split(separator)
    assert messages == expected[: len(messages)]
    if any(len(m) > bound for m in expected) or len(rest) > bound + slack:
        assert too_long, "the stream broke the bound and was taken"
    elif len(rest) <= bound:
        assert not too_long, "a stream within the bound was refused"
        assert messages == expected
    # In between, the unfinished message may yet turn out to end with a separator: either outcome is right.


@st.composite
def valid_stream(draw):
    separator = draw(separators)
    bound = draw(bounds)
    encoder = Encoder(separator)
    messages = []
    for candidate in draw(st.lists(garbage.map(lambda b: b[:bound]), max_size=12)):
        try:
            encoder.check(candidate)
        except ValueError:
            continue
        messages.append(candidate)
    # Messages of exactly the bound are legal and are the ones at the edge.
    edge = st.lists(st.sampled_from(ALPHABET), min_size=bound, max_size=bound).map(bytes)
    for candidate in draw(st.lists(edge, max_size=2)):
        try:
            encoder.check(candidate)
        except ValueError:
            continue
        messages.append(candidate)
    return separator, bound, messages, b"".join(encoder.encode(m) for m in messages)


@SETTINGS
@given(valid_stream(), cuts)
def test_messages_within_the_bound_pass_under_any_cut(stream, points):
    separator, bound, messages, wire = stream
    decoder = Decoder(separator, bound)
    got, too_long = feed_all(decoder, cut(wire, points))
    assert not too_long, f"a message of at most {bound} bytes was refused"
    assert got == messages and decoder.buffered == 0


def test_a_message_of_exactly_the_bound_whose_separator_is_cut_in_two_passes():
    decoder = Decoder(b"end;", 10)
    assert decoder.feed(b"0123456789en") == []
    assert decoder.feed(b"d;") == [b"0123456789"]


# Length framing.


def length_reference(data: bytes, max_message: int) -> tuple[list[bytes], bool]:
    messages, offset = [], 0
    while len(data) - offset >= HEADER_SIZE:
        (length,) = struct.unpack_from(">I", data, offset)
        if length > max_message:
            return messages, True
        if offset + HEADER_SIZE + length > len(data):
            break
        messages.append(data[offset + HEADER_SIZE : offset + HEADER_SIZE + length])
        offset += HEADER_SIZE + length
    return messages, False


# Garbage whose headers are sometimes small enough to be obeyed, so both outcomes are explored.
small_headers = st.lists(st.tuples(st.integers(min_value=0, max_value=60), st.binary(max_size=60)), max_size=8).map(
    lambda parts: b"".join(struct.pack(">I", n) + body for n, body in parts)
)


@SETTINGS
@given(bounds, garbage | small_headers, cuts)
def test_length_framing_reads_garbage_as_the_whole_stream_says_under_any_cut(bound, data, points):
    def check_held(decoder, messages, fed):
        assert sum(HEADER_SIZE + len(m) for m in messages) + decoder.buffered == fed
        assert decoder.buffered < HEADER_SIZE + bound
        assert all(len(m) <= bound for m in messages)

    messages, too_long = feed_all(LengthDecoder(bound), cut(data, points), check_held)
    expected, expected_too_long = length_reference(data, bound)
    assert too_long == expected_too_long
    # Messages in the same piece as the offending header may go with the link that is dropped for it.
    assert messages == expected if not too_long else messages == expected[: len(messages)]


@SETTINGS
@given(st.lists(st.binary(max_size=64), max_size=12), cuts)
def test_length_framing_carries_any_bytes_under_any_cut(messages, points):
    wire = LengthEncoder().encode_all(messages)
    decoder = LengthDecoder(64)
    got, too_long = feed_all(decoder, cut(wire, points))
    assert not too_long
    assert got == messages and decoder.buffered == 0


@pytest.mark.parametrize("bound", [1, 1000])
def test_length_framing_refuses_a_header_over_the_bound_before_its_body(bound):
    decoder = LengthDecoder(bound)
    with pytest.raises(MessageTooLong) as refused:
        decoder.feed(struct.pack(">I", bound + 1))
    assert refused.value.length == bound + 1 and decoder.buffered <= HEADER_SIZE
