"""A one-way door that threads wait at, which a ``KeyboardInterrupt`` cannot leave half-shut.

``threading.Event.wait`` runs Python code between releasing and re-taking its lock, where an interrupt in the
main thread could leave that lock in the wrong state. Here a wait is ``with lock: pass`` on a lock that is
held until the latch opens: an interrupt either comes before the lock is taken (nothing to undo) or after
``with`` has it (``with`` gives it back).
"""

from __future__ import annotations

import threading


class Latch:
    """Closed until ``open()``; then every ``wait()``, past and future, returns. Thread-safe."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._door = threading.Lock()
        # The door is not a mutex around code: it is held shut, by no thread in particular, until ``open``
        # releases it (under ``_guard``, once). There is no ``with`` to pair it with, and no leak to fear: the lock
        # is new and nobody else holds it, and an interrupt here drops the unfinished latch along with its door.
        self._door.acquire()
        self._open = False

    def is_open(self) -> bool:
        """True once ``open`` has been called."""
        return self._open

    def open(self) -> None:
        """Let every waiter through, now and from now on; calling it again does nothing."""
        if self._open:
            return  # already open for good: no need for the guard
        with self._guard:
            if not self._open:
                self._open = True
                self._door.release()

    def wait(self) -> None:
        """Return once the latch is open; Ctrl-C ends the wait with ``KeyboardInterrupt`` and leaves it intact."""
        if self._open:
            return
        with self._door:
            pass
