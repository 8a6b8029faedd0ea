"""``L``, the LEADS logger, writing through ``twisted.logger`` so a daemon's log shows what a callback says.

``L`` takes the calls of LEADS 0.9's logger (``sep``, ``end``, ``f=(font, colour, background)`` and the colour
constants) and marks each line as it did: ``[Level.INFO: 1] [caller] [time] message``. In a program that has
not set up Twisted logging itself (a plain script), the first message sets up a stdout observer, as LEADS
printed to stdout, colouring lines on a terminal. Under ``twistd`` the daemon's own log target is used, and
the time in the line is that target's stamp (twistd's, or journald's), not a second one in the text.
"""

from __future__ import annotations

import enum
import os
import sys
import threading
from collections import deque
from datetime import datetime

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogEvent,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    globalLogBeginner,
)
from twisted.logger import Logger as TwistedLogger
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

_LEADS_LEVEL: dict[LogLevel, Level] = {twisted: leads for leads, twisted in _TWISTED_LEVEL.items()}

NAMESPACE: str = "leads"

#: ``(font, colour, background)``, as ``f=`` takes it; ``None`` leaves the terminal's own.
Format = tuple[int, int | None, int | None]

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


def head(level: Level, caller: str) -> str:
    """The start of a marked line: ``[Level.INFO: 1] [caller]``."""
    return f"[{repr(Level(level))[1:-1]}] [{caller}]"


def mark(text: str, level: Level, caller: str, when: datetime | None = None) -> str:
    """A line as LEADS marks it: ``[Level.INFO: 1] [caller] [2026-01-01 12:00:00.000000] text``."""
    return f"{head(level, caller)} [{when or datetime.now()}] {text}"


def colour(text: str, style: Format) -> str:
    """``text`` between the ANSI codes of ``style``, as LEADS wrote them."""
    font, fore, back = style
    codes = f"{font}{f';{fore}' if fore else ''}{f';{back + 10}' if back else ''}"
    return f"\033[{codes}m{text}\033[0m"


def _wants_colour(stream: object) -> bool:
    """Colour a terminal only: a journal or a file would keep the escape codes as text."""
    return "NO_COLOR" not in os.environ and bool(getattr(stream, "isatty", lambda: False)())


@provider(ILogObserver)
def _stdout_observer(event: LogEvent) -> None:
    if "leads_line" in event:  # ``L.print``: a line marked by its caller
        line = event["leads_line"]
    elif "leads_head" in event:  # L's events: the mark carries the time of the call, as in LEADS
        line = f"{event['leads_head']} [{event['leads_time']}] {event['leads_text']}"
    else:  # the library's own events, marked like L's with their namespace as the caller
        text = formatEvent(event)
        if "log_failure" in event:
            text = f"{text}\n{event['log_failure'].getTraceback()}"
        level = _LEADS_LEVEL.get(event.get("log_level", LogLevel.info), Level.ERROR)
        when = datetime.fromtimestamp(event.get("log_time") or datetime.now().timestamp())
        line = mark(text, level, event.get("log_namespace", "?"), when)
    stream = sys.stdout if stream_is_usable(sys.stdout) else sys.__stdout__
    if stream is None:
        return
    style = event.get("leads_format")
    if style is not None and _wants_colour(stream):
        line = colour(line, style)
    stream.write(f"{line}\n")
    stream.flush()


def stream_is_usable(stream: object) -> bool:
    """True if ``stream`` can be written to (it may be closed at interpreter exit)."""
    return stream is not None and not getattr(stream, "closed", False)


class LeadsLogger:
    """``debug``, ``info``, ``warn`` and ``error``, each joining its arguments like ``print``.

    ``end`` is ``"\\n"`` by default, as in LEADS: it ends the line (a log line carries one line break, not
    two). ``f=(font, colour, background)`` styles the line on a terminal, with the constants below.
    ``debug_level`` sets the lowest level that is emitted; the last ten marked lines are kept, emitted or not.
    """

    REGULAR: int = 0
    BOLD: int = 1
    ITALIC: int = 3
    UNDERLINED: int = 4
    INVERSE: int = 7

    BLACK: int = 30
    RED: int = 31
    GREEN: int = 32
    YELLOW: int = 33
    BLUE: int = 34
    PURPLE: int = 35
    CYAN: int = 36
    WHITE: int = 37

    def __init__(self) -> None:
        self._logger = TwistedLogger(namespace=NAMESPACE)
        self._debug_level: Level = Level.DEBUG
        self._history: deque[str] = deque(maxlen=10)

    def debug_level(self, debug_level: Level | None = None) -> Level | None:
        """With an argument, set the lowest level emitted; without, return it."""
        if debug_level is None:
            return self._debug_level
        self._debug_level = Level(debug_level)
        return None

    def history_messages(self) -> tuple[str, ...]:
        """The last ten lines logged (emitted or below the level), marked, oldest first."""
        return tuple(self._history)

    def debug(self, *msg: str, sep: str = " ", end: str = "\n", f: Format = (REGULAR, YELLOW, None)) -> None:
        self._emit(Level.DEBUG, sep.join(msg) + end, f, sys._getframe(1).f_code.co_name)

    def info(self, *msg: str, sep: str = " ", end: str = "\n", f: Format = (REGULAR, None, None)) -> None:
        self._emit(Level.INFO, sep.join(msg) + end, f, sys._getframe(1).f_code.co_name)

    def warn(self, *msg: str, sep: str = " ", end: str = "\n", f: Format = (REGULAR, RED, None)) -> None:
        self._emit(Level.WARN, sep.join(msg) + end, f, sys._getframe(1).f_code.co_name)

    def error(self, *msg: str, sep: str = " ", end: str = "\n", f: Format = (REGULAR, RED, None)) -> None:
        self._emit(Level.ERROR, sep.join(msg) + end, f, sys._getframe(1).f_code.co_name)

    @staticmethod
    def mark(msg: str, level: Level) -> str:
        """``msg`` marked with ``level``, the calling function's name and the time, as LEADS's ``mark``."""
        return mark(msg, level, sys._getframe(2).f_code.co_name)

    def format(self, msg: str, font: int, color: int | None, background: int | None) -> str:
        """``msg`` in ANSI style codes; kept in the history, as LEADS's ``format`` did."""
        self._history.append(msg)
        return colour(msg, (font, color, background))

    def print(self, msg: str, level: int) -> None:
        """Emit ``msg`` as it is (already marked, say) at ``level``, if that level is on."""
        if level >= self._debug_level:
            self._send(Level(level), msg, None)

    def _emit(self, level: Level, text: str, style: Format, caller: str) -> None:
        when = datetime.now()
        self._history.append(mark(text, level, caller, when))  # below the level too, as LEADS kept it
        if level < self._debug_level:
            return
        ensure_output()
        # The event's own text leaves the time to each log target (twistd's and journald's stamp every line).
        self._logger.emit(
            _TWISTED_LEVEL[level],
            "{leads_head} {leads_text}",
            leads_head=head(level, caller),
            leads_text=text[:-1] if text.endswith("\n") else text,  # ``end``'s line break ends the log line
            leads_time=when,
            leads_format=style,
        )

    def _send(self, level: Level, line: str, style: Format | None) -> None:
        """Emit an already marked line as it is."""
        ensure_output()
        if line.endswith("\n"):
            line = line[:-1]
        self._logger.emit(_TWISTED_LEVEL[level], "{leads_line}", leads_line=line, leads_format=style)


#: LEADS 0.9's name for the logger's class.
Logger = LeadsLogger

L: LeadsLogger = LeadsLogger()

__all__ = ["Format", "L", "LeadsLogger", "Level", "Logger", "ensure_output", "leave_output_to_host"]
