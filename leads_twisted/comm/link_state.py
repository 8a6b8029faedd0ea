"""Where one link is in its life: open, closing, or lost, and the one rule for moving between them.

A link only ever moves forward: ``OPEN`` → ``CLOSE_ASKED`` → ``CLOSING`` → ``LOST``, skipping steps as needed.
``close()`` from a user thread makes the link ``CLOSE_ASKED`` at once, so its caller (and every other thread)
sees it closed before the reactor gets to it; every other move is made by the reactor thread. Moves take one
lock shared by all links (they are rare: a few per link's life) so that a thread's ``CLOSE_ASKED`` can never
land on top of the reactor's ``LOST``. Reading the state needs no lock: the send and write paths test it with
one identity comparison against the module's constants (``state is OPEN``): reading a member through the
enum class (``LinkState.OPEN``) costs five times as much on Python 3.11.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from typing import Final

#: Taken by every move of every link's state: moves are rare, and one lock costs no memory per link.
_moves = threading.Lock()


class LinkState(enum.Enum):
    """The life of a link; the values give the order of the moves."""

    #: Up: sends are taken.
    OPEN = 0
    #: ``close()`` was called from another thread: sends are refused, and the reactor has not begun the close.
    #: What was written before still goes out, followed by ``disconnect``.
    CLOSE_ASKED = 1
    #: The reactor is ending the link (gracefully, or by cutting it); nothing more is written to it.
    CLOSING = 2
    #: The transport has ended.
    LOST = 3

    def closed(self) -> bool:
        """True in every state but ``OPEN``: a send would raise ``OSError``."""
        return self is not OPEN

    def writing(self) -> bool:
        """True while the link still writes what the reactor gives it: open, or a close asked for but not begun."""
        return self is OPEN or self is CLOSE_ASKED


#: The states as module constants, for the hot paths' identity tests.
OPEN: Final = LinkState.OPEN
CLOSE_ASKED: Final = LinkState.CLOSE_ASKED
CLOSING: Final = LinkState.CLOSING
LOST: Final = LinkState.LOST


class StatefulLink:
    """A holder of a ``LinkState`` whose moves only go forward, whichever thread makes them.

    Its ``__init__`` sets ``state`` (to ``OPEN``). There is no class-level default on purpose: on Python 3.11
    an instance attribute that shadows a class attribute holding an object of a Python class (an enum member)
    is read without the interpreter's specialisation, about 15 ns slower per read.
    """

    #: Where the link is; read it freely, change it only through ``move_to``.
    state: LinkState

    def move_to(self, state: LinkState) -> bool:
        """Move to ``state`` if that is forward from where the link is; True if it moved. From any thread."""
        with _moves:
            if state.value <= self.state.value:
                return False
            self.state = state
            return True

    def ask_close(self, queue_close: Callable[[], object]) -> None:
        """From another thread: the link is closed to its users at once (``CLOSE_ASKED``), and ``queue_close``
        hands the close itself to the reactor thread. The state is tested afterwards rather than what
        ``move_to`` returned, so that the close is queued also when a KeyboardInterrupt lands as it returns;
        two threads closing at once may queue two closes, and the second does nothing."""
        try:
            self.move_to(CLOSE_ASKED)
        finally:
            if self.state is CLOSE_ASKED:
                queue_close()
