"""``ReactorHandoff``, a hub's own way across threads: order, closes, refusals, and no lost wake-up."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from leads_twisted.comm.handoff import ReactorHandoff


class Target:
    """Records what the handoff delivers, as the reactor thread would see it."""

    def __init__(self, log: list[object], name: str) -> None:
        self.log = log
        self.name = name

    def write_messages(self, messages: list[bytes]) -> None:
        self.log.extend((self.name, m) for m in messages)

    def close_now(self) -> None:
        self.log.append((self.name, "close"))


def handoff() -> tuple[ReactorHandoff, list[Callable[[], None]]]:
    calls: list[Callable[[], None]] = []
    return ReactorHandoff(calls.append), calls


def test_everything_handed_over_is_delivered_in_order_by_the_first_call_that_runs() -> None:
    carrier, calls = handoff()
    log: list[object] = []
    a, b = Target(log, "a"), Target(log, "b")
    carrier.put(a, b"1")
    carrier.put(b, b"2")
    carrier.put_close(a)
    carrier.put(b, b"3")
    assert log == [] and len(calls) == 4  # nothing runs outside the reactor thread
    calls[0]()
    assert log == [("a", b"1"), ("b", b"2"), ("a", "close"), ("b", b"3")]
    for call in calls[1:]:
        call()  # the later wake-ups find nothing left
    assert len(log) == 4


def test_a_refusal_raises_for_every_later_send_until_accepted() -> None:
    carrier, _calls = handoff()
    log: list[object] = []
    target = Target(log, "t")
    carrier.put_close(target, refuse="the client is closed")
    assert carrier.refusing()
    with pytest.raises(OSError, match="the client is closed"):
        carrier.put(target, b"late")
    carrier.accept()
    carrier.put(target, b"again")
    carrier.flush()
    assert log == [("t", "close"), ("t", b"again")]


def test_an_interrupt_in_the_wake_up_still_leaves_one_scheduled() -> None:
    """A ``KeyboardInterrupt`` landing in ``callFromThread`` reaches the sender, and the message it queued still
    gets its wake-up: the handoff makes another on its way out."""
    log: list[object] = []
    calls: list[Callable[[], None]] = []

    def interrupted_once(call: Callable[[], None]) -> None:
        if not calls:
            calls.append(call)
            raise KeyboardInterrupt
        calls.append(call)

    carrier = ReactorHandoff(interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        carrier.put(Target(log, "t"), b"kept")
    assert len(calls) == 2  # the interrupted wake-up, and the one made up for it
    calls[1]()
    assert log == [("t", b"kept")]


def test_a_delivery_that_fails_is_logged_and_the_rest_still_go() -> None:
    log: list[object] = []

    class Broken(Target):
        def write_messages(self, messages: list[bytes]) -> None:
            raise RuntimeError("broken target")

    carrier, calls = handoff()
    carrier.put(Broken(log, "x"), b"lost")
    carrier.put(Target(log, "t"), b"delivered")
    calls[0]()
    assert log == [("t", b"delivered")]
