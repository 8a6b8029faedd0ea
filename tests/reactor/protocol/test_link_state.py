"""A link's one state: it only moves forward, whichever thread moves it; ``closed()`` reads it; a close asked
from a thread reaches the reactor even when an interrupt lands as the state moves."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import pytest_twisted

from leads_twisted.comm.link_state import CLOSE_ASKED, CLOSING, LOST, OPEN, LinkState, StatefulLink

from .conftest import Recorder
from .test_thread_sends import in_thread


class Link(StatefulLink):
    def __init__(self) -> None:
        self.state = OPEN


def test_moves_go_forward_only() -> None:
    link = Link()
    assert link.move_to(CLOSE_ASKED) and link.state is CLOSE_ASKED
    assert not link.move_to(CLOSE_ASKED)
    assert link.move_to(LOST) and link.state is LOST
    # A thread's close that comes after the reactor saw the link lost does not bring it back to life.
    assert not link.move_to(CLOSE_ASKED) and not link.move_to(CLOSING) and link.state is LOST


def test_closed_and_writing_say_what_each_state_allows() -> None:
    assert [state.closed() for state in LinkState] == [False, True, True, True]
    assert [state.writing() for state in LinkState] == [True, True, False, False]


def test_racing_moves_end_in_the_furthest_state() -> None:
    for _ in range(200):
        link = Link()
        start = threading.Barrier(2)

        def move(state: LinkState, link: Link = link, start: threading.Barrier = start) -> None:
            start.wait(5)
            link.move_to(state)

        threads = [threading.Thread(target=move, args=(state,)) for state in (CLOSE_ASKED, LOST)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
        assert link.state is LOST


@pytest_twisted.ensureDeferred
async def test_a_thread_close_interrupted_as_the_state_moves_still_closes_the_link(net) -> None:
    connection, peer = await net.linked_peer(Recorder())
    move_to = connection.move_to

    def interrupted(state: LinkState) -> Any:
        del connection.move_to  # once: the reactor's own moves are not interrupted
        move_to(state)
        raise KeyboardInterrupt  # as if Ctrl-C landed as move_to returned

    connection.move_to = interrupted

    def close() -> str:
        try:
            connection.close()
        except KeyboardInterrupt:
            return "interrupted"
        return "returned"

    assert await in_thread(close) == "interrupted"
    assert connection.closed()
    with pytest.raises(OSError, match="closed"):
        connection.send(b"too late")
    await peer.when_lost()
    assert peer.messages == [b"disconnect"]
