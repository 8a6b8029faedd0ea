"""Property tests of the framer: valid messages, encoded and fed under any chunking, come back as they were."""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from leads_twisted.comm.framing import Decoder, Encoder, MessageTooLong

# A small alphabet makes messages that almost contain the separator (and self-overlapping separators) common.
ALPHABET = b"ab;\x00"
small_bytes = st.binary(max_size=12) | st.lists(st.sampled_from(list(ALPHABET)), max_size=12).map(bytes)
separators = st.sampled_from([b";", b"end;", b"aa", b"aba", b"\r\n", b"\x00\x00\x00"]) | st.lists(
    st.sampled_from(list(ALPHABET)), min_size=1, max_size=4
).map(bytes)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])


def is_valid(encoder: Encoder, msg: bytes) -> bool:
    try:
        encoder.check(msg)
    except ValueError:
        return False
    return True


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(max(cut, 0), len(data)) for cut in cuts})
    chunks, start = [], 0
    for point in points:
        chunks.append(data[start:point])
        start = point
    chunks.append(data[start:])
    return chunks


@st.composite
def framed(draw):
    separator = draw(separators)
    encoder = Encoder(separator)
    msgs = draw(st.lists(small_bytes.filter(lambda m: is_valid(encoder, m)), max_size=20))
    wire = b"".join(encoder.encode(m) for m in msgs)
    cuts = draw(st.lists(st.integers(min_value=0, max_value=max(len(wire), 0)), max_size=30))
    return separator, msgs, wire, split_at(wire, cuts)


@SETTINGS
@given(framed())
def test_any_split_decodes_to_the_same_list(case):
    separator, msgs, wire, chunks = case
    assert b"".join(chunks) == wire
    decoder = Decoder(separator)
    out = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    assert out == msgs
    assert decoder.buffered == 0


@SETTINGS
@given(framed())
def test_one_byte_at_a_time_equals_all_at_once(case):
    separator, msgs, wire, _ = case
    decoder = Decoder(separator)
    out = []
    for i in range(len(wire)):
        out.extend(decoder.feed(wire[i : i + 1]))
    assert out == msgs == Decoder(separator).feed(wire)


@SETTINGS
@given(framed(), small_bytes)
def test_trailing_partial_message_is_held_not_delivered(case, partial):
    separator, msgs, _, chunks = case
    assume(separator not in partial)
    decoder = Decoder(separator)
    out = []
    for chunk in [*chunks, partial]:
        out.extend(decoder.feed(chunk))
    assert out == msgs
    assert decoder.buffered == len(partial)


@SETTINGS
@given(separators, st.lists(small_bytes, max_size=20), st.lists(st.integers(min_value=0, max_value=400), max_size=20))
def test_decoding_any_stream_matches_a_plain_split(separator, pieces, cuts):
    # Whatever the bytes (valid or not), the framer agrees with bytes.split on the whole stream.
    stream = b"".join(pieces)
    decoder = Decoder(separator)
    out = []
    for chunk in split_at(stream, cuts):
        out.extend(decoder.feed(chunk))
    expected = stream.split(separator)
    assert out == expected[:-1]
    assert decoder.buffered == len(expected[-1])


@SETTINGS
@given(st.integers(min_value=1, max_value=64), st.lists(st.integers(min_value=0, max_value=200), max_size=10))
def test_bound_is_exact_under_any_split(limit, cuts):
    ok = b"x" * limit + b";"
    decoder = Decoder(max_message=limit)
    out = []
    for chunk in split_at(ok, cuts):
        out.extend(decoder.feed(chunk))
    assert out == [b"x" * limit]

    too_long = b"x" * (limit + 1) + b";"
    decoder = Decoder(max_message=limit)
    raised = False
    for chunk in split_at(too_long, cuts):
        try:
            decoder.feed(chunk)
        except MessageTooLong:
            raised = True
            break
    assert raised
