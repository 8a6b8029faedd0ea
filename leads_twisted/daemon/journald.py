"""A twistd log observer for systemd's journal: every line starts with its priority, ``<3>`` for an error.

Select it with ``twistd --logger=leads_twisted.daemon.journald.observer`` (the unit in ``systemd/`` does);
``--logger`` takes the place of ``--logfile``. It writes to the stdout twistd started with. The prefixes are
added only when that stdout is the journal's stream, which systemd announces in ``JOURNAL_STREAM`` (the device
and inode of the stream), so the same command run by hand prints twistd's usual timestamped lines.
journald reads each line as one entry, so every line of a multi-line event (a traceback) carries the prefix.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import IO

from twisted.logger import ILogObserver, LogEvent, LogLevel, eventAsText, textFileLogObserver
from zope.interface import implementer

#: syslog priorities (sd-daemon(3)): 2 critical, 3 error, 4 warning, 6 info, 7 debug.
PRIORITY: dict[LogLevel, int] = {
    LogLevel.critical: 2,
    LogLevel.error: 3,
    LogLevel.warn: 4,
    LogLevel.info: 6,
    LogLevel.debug: 7,
}


def is_journal_stream(stream: IO[str], environ: Mapping[str, str] = os.environ) -> bool:
    """True if ``stream`` is the journal connection systemd named in ``JOURNAL_STREAM`` (``device:inode``)."""
    device, _, inode = environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        status = os.fstat(stream.fileno())
        return (status.st_dev, status.st_ino) == (int(device), int(inode))
    except (OSError, ValueError, AttributeError):
        return False


@implementer(ILogObserver)
class JournalObserver:
    """Writes each event as ``<priority>[system] text`` lines, without a timestamp (the journal adds one)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def __call__(self, event: LogEvent) -> None:
        prefix = f"<{PRIORITY.get(event.get('log_level', LogLevel.info), 6)}>"
        text = eventAsText(dict(event), includeTimestamp=False)
        self._stream.write("".join(f"{prefix}{line}\n" for line in text.splitlines() or [""]))
        self._stream.flush()


def observer(stream: IO[str] | None = None, environ: Mapping[str, str] = os.environ) -> ILogObserver:
    """The factory ``twistd --logger`` calls: journal lines under systemd, twistd's plain lines otherwise.

    It is called before twistd redirects ``sys.stdout`` into the log, so the real stdout is kept here.
    """
    stream = stream if stream is not None else sys.stdout
    if is_journal_stream(stream, environ):
        return JournalObserver(stream)
    return textFileLogObserver(stream)
