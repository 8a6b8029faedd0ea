"""Under systemd, each log line starts with its journald priority, so ``journalctl -p warning`` can filter."""

from __future__ import annotations

import io
import os
import re
import tempfile

from twisted.logger import LogLevel
from twisted.python.failure import Failure

from leads_twisted.daemon import journald

from .twistd_harness import Client, Daemons

LOGGER = "--logger=leads_twisted.daemon.journald.observer"


def test_twistd_lines_carry_the_priority_of_their_level(daemons: Daemons) -> None:
    daemon = daemons.start(
        "--interface", "127.0.0.1", "--port", "0", "--callback", "leads_probe:Levels",
        twistd_options=[LOGGER], journal=True,
    )  # fmt: skip
    client = Client(daemon.port)
    try:
        client.send(b"levels")
        assert client.receive(1) == [b"logged"]
    finally:
        client.close()
    daemon.terminate()
    lines = daemon.log().splitlines()
    for prefix, text in [("<7>", "probe at debug"), ("<6>", "probe at info"), ("<4>", "probe at warn"),
                         ("<3>", "probe at error")]:  # fmt: skip
        level = text.split()[-1]
        mark = f"[Level.{level.upper()}: {'diwe'.index(level[0])}] [on_receive]"  # L's level and its caller
        assert [line for line in lines if text in line] == [f"{prefix}[leads#{level}] {mark} {text}"]
    assert any(line.startswith("<6>") and "Main loop terminated." in line for line in lines)
    assert all(line[:1] == "<" and line[2:3] == ">" for line in lines), lines  # every line, no timestamps


def test_without_the_journal_the_same_logger_prints_plain_lines(daemons: Daemons) -> None:
    daemon = daemons.start("--interface", "127.0.0.1", "--port", "0", twistd_options=[LOGGER])
    daemon.terminate()
    lines = daemon.log().splitlines()
    assert any("Main loop terminated." in line for line in lines)
    assert not any(line.startswith("<") for line in lines)


def event(level: LogLevel, text: str, **more: object) -> dict[str, object]:
    return {"log_level": level, "log_format": text, "log_namespace": "test", "log_time": 0.0, **more}


def test_each_level_maps_to_its_priority_and_every_line_is_prefixed() -> None:
    stream = io.StringIO()
    observe = journald.JournalObserver(stream)
    for level in (LogLevel.debug, LogLevel.info, LogLevel.warn, LogLevel.error, LogLevel.critical):
        observe(event(level, level.name))
    try:
        raise ZeroDivisionError("it broke")
    except ZeroDivisionError:
        observe(event(LogLevel.critical, "it broke", log_failure=Failure()))
    lines = stream.getvalue().splitlines()
    assert lines[:5] == [
        "<7>[test#debug] debug",
        "<6>[test#info] info",
        "<4>[test#warn] warn",
        "<3>[test#error] error",
        "<2>[test#critical] critical",
    ]
    traceback_lines = lines[5:]
    assert len(traceback_lines) > 3
    assert all(line.startswith("<2>") for line in traceback_lines)
    assert "ZeroDivisionError" in traceback_lines[-1]


def test_the_journal_is_recognised_by_device_and_inode_only() -> None:
    with tempfile.TemporaryFile("w+") as stream, tempfile.TemporaryFile("w+") as other:
        status = os.fstat(stream.fileno())
        journal = {"JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino}"}
        assert journald.is_journal_stream(stream, journal)
        assert not journald.is_journal_stream(other, journal)
        assert not journald.is_journal_stream(stream, {})
        assert not journald.is_journal_stream(stream, {"JOURNAL_STREAM": "nonsense"})
        assert isinstance(journald.observer(stream, journal), journald.JournalObserver)

        plain = journald.observer(other, journal)
        assert not isinstance(plain, journald.JournalObserver)
        plain(event(LogLevel.warn, "{n} clients", n=3))
        other.seek(0)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\S+ \[test#warn\] 3 clients\n", other.read())  # twistd's format
