"""The thread facade: the ``leads.comm`` calls a plain Python program makes, from any thread, over a hub.

``Service`` puts on top of a ``Hub`` what threads need: the process's one reactor, run in a thread of its own
(``ReactorRunner``), the bounded ``Outbox`` as the hub's handoff, and the blocking ``start``, ``run`` and
``close``. ``Server`` and ``Client`` are this facade over ``ServerHub`` and ``ClientHub``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, Self

from leads_twisted.comm.hub import Hub
from leads_twisted.comm.latch import Latch
from leads_twisted.comm.outbox import Outbox
from leads_twisted.comm.reactor_thread import ReactorCallTimeout, ReactorRunner, ReactorThreadError
from leads_twisted.comm.reactor_thread import runner as shared_runner
from leads_twisted.comm.reactor_types import IHubReactor

#: How long a blocking start of a server waits to be listening (a client waits its connect timeout and more).
START_TIMEOUT_SECONDS: float = 30.0


#: What wires a hub to its reactor: the facade sets these itself, from its runner.
_HUB_WIRING = frozenset({"reactor", "handoff", "write_batch"})


class Service(Hub):
    """A server or a client: started once with ``start``, reported through its ``Callback``, closed once.

    Its public methods may be called from any thread; callbacks run in the reactor thread.
    """

    _runner: ReactorRunner
    _finished: Latch

    def _use_runner(self, runner: ReactorRunner | None, max_queued: int, options: Iterable[str] = ()) -> Outbox:
        """Take ``runner`` (the process's shared one by default) and make the outbox to hand the hub as its
        handoff; a subclass calls it before the hub's ``__init__``, with the names of the options it was given:
        a hub's wiring among them raises ``TypeError`` rather than being quietly overridden."""
        wired = sorted(_HUB_WIRING.intersection(options))
        if wired:
            name = type(self).__name__
            raise TypeError(
                f"{name}() has no option {wired[0]!r}: it runs on its runner's reactor (runner=); "
                f"a {name}Hub takes a reactor of your own"
            )
        self._runner = runner if runner is not None else shared_runner
        self._finished = Latch()
        return Outbox(self.call_from_thread, max_queued, self._runner.write_batch)

    @property
    def reactor(self) -> IHubReactor:
        """The reactor of the service's runner."""
        reactor: IHubReactor = self._runner.reactor
        return reactor

    def in_reactor_thread(self) -> bool:
        return self._runner.in_reactor_thread()

    def start(self, parallel: bool = False, *args: Any, **kwargs: Any) -> Self:
        """Start the service; with ``parallel=False`` block until it closes, else return once it is up.

        Raises ``OSError`` (``ConnectionRefusedError``, ...) if it cannot start, after ``on_fail``;
        ``TimeoutError`` if it did not come up in time; ``RuntimeError`` if it was started before. Inside a
        callback (the reactor thread) it returns at once, and a failure reaches ``on_fail`` only.
        """
        blocking_here = self.in_reactor_thread()
        if blocking_here and not parallel:
            raise ReactorThreadError(
                "start(parallel=False) inside a callback would block the reactor thread forever; use parallel=True"
            )
        self._claim_start()
        if blocking_here:
            # Nothing can be waited for here: a failure reaches on_fail and the log only.
            self._begin(*args, **kwargs).addErrback(lambda _: None)
            return self
        timeout = self._start_timeout()
        self._life.caller_gets_start_failure = True  # raised below: a log line too would say it twice
        try:
            self._runner.call(functools.partial(self._begin, *args, **kwargs), timeout=timeout)
        except KeyboardInterrupt:
            # Ctrl-C while still listening or connecting: close what was begun, as after start-up.
            self.close()
            raise
        except ReactorCallTimeout:
            self.close()
            raise TimeoutError(f"{self!r} did not come up within {timeout:.0f} s; it has been closed") from None
        if not parallel:
            self._wait_until_finished()
        return self

    def run(self, *args: Any, **kwargs: Any) -> None:
        """Serve in the calling thread until the service closes: ``start(False, ...)``, as in LEADS."""
        self.start(False, *args, **kwargs)

    def close(self) -> None:
        """Tell every peer ``disconnect`` after what was sent before, and end the service; safe to repeat.

        Everything sent before is delivered while the peers keep reading; a peer that takes nothing for
        ``close_timeout`` seconds is cut, and ``on_fail`` says what it did not get (``CloseCut``). From another
        thread it waits until every link has ended, however long the peers take to read (Ctrl-C ends the wait,
        not the closing); inside a callback it only begins the closing.
        """
        super().close()
        if not self.in_reactor_thread():
            self._finished.wait()

    def _check_start_thread(self) -> None:
        """``start_in_reactor`` is for Twisted programs, in the thread of the service's runner."""
        if not self.in_reactor_thread():
            raise ReactorThreadError("start_in_reactor() belongs in the reactor thread; use start() elsewhere")

    def _start_timeout(self) -> float:
        """How long a blocking start waits for the service to come up before it gives up."""
        return START_TIMEOUT_SECONDS

    def _wait_until_finished(self) -> None:
        try:
            self._finished.wait()
        except KeyboardInterrupt:
            self.close()
            raise

    def _began(self) -> None:
        self._runner.at_exit(self.close_in_reactor)

    def _ended(self) -> None:
        self._runner.forget_at_exit(self.close_in_reactor)
        self._finished.open()
