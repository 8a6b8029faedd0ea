"""The one reactor of the process, run for library users in a dedicated daemon thread.

Every server and client shares it. It is started on first use with ``installSignalHandlers=False``; if the
reactor is already running (under ``twistd``, or in a Twisted program), it is used as it is and no thread is
started. At interpreter exit, open services are closed (peers are told ``disconnect``) and then the reactor is
stopped, while its thread is still alive to do the work; exit waits until every link has drained or been cut.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from collections.abc import Callable
from threading import get_ident
from typing import Any, Protocol, TypeVar, cast

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall
from twisted.python import threadable
from twisted.python.failure import Failure

from leads_twisted.comm.errors import ReactorThreadError as ReactorThreadError  # also importable from here, as before
from leads_twisted.comm.latch import Latch
from leads_twisted.comm.reactor_types import global_reactor
from leads_twisted.comm.write_batch import WriteBatch

T = TypeVar("T")

#: How long a blocking call waits for the reactor before giving up with ``TimeoutError``.
DEFAULT_TIMEOUT: float = 30.0


class ReactorCallTimeout(TimeoutError):
    """A call handed to the reactor thread did not finish in the time it was given."""


class ReactorThread(Protocol):
    """The thread the runner starts for the reactor: what it does with it."""

    def start(self) -> None: ...

    def join(self, timeout: float | None = None) -> None: ...


class ThreadFactory(Protocol):
    """Makes the reactor's thread (``threading.Thread`` by default); it must not start it."""

    def __call__(self, *, target: Callable[[], None], name: str, daemon: bool) -> ReactorThread: ...


#: Registers a function to run at interpreter exit (``atexit.register`` by default).
ExitRegistrar = Callable[[Callable[[], None]], object]

#: What runs at interpreter exit: a service's ``close_in_reactor`` (Twisted's ``Deferred`` is invariant in what it
#: fires with, so the hooks' Deferreds are taken as they come).
ExitHook = Callable[[], "Deferred[Any] | None"]


class ReactorRunner:
    """Starts the reactor once, in its own thread unless it already runs, and runs calls in it.

    ``thread_factory`` and ``register_exit`` are where the runner meets the process (its one thread, its one
    exit hook); tests give their own to drive a runner without a real reactor.
    """

    def __init__(
        self,
        reactor: Any = None,
        *,
        thread_factory: ThreadFactory = threading.Thread,
        register_exit: ExitRegistrar = atexit.register,
    ) -> None:
        # Any: the runner calls run(installSignalHandlers=...), which IReactorCore does not declare, and tests
        # give it in-memory reactors without threads.
        self._given_reactor: Any = reactor
        self._thread_factory = thread_factory
        self._register_exit_hook = register_exit
        self._lock = threading.Lock()
        self._thread: ReactorThread | None = None
        self._shutdown_hooks: list[ExitHook] = []
        self._exit_registered = False
        #: Set by the reactor thread when its reactor has stopped (``_run_reactor``).
        self._reactor_ended = False
        #: Holds the writes made while the reactor handles a batch of work, for one write per link at its end.
        self.write_batch: WriteBatch = WriteBatch()

    @property
    def reactor(self) -> Any:
        """The reactor given to the runner, else the global one (installed as the platform default on first use)."""
        if self._given_reactor is not None:
            return self._given_reactor
        return global_reactor()

    def in_reactor_thread(self) -> bool:
        """True in the thread that runs this runner's reactor."""
        return get_ident() == threadable.ioThread

    def ensure_running(self) -> None:
        """Make sure the reactor runs, starting the dedicated thread if nobody runs it yet."""
        reactor = self.reactor
        with self._lock:
            # Not ``Thread.is_alive()``: in CPython 3.11 a KeyboardInterrupt landing inside it marks the running
            # thread as stopped for good (its clean-up releases the thread's own state lock).
            if self._thread is not None and self._reactor_ended:
                raise ReactorThreadError("the reactor thread has stopped (the interpreter is exiting); nothing can run")
            if reactor.running or self._thread is not None:
                return
            from leads_twisted.logger import ensure_output

            ensure_output()
            started = threading.Event()
            reactor.callWhenRunning(started.set)
            thread = self._thread_factory(target=self._run_reactor, name="leads_twisted reactor", daemon=True)
            thread.start()
            self._thread = thread
            self._register_exit()
        if not started.wait(DEFAULT_TIMEOUT):
            raise ReactorThreadError(f"the reactor thread did not start within {DEFAULT_TIMEOUT:.0f} s")

    def _run_reactor(self) -> None:
        """The reactor thread's body: run the reactor, and say when it has ended."""
        try:
            self.reactor.run(installSignalHandlers=False)
        finally:
            self._reactor_ended = True

    def call(self, function: Callable[..., Deferred[T]], *args: Any, timeout: float | None = None) -> T:
        """Run ``function`` in the reactor thread and wait for the result of the Deferred it returns.

        Raises ``ReactorThreadError`` if called from the reactor thread, where waiting would deadlock, and
        ``TimeoutError`` if ``timeout`` seconds pass first.
        """
        if self.in_reactor_thread():
            raise ReactorThreadError(
                "a blocking call was made from the reactor thread (inside a callback), where it would deadlock; "
                "use parallel=True there, or make the call from another thread"
            )
        self.ensure_running()
        # A Latch, not an Event: Ctrl-C can end the wait at any point without wedging a lock the reactor needs.
        # The timeout is a reactor timer that opens the latch with no outcome.
        done = Latch()
        outcome: list[object] = []
        timer: list[IDelayedCall] = []

        def settle(result: object) -> None:
            outcome.append(result)
            if timer and timer[0].active():
                timer[0].cancel()
            done.open()

        def run() -> None:
            if timeout is not None:
                timer.append(self.reactor.callLater(timeout, done.open))
            maybeDeferred(function, *args).addBoth(settle)

        self.reactor.callFromThread(run)
        done.wait()
        if not outcome:
            raise ReactorCallTimeout(
                f"the reactor did not finish {getattr(function, '__name__', function)!r} in {timeout} s"
            )
        result = outcome[0]
        if isinstance(result, Failure):
            result.raiseException()
        return cast(T, result)  # what the function's Deferred fired with

    def at_exit(self, hook: ExitHook) -> None:
        """Run ``hook`` in the reactor thread at interpreter exit, before the reactor stops."""
        self._shutdown_hooks.append(hook)

    def forget_at_exit(self, hook: ExitHook) -> None:
        """Drop a hook given to ``at_exit`` (a service closed before exit)."""
        with contextlib.suppress(ValueError):
            self._shutdown_hooks.remove(hook)

    def _register_exit(self) -> None:
        if not self._exit_registered:
            self._exit_registered = True
            self._register_exit_hook(self._shutdown)

    def _shutdown(self, timeout: float | None = None) -> None:
        """Close what is still open, then stop our reactor thread.

        Closing waits for every link to drain while its peer reads (each link is cut once its peer takes
        nothing for ``close_timeout`` seconds), so by default it has no bound of its own; ``timeout`` gives one.
        """
        thread = self._thread
        if thread is None or self._reactor_ended:
            return
        hooks = list(self._shutdown_hooks)
        self._shutdown_hooks.clear()

        def close_all() -> Deferred[Any]:
            from twisted.internet.defer import DeferredList

            return DeferredList([maybeDeferred(hook) for hook in hooks], consumeErrors=True)

        with contextlib.suppress(ReactorCallTimeout, ReactorThreadError):
            self.call(close_all, timeout=timeout)
        self.reactor.callFromThread(self.reactor.stop)
        thread.join(DEFAULT_TIMEOUT)


#: The runner shared by every service of the process.
runner: ReactorRunner = ReactorRunner()
