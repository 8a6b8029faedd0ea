"""Code put in front of the scripts that exercise the threaded API in a subprocess.

It imports nothing from leads_twisted into the script's names, so each script (and each spec example) says
what it uses. It gives a script ``Events``, a thread-safe recording ``Callback`` that can be waited on with a
timeout, ``result(**data)``, which prints the one ``RESULT`` line that the test reads, ``say`` for other lines,
and ``watchdog``.
"""

import textwrap

PRELUDE = r'''
import json
import os
import sys
import threading
import time

import leads_twisted.comm as _comm


class Events(_comm.Callback):
    """Records every callback, in order, from the reactor thread; ``wait`` blocks another thread until a
    condition holds, or exits the script with an error after ``timeout`` seconds."""

    def __init__(self):
        super().__init__()
        self.cond = threading.Condition()
        self.events = []
        self.threads = set()

    def add(self, kind, detail=None):
        with self.cond:
            self.events.append((kind, detail))
            self.threads.add(threading.current_thread().name)
            self.cond.notify_all()

    def on_initialize(self, service):
        self.add("initialize")

    def on_connect(self, service, connection):
        self.add("connect", connection)

    def on_receive(self, service, msg):
        self.add("receive", msg)

    def on_fail(self, service, error):
        self.add("fail", error)

    def on_disconnect(self, service, connection):
        self.add("disconnect", connection)

    def of(self, kind):
        with self.cond:
            return [detail for k, detail in self.events if k == kind]

    def kinds(self):
        with self.cond:
            return [k for k, _ in self.events]

    def received(self):
        return self.of("receive")

    def wait(self, predicate, what, timeout=10.0):
        with self.cond:
            if not self.cond.wait_for(predicate, timeout):
                shown = [(k, d if not isinstance(d, bytes) else d[:30]) for k, d in self.events[-10:]]
                sys.exit(f"timed out after {timeout}s waiting for {what}; last events: {shown}")

    def wait_count(self, kind, count, timeout=10.0):
        self.wait(lambda: sum(1 for k, _ in self.events if k == kind) >= count, f"{count} x {kind}", timeout)


_say_lock = threading.Lock()


def say(*words):
    """Print one line in one write: the reactor thread and the main thread both print, and ``print`` writes a
    line's text and its newline separately, so two threads' lines could otherwise run together."""
    with _say_lock:
        sys.stdout.write(" ".join(str(word) for word in words) + "\n")
        sys.stdout.flush()


def result(**data):
    say("RESULT " + json.dumps(data))


def watchdog(seconds):
    """End this process if it is still running after ``seconds``: a hang fails fast, with a message."""

    def expire():
        print(f"WATCHDOG: still running after {seconds}s", file=sys.stderr, flush=True)
        os._exit(86)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
'''


def script(body: str) -> str:
    """The prelude followed by ``body``, dedented."""
    return PRELUDE + "\n" + textwrap.dedent(body)
