"""The reactor runner on its own: a fake reactor, a recording thread factory and a recording exit registrar.

The fake reactor runs in whichever thread calls ``run``: calls handed over from other threads queue up, and its
timers run on a ``Clock`` that jumps to the next timer whenever there is nothing else to do, so a call's timeout
or a Deferred fired "later" takes no real time. Like a real reactor, it marks its thread as Twisted's I/O
thread when it starts; the fixture puts that mark back afterwards.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import Clock
from twisted.python import threadable

import leads_twisted.logger
from leads_twisted.comm.reactor_thread import (
    ExitRegistrar,
    ReactorCallTimeout,
    ReactorRunner,
    ReactorThreadError,
    ThreadFactory,
)

#: How long any wait here may take before the test fails.
WAIT = 10.0


class FakeReactor:
    """What the runner uses of a reactor: ``running``, ``callWhenRunning``, ``callFromThread``, ``callLater``,
    ``run`` and ``stop``; time is virtual (see the module's docstring)."""

    def __init__(self) -> None:
        self.running = False
        self.clock = Clock()
        self.runs: list[bool] = []
        #: Let time jump to the next timer when there is nothing else to do (else timers wait for the test).
        self.advance_when_idle = True
        self.errors: list[BaseException] = []
        self._work: queue.Queue[Callable[[], object]] = queue.Queue()
        self._when_running: list[Callable[[], object]] = []

    def callWhenRunning(self, function: Callable[..., object], *args: object) -> None:
        if self.running:
            function(*args)
        else:
            self._when_running.append(partial(function, *args))

    def callFromThread(self, function: Callable[..., object], *args: object) -> None:
        self._work.put(partial(function, *args))

    def callLater(self, delay: float, function: Callable[..., object], *args: object) -> IDelayedCall:
        return self.clock.callLater(delay, function, *args)

    def stop(self) -> None:
        self.running = False

    def run(self, installSignalHandlers: bool = True) -> None:
        self.runs.append(installSignalHandlers)
        threadable.registerAsIOThread()
        self.running = True
        for function in self._when_running:
            function()
        while self.running:
            try:
                work = self._work.get_nowait()
            except queue.Empty:
                timers = self.clock.getDelayedCalls()
                if timers and self.advance_when_idle:
                    self.clock.advance(min(timer.getTime() for timer in timers) - self.clock.seconds())
                    continue
                work = self._work.get(timeout=WAIT)  # nothing for WAIT s: queue.Empty ends the fake reactor
            try:
                work()
            except Exception as error:  # a real reactor logs it and goes on
                self.errors.append(error)


class Threads:
    """A thread factory that makes real threads and keeps them; ``hold`` keeps their bodies from starting."""

    def __init__(self) -> None:
        self.made: list[threading.Thread] = []
        self.hold = threading.Event()
        self.hold.set()

    def __call__(self, *, target: Callable[[], None], name: str, daemon: bool) -> threading.Thread:
        def held() -> None:
            if self.hold.wait(WAIT):
                target()

        thread = threading.Thread(target=held, name=name, daemon=daemon)
        self.made.append(thread)
        return thread


class ExitHooks:
    """An exit registrar that keeps what it is given, for the test to run as the interpreter would at exit."""

    def __init__(self) -> None:
        self.registered: list[Callable[[], None]] = []

    def __call__(self, function: Callable[[], None]) -> object:
        self.registered.append(function)
        return function

    def run(self) -> None:
        for function in reversed(self.registered):
            function()


class Rig:
    """A runner with its fake reactor, thread factory and exit registrar."""

    def __init__(self) -> None:
        self.reactor = FakeReactor()
        self.threads = Threads()
        self.exits = ExitHooks()
        thread_factory: ThreadFactory = self.threads
        register_exit: ExitRegistrar = self.exits
        self.runner = ReactorRunner(self.reactor, thread_factory=thread_factory, register_exit=register_exit)

    def stop(self) -> None:
        """Stop the reactor if it still runs, and wait for every thread the runner made."""
        if self.reactor.running:
            self.reactor.callFromThread(self.reactor.stop)
        for thread in self.threads.made:
            thread.join(WAIT)
            assert not thread.is_alive(), "the reactor thread did not end"


@pytest.fixture
def outputs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Log output set up by the runner (recorded, not done: the test process keeps its own logging)."""
    started: list[str] = []
    monkeypatch.setattr(leads_twisted.logger, "ensure_output", lambda: started.append("stdout"))
    return started


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch, outputs: list[str]) -> Iterator[Rig]:
    # No thread is the reactor's until a fake reactor runs; whatever was marked before is put back after.
    monkeypatch.setattr(threadable, "ioThread", None)
    made = Rig()
    yield made
    made.stop()
    assert made.reactor.errors == []


# Starting


def test_ensure_running_starts_one_thread_and_registers_the_exit_hook_once(rig: Rig, outputs: list[str]) -> None:
    rig.runner.ensure_running()
    rig.runner.ensure_running()
    assert len(rig.threads.made) == 1
    assert rig.threads.made[0].daemon
    assert len(rig.exits.registered) == 1
    assert rig.reactor.runs == [False], "run once, without signal handlers (the main thread keeps Ctrl-C)"
    assert outputs == ["stdout"]


def test_ensure_running_from_several_threads_at_once_starts_one_thread(rig: Rig) -> None:
    """The reactor thread is held back until seven of eight callers have returned: they must not start their own
    (nor wait for one: only the caller that started the thread waits for the reactor to run)."""
    rig.threads.hold.clear()
    together = threading.Barrier(8, timeout=WAIT)
    returned: queue.Queue[str] = queue.Queue()

    def start() -> None:
        together.wait()
        rig.runner.ensure_running()
        returned.put("ok")

    threads = [threading.Thread(target=start, daemon=True) for _ in range(8)]
    for thread in threads:
        thread.start()
    for _ in range(7):
        assert returned.get(timeout=WAIT) == "ok"
    assert len(rig.threads.made) == 1
    rig.threads.hold.set()
    assert returned.get(timeout=WAIT) == "ok"
    for thread in threads:
        thread.join(WAIT)
    assert len(rig.threads.made) == 1
    assert len(rig.exits.registered) == 1
    assert rig.runner.call(succeed, "up") == "up"


def test_a_reactor_already_running_is_used_as_it_is(rig: Rig, outputs: list[str]) -> None:
    """A host program (twistd, a Twisted program) runs the reactor in a thread of its own."""
    up = threading.Event()
    rig.reactor.callWhenRunning(up.set)
    host = threading.Thread(target=rig.reactor.run, daemon=True)
    host.start()
    assert up.wait(WAIT)
    try:
        rig.runner.ensure_running()
        assert rig.runner.call(succeed, 7) == 7
        assert rig.threads.made == []
        assert rig.exits.registered == [], "the host program decides when its reactor ends"
        assert outputs == [], "the host program decides where its log goes"
    finally:
        rig.reactor.callFromThread(rig.reactor.stop)
        host.join(WAIT)


# Calls


def test_call_returns_what_the_deferred_gives_and_waits_for_it(rig: Rig) -> None:
    def later(value: str) -> Deferred[str]:
        result: Deferred[str] = Deferred()
        rig.reactor.callLater(5.0, result.callback, value)
        return result

    assert rig.runner.call(later, "done") == "done"
    assert rig.runner.call(succeed, 42) == 42
    assert rig.reactor.clock.seconds() == 5.0


def test_call_runs_the_function_in_the_reactor_thread(rig: Rig) -> None:
    def where() -> Deferred[bool]:
        return succeed(rig.runner.in_reactor_thread())

    assert rig.runner.call(where) is True
    assert not rig.runner.in_reactor_thread()


def test_call_raises_the_failure_of_the_deferred(rig: Rig) -> None:
    def broken() -> Deferred[None]:
        raise LookupError("raised in the reactor thread")

    with pytest.raises(ValueError, match=r"^no such link$"):
        rig.runner.call(fail, ValueError("no such link"))
    with pytest.raises(LookupError, match="raised in the reactor thread"):
        rig.runner.call(broken)


def test_call_gives_up_after_its_timeout(rig: Rig) -> None:
    def never() -> Deferred[None]:
        return Deferred()

    with pytest.raises(ReactorCallTimeout, match=r"'never' in 5\.0 s"):
        rig.runner.call(never, timeout=5.0)
    assert rig.reactor.clock.seconds() == 5.0
    assert issubclass(ReactorCallTimeout, TimeoutError)


def test_a_call_that_ends_in_time_cancels_its_timer(rig: Rig) -> None:
    rig.reactor.advance_when_idle = False  # a timer left behind stays pending, for the check below
    assert rig.runner.call(succeed, "quick", timeout=5.0) == "quick"
    assert rig.reactor.clock.getDelayedCalls() == []


def test_call_from_the_reactor_thread_raises_instead_of_deadlocking(rig: Rig) -> None:
    rig.runner.ensure_running()
    outcome: queue.Queue[object] = queue.Queue()

    def from_a_callback() -> None:
        try:
            outcome.put(rig.runner.call(succeed, "deadlock"))
        except ReactorThreadError as error:
            outcome.put(error)

    rig.reactor.callFromThread(from_a_callback)
    error = outcome.get(timeout=WAIT)
    assert isinstance(error, ReactorThreadError)
    assert "from the reactor thread" in str(error)


# Exit


def test_at_exit_hooks_run_in_order_in_the_reactor_thread_and_exit_waits_for_them(rig: Rig) -> None:
    ran: list[tuple[str, bool]] = []

    def hook(name: str, delay: float | None = None) -> Callable[[], Deferred[Any] | None]:
        def close() -> Deferred[Any] | None:
            ran.append((name, rig.runner.in_reactor_thread()))
            if delay is None:
                return None
            closed: Deferred[None] = Deferred()

            def done() -> None:
                ran.append((name + " closed", rig.runner.in_reactor_thread()))
                closed.callback(None)

            rig.reactor.callLater(delay, done)
            return closed

        return close

    def broken() -> None:
        raise RuntimeError("this hook fails; the others still run")

    first, forgotten, slow, last = hook("first"), hook("forgotten"), hook("slow", 3.0), hook("last")
    for each in (first, forgotten, broken, slow, last):
        rig.runner.at_exit(each)
    rig.runner.forget_at_exit(forgotten)
    rig.runner.forget_at_exit(forgotten)  # twice: nothing left to drop, no error
    rig.runner.ensure_running()
    assert ran == []
    rig.exits.run()
    assert ran == [("first", True), ("slow", True), ("last", True), ("slow closed", True)]
    thread = rig.threads.made[0]
    thread.join(WAIT)
    assert not thread.is_alive(), "exit stops the reactor and waits for its thread"
    assert not rig.reactor.running


def test_exit_after_the_reactor_ended_runs_no_hook(rig: Rig) -> None:
    ran: list[str] = []

    def hook() -> None:
        ran.append("hook")

    rig.runner.at_exit(hook)
    rig.runner.ensure_running()
    rig.reactor.callFromThread(rig.reactor.stop)
    rig.threads.made[0].join(WAIT)
    rig.exits.run()  # nothing is left to run the hooks in, and exit does not wait for it
    assert ran == []


def test_once_the_reactor_has_ended_nothing_can_start_it_again(rig: Rig) -> None:
    rig.runner.ensure_running()
    rig.exits.run()
    assert not rig.threads.made[0].is_alive()
    with pytest.raises(ReactorThreadError, match="the reactor thread has stopped"):
        rig.runner.ensure_running()
    with pytest.raises(ReactorThreadError, match="the reactor thread has stopped"):
        rig.runner.call(succeed, "too late")
    assert len(rig.threads.made) == 1
    assert rig.reactor.runs == [False]
