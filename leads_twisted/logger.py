"""``L``, the LEADS logger, writing through ``twisted.logger`` so a daemon's log shows what a callback says.

In a program that has not set up Twisted logging itself (a plain script), the first message sets up a plain
stdout observer, as LEADS printed to stdout; under ``twistd`` the daemon's own log target is used instead.
"""

from __future__ import annotations

import enum
import sys
import threading
from collections import deque
from typing import Any

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    globalLogBeginner,
)
from zope.interface import provider


class Level(enum.IntEnum):
    """The levels of ``L``, lowest first."""

    DEBUG = 0
    INFO = 1
    WARN = 2
    ERROR = 3


_TWISTED_LEVEL: dict[Level, LogLevel] = {
    Level.DEBUG: LogLevel.debug,
    Level.INFO: LogLevel.info,
    Level.WARN: LogLevel.warn,
    Level.ERROR: LogLevel.error,
}

_LEVEL_NAME: dict[LogLevel, str] = {
    LogLevel.debug: "DEBUG",
    LogLevel.info: "INFO",
    LogLevel.warn: "WARN",
    LogLevel.error: "ERROR",
    LogLevel.critical: "CRITICAL",
}

NAMESPACE: str = "leads"

_output_lock = threading.Lock()
_output_decided = False


def leave_output_to_host() -> None:
    """Declare that the host program (``twistd``, say) sets up log output, so ``L`` adds no observer."""
    global _output_decided
    _output_decided = True


def _twisted_logging_has_begun() -> bool:
    return getattr(globalLogBeginner, "_temporaryObserver", None) is None


def ensure_output() -> None:
    """Print log events to stdout, once, unless the program set up Twisted logging already."""
    global _output_decided
    if _output_decided:
        return
    with _output_lock:
        if _output_decided:
            return
        _output_decided = True
        if _twisted_logging_has_begun():
            return
        predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)
        predicate.setLogLevelForNamespace(NAMESPACE, LogLevel.debug)
        predicate.setLogLevelForNamespace("leads_twisted", LogLevel.info)
        observer = FilteringLogObserver(_stdout_observer, [predicate])
        globalLogBeginner.beginLoggingTo([observer], discardBuffer=False, redirectStandardIO=False)


@provider(ILogObserver)
def _stdout_observer(event: dict[str, Any]) -> None:
    text = formatEvent(event)
    if "log_failure" in event:
        text = f"{text}\n{event['log_failure'].getTraceback()}"
    level = _LEVEL_NAME.get(event.get("log_level", LogLevel.info), "INFO")
    stream = sys.stdout if stream_is_usable(sys.stdout) else sys.__stdout__
    if stream is not None:
        stream.write(f"[{level}] {text}\n")
        stream.flush()


def stream_is_usable(stream: Any) -> bool:
    """True if ``stream`` can be written to (it may be closed at interpreter exit)."""
    return stream is not None and not getattr(stream, "closed", False)


class LeadsLogger:
    """``debug``, ``info``, ``warn`` and ``error``, each joining its arguments like ``print``.

    ``debug_level`` sets the lowest level that is emitted; the last ten messages are kept for display.
    """

    def __init__(self) -> None:
        self._logger = Logger(namespace=NAMESPACE)
        self._debug_level: Level = Level.DEBUG
        self._history: deque[str] = deque(maxlen=10)

    def debug_level(self, debug_level: Level | None = None) -> Level | None:
        """With an argument, set the lowest level emitted; without, return it."""
        if debug_level is None:
            return self._debug_level
        self._debug_level = Level(debug_level)
        return None

    def history_messages(self) -> tuple[str, ...]:
        """The last messages emitted, oldest first."""
        return tuple(self._history)

    def debug(self, *msg: str, sep: str = " ", end: str = "") -> None:
        self._emit(Level.DEBUG, sep.join(msg) + end)

    def info(self, *msg: str, sep: str = " ", end: str = "") -> None:
        self._emit(Level.INFO, sep.join(msg) + end)

    def warn(self, *msg: str, sep: str = " ", end: str = "") -> None:
        self._emit(Level.WARN, sep.join(msg) + end)

    def error(self, *msg: str, sep: str = " ", end: str = "") -> None:
        self._emit(Level.ERROR, sep.join(msg) + end)

    def _emit(self, level: Level, text: str) -> None:
        if level < self._debug_level:
            return
        self._history.append(text)
        ensure_output()
        self._logger.emit(_TWISTED_LEVEL[level], "{leads_message}", leads_message=text)


L: LeadsLogger = LeadsLogger()

__all__ = ["L", "LeadsLogger", "Level", "ensure_output", "leave_output_to_host"]
