"""``TurnWriter``: one write per link per reactor turn, in order; flushed before a close, dropped after an end."""

from __future__ import annotations

from twisted.internet.task import Clock

from leads_twisted.websocket.turn_writer import TurnWriter


class Wire:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def put_on_wire(self, data: bytes) -> None:
        self.writes.append(data)


def test_one_write_per_link_per_turn_in_order():
    clock = Clock()
    writer = TurnWriter(clock)
    a, b = Wire(), Wire()
    for data in (b"1", b"2", b"3"):
        writer.write(a, data)
    writer.write(b, b"x")
    assert a.writes == [] and len(clock.getDelayedCalls()) == 1, "one call for the turn, whatever the links"
    clock.advance(0)
    assert a.writes == [b"123"] and b.writes == [b"x"]
    writer.write(a, b"4")
    clock.advance(0)
    assert a.writes == [b"123", b"4"]


def test_flush_before_a_close_and_forget_after_an_end():
    clock = Clock()
    writer = TurnWriter(clock)
    closing, gone = Wire(), Wire()
    writer.write(closing, b"last")
    writer.write(gone, b"lost")
    writer.flush(closing)
    assert closing.writes == [b"last"]
    writer.forget(gone)
    clock.advance(0)
    assert closing.writes == [b"last"] and gone.writes == []
