"""The sans-IO framer: bytes in, messages out, whatever the chunking; no sockets, no reactor."""

from __future__ import annotations

import pytest

from leads_twisted.comm.framing import (
    DEFAULT_MAX_MESSAGE,
    DEFAULT_SEPARATOR,
    DISCONNECT,
    Decoder,
    Encoder,
    MessageTooLong,
)


def feed_all(decoder: Decoder, chunks: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    return out


def one_byte_chunks(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def test_wire_defaults_match_leads_0_9():
    assert DEFAULT_SEPARATOR == b";"
    assert DISCONNECT == b"disconnect"
    assert DEFAULT_MAX_MESSAGE == 8 * 1024 * 1024
    assert Encoder().encode(b"hello") == b"hello;"
    assert Encoder().encode(DISCONNECT) == b"disconnect;"


def test_one_message_in_one_chunk():
    assert Decoder().feed(b"hello;") == [b"hello"]


def test_one_byte_at_a_time():
    msgs = [b"alpha", b"", b"b", b"gamma delta", b"\x00\xff"]
    wire = b"".join(m + b";" for m in msgs)
    decoder = Decoder()
    seen = []
    for i, chunk in enumerate(one_byte_chunks(wire)):
        got = decoder.feed(chunk)
        # A message is handed out exactly when its separator arrives, never earlier.
        if chunk == b";":
            assert len(got) == 1, f"byte {i}"
        else:
            assert got == [], f"byte {i}"
        seen.extend(got)
    assert seen == msgs
    assert decoder.buffered == 0


def test_many_messages_in_one_chunk():
    msgs = [b"m%d" % i for i in range(1000)]
    assert Decoder().feed(b";".join(msgs) + b";") == msgs


def test_chunk_ending_mid_message_keeps_the_rest():
    decoder = Decoder()
    assert decoder.feed(b"one;two;thr") == [b"one", b"two"]
    assert decoder.buffered == 3
    assert decoder.feed(b"ee;fo") == [b"three"]
    assert decoder.feed(b"ur") == []
    assert decoder.feed(b";") == [b"four"]
    assert decoder.buffered == 0


def test_empty_chunk_yields_nothing_and_changes_nothing():
    decoder = Decoder()
    assert decoder.feed(b"") == []
    assert decoder.feed(b"ab") == []
    assert decoder.feed(b"") == []
    assert decoder.feed(b";") == [b"ab"]


def test_empty_messages():
    assert Decoder().feed(b";") == [b""]
    assert Decoder().feed(b";;;") == [b"", b"", b""]
    assert feed_all(Decoder(), [b"a;", b";", b"b;"]) == [b"a", b"", b"b"]
    assert Encoder().encode(b"") == b";"


def test_binary_bytes_survive():
    payload = bytes(b for b in range(256) if b != ord(";"))
    wire = Encoder().encode(payload) + Encoder().encode(payload[::-1])
    assert feed_all(Decoder(), one_byte_chunks(wire)) == [payload, payload[::-1]]
    assert Decoder().feed(wire) == [payload, payload[::-1]]


def test_disconnect_is_an_ordinary_message_to_the_framer():
    assert Decoder().feed(b"a;disconnect;b;") == [b"a", DISCONNECT, b"b"]


@pytest.mark.parametrize("separator", [b"end;", b"\r\n", b"||", b"\x00\x01\x02"])
def test_multi_byte_separator_split_anywhere(separator):
    msgs = [b"first", b"", b"e", b"en", b"end", b"x;y", b"last"]
    msgs = [m for m in msgs if separator not in m + separator[:-1]]
    encoder = Encoder(separator)
    wire = b"".join(encoder.encode(m) for m in msgs)
    assert Decoder(separator).feed(wire) == msgs
    assert feed_all(Decoder(separator), one_byte_chunks(wire)) == msgs
    for cut in range(len(wire) + 1):
        assert feed_all(Decoder(separator), [wire[:cut], wire[cut:]]) == msgs, cut


def test_end_separator_as_leads_video_uses_it():
    frame = b"aGVsbG8gd29ybGQ=" * 100
    wire = Encoder(b"end;").encode(frame) * 3
    decoder = Decoder(b"end;")
    out = []
    for start in range(0, len(wire), 7):
        out.extend(decoder.feed(wire[start : start + 7]))
    assert out == [frame] * 3


def test_separator_straddling_three_chunks():
    decoder = Decoder(b"end;")
    assert decoder.feed(b"msg" + b"e") == []
    assert decoder.feed(b"n") == []
    assert decoder.feed(b"d") == []
    assert decoder.feed(b";next") == [b"msg"]
    assert decoder.feed(b"end;") == [b"next"]


@pytest.mark.parametrize("separator", [b"aa", b"aba", b"abab"])
def test_self_overlapping_separator_reads_left_to_right(separator):
    # The stream is cut at the leftmost occurrence, then the search goes on after it: the same whether the bytes
    # come at once or one by one.
    stream = b"xaaaabababaaay" + separator
    whole = Decoder(separator).feed(stream)
    assert whole == stream.split(separator)[:-1]
    assert feed_all(Decoder(separator), one_byte_chunks(stream)) == whole
    for cut in range(len(stream) + 1):
        assert feed_all(Decoder(separator), [stream[:cut], stream[cut:]]) == whole, cut


def test_overlapping_separator_round_trip():
    encoder = Encoder(b"aa")
    msgs = [b"b", b"ab", b"bab", b"", b"abab"]
    wire = b"".join(encoder.encode(m) for m in msgs)
    assert wire == b"baaabaababaaaaababaa"
    assert feed_all(Decoder(b"aa"), one_byte_chunks(wire)) == msgs


class TestMessageTooLong:
    def test_exactly_at_the_bound_passes(self):
        decoder = Decoder(max_message=10)
        assert decoder.feed(b"0123456789;") == [b"0123456789"]
        assert feed_all(Decoder(max_message=10), one_byte_chunks(b"0123456789;")) == [b"0123456789"]
        assert feed_all(Decoder(max_message=10), [b"0123456789", b";"]) == [b"0123456789"]

    def test_one_past_the_bound_in_one_chunk(self):
        with pytest.raises(MessageTooLong) as raised:
            Decoder(max_message=10).feed(b"0123456789A;")
        assert raised.value.max_message == 10
        assert raised.value.length >= 11
        assert "max_message" in str(raised.value)

    def test_one_past_the_bound_without_a_separator_yet(self):
        decoder = Decoder(max_message=10)
        assert decoder.feed(b"0123456789") == []
        with pytest.raises(MessageTooLong):
            decoder.feed(b"A")

    def test_one_past_the_bound_across_chunks(self):
        decoder = Decoder(max_message=10)
        assert decoder.feed(b"012345") == []
        with pytest.raises(MessageTooLong):
            decoder.feed(b"6789A;")

    def test_one_byte_at_a_time_raises_at_the_eleventh_byte(self):
        decoder = Decoder(max_message=10)
        for chunk in one_byte_chunks(b"0123456789"):
            assert decoder.feed(chunk) == []
        with pytest.raises(MessageTooLong):
            decoder.feed(b"A")

    def test_long_tail_after_short_messages(self):
        with pytest.raises(MessageTooLong):
            Decoder(max_message=10).feed(b"a;b;" + b"x" * 11)

    def test_bound_counts_the_message_not_the_chunk(self):
        # Many short messages in one chunk far larger than the bound are fine.
        msgs = [b"0123456789"] * 100
        assert Decoder(max_message=10).feed(b";".join(msgs) + b";") == msgs

    def test_holding_never_exceeds_the_bound(self):
        decoder = Decoder(max_message=1000)
        with pytest.raises(MessageTooLong):
            for _ in range(2000):
                decoder.feed(b"x")
        assert decoder.buffered <= 1001

    def test_is_a_value_error(self):
        assert issubclass(MessageTooLong, ValueError)

    def test_default_bound_takes_a_one_mib_message(self):
        big = bytes(range(256)).replace(b";", b":") * 4096
        assert len(big) == 1024 * 1024
        decoder = Decoder()
        out = []
        for start in range(0, len(big), 65536):
            out.extend(decoder.feed(big[start : start + 65536]))
        out.extend(decoder.feed(b";"))
        assert out == [big]


class TestEncoderRefuses:
    @pytest.mark.parametrize(
        ("separator", "msg"),
        [
            (b";", b"a;b"),
            (b";", b";"),
            (b";", b"trailing;"),
            (b"end;", b"the end; of it"),
            (b"end;", b"end;"),
            # With a self-overlapping separator, the message's own end followed by the separator would show the
            # separator early.
            (b"aa", b"a"),
            (b"aa", b"ba"),
            (b"aba", b"xab"),
        ],
    )
    def test_message_that_would_read_back_as_more_than_one(self, separator, msg):
        encoder = Encoder(separator)
        with pytest.raises(ValueError, match="separator"):
            encoder.check(msg)
        with pytest.raises(ValueError, match="separator"):
            encoder.encode(msg)

    @pytest.mark.parametrize(
        ("separator", "msg"),
        [
            (b";", b"a:b"),
            (b"end;", b"the end"),
            (b"end;", b"en d;"),
            # "end;" overlaps itself nowhere, so a message may end in any of its prefixes.
            (b"end;", b"legend"),
            (b"end;", b"appen"),
            (b"end;", b"ende"),
            (b"aa", b"ab"),
            (b"aa", b""),
            (b"aba", b"abb"),
        ],
    )
    def test_message_that_reads_back_as_sent(self, separator, msg):
        wire = Encoder(separator).encode(msg)
        assert Decoder(separator).feed(wire) == [msg]

    @pytest.mark.parametrize("msg", ["text", 5, None, [b"a"]])
    def test_non_bytes(self, msg):
        with pytest.raises(TypeError):
            Encoder().check(msg)

    def test_bytearray_is_refused_at_the_call(self):
        # Accepted, it would fail later in the reactor thread, where Twisted writes bytes only.
        with pytest.raises(TypeError, match="convert it with bytes"):
            Encoder().check(bytearray(b"ab"))


class TestBadSettings:
    @pytest.mark.parametrize("separator", [b""])
    def test_empty_separator(self, separator):
        with pytest.raises(ValueError, match="separator"):
            Decoder(separator)
        with pytest.raises(ValueError, match="separator"):
            Encoder(separator)

    @pytest.mark.parametrize("separator", [";", None, 59])
    def test_separator_not_bytes(self, separator):
        with pytest.raises(TypeError):
            Decoder(separator)
        with pytest.raises(TypeError):
            Encoder(separator)

    @pytest.mark.parametrize("max_message", [0, -1, 1.5, True, "10"])
    def test_bad_bound(self, max_message):
        with pytest.raises(ValueError, match="max_message"):
            Decoder(max_message=max_message)
