"""The reactor runner of a daemon: the reactor runs in the thread that built the service (twistd, twist)."""

from __future__ import annotations

from threading import get_ident
from typing import Any

from leads_twisted.comm.reactor_thread import ReactorRunner, ReactorThreadError


class HostRunner(ReactorRunner):
    """Runs nothing itself: ``twistd`` or ``twist`` runs the reactor in the thread that made this runner.

    So the library sees that thread as the reactor thread from the start, before the reactor runs, and opens
    its ports there (before privileges are dropped) without claiming the whole process's I/O thread.
    """

    def __init__(self, reactor: Any) -> None:
        super().__init__(reactor)
        self._host_thread: int = get_ident()

    def in_reactor_thread(self) -> bool:
        return get_ident() == self._host_thread

    def ensure_running(self) -> None:
        if not self.in_reactor_thread():
            raise ReactorThreadError("the daemon's reactor is run by its host program; call it from that thread")
