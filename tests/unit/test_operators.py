"""Pure logic of the operator features: config files to arguments, the pulse, the watchdog's interval, the
status line, rate-limited slow-callback warnings, and the command line's parsing and formatting."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import ClassVar

import pytest
from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.python import usage

from leads_twisted.cli.connz import connz_url, duration, table
from leads_twisted.cli.main import address, separator
from leads_twisted.cli.talk import percentile, summary
from leads_twisted.comm.slow import SlowCallbacks, qualified_name
from leads_twisted.daemon.config import file_arguments, given_on_command_line
from leads_twisted.daemon.monitor import PULSE_SECONDS, Pulse
from leads_twisted.daemon.tap import Options
from leads_twisted.daemon.watchdog import status_line, watchdog_interval

# --config


class Extended(Options):
    """The daemon's options plus some another feature might add: a file must take them with no change here."""

    optFlags: ClassVar[list[list[str | None]]] = [["bridge-retain", None, "a flag of another feature"]]

    def __init__(self) -> None:
        super().__init__()
        self["allow"] = []

    def opt_allow(self, network: str) -> None:
        """a repeatable option of another feature"""
        self["allow"].append(network)


def toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return str(path)


def test_keys_become_arguments_for_any_option(tmp_path: Path) -> None:
    path = toml(
        tmp_path,
        'port = 1\nmax_connections = 5\nallow = ["10.0.0.0/8", "::1"]\nbridge-retain = true\nheartbeat = 2.5\n',
    )
    assert file_arguments(Extended(), path, set()) == [
        "--port=1",
        "--max-connections=5",
        "--allow=10.0.0.0/8",
        "--allow=::1",
        "--bridge-retain",
        "--heartbeat=2.5",
    ]
    options = Extended()
    options.parseOptions(["--config", path])
    assert (options["port"], options["max-connections"], options["allow"]) == (1, 5, ["10.0.0.0/8", "::1"])
    assert options["bridge-retain"] == 1


def test_command_line_options_are_left_out_of_the_file(tmp_path: Path) -> None:
    path = toml(tmp_path, 'port = 1\nallow = ["10.0.0.0/8"]\nmode = "echo"\n')
    given, found = given_on_command_line(Extended(), ["-p", "2", "--allow=::1", "--config", path, "--max-conn", "3"])
    assert found == path
    assert given == {"port", "allow", "config", "max-connections"}
    options = Extended()
    options.parseOptions(["--allow=::1", "--config", path, "-p", "2"])
    assert (options["port"], options["allow"], options["mode"]) == (2, ["::1"], "echo")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("p = 1\n", "no option --p"),
        ("bridge-retain = 1\n", "bridge-retain is a flag: write bridge-retain = true or false"),
        ("config = 'x'\n", "config belongs on the command line"),
        ("port = 2020-01-01\n", "port takes a string or a number"),
    ],
)
def test_bad_keys(tmp_path: Path, text: str, error: str) -> None:
    with pytest.raises(usage.UsageError, match=error):
        file_arguments(Extended(), toml(tmp_path, text), set())


# The pulse and health


def test_pulse_reports_a_stall_then_forgets_it() -> None:
    clock = Clock()
    pulse = Pulse(clock, now=clock.seconds)
    pulse.startService()
    clock.advance(PULSE_SECONDS)
    assert pulse.problem() is None
    clock.advance(1.3)  # the next beat over a second late: the reactor was held
    assert pulse.problem() == "the reactor was held for 1.3 s, 0 s ago (see --slow-callback)"
    clock.advance(5.0)  # more beats now come on time, but a check every few seconds must still see it
    assert pulse.problem() is not None
    for _ in range(50):
        clock.advance(PULSE_SECONDS)
    assert pulse.problem() is None
    pulse.stopService()


def test_pulse_sees_a_reactor_that_has_not_answered() -> None:
    times = [100.0]
    pulse = Pulse(Clock(), now=lambda: times[0])
    times[0] += 1.5
    assert pulse.problem() == "the reactor has not answered for 1.5 s"


# systemd


def test_watchdog_interval_is_half_and_for_this_process_only() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "10000000"}, pid=7) == 5.0
    assert watchdog_interval({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "7"}, pid=7) == 5.0
    assert watchdog_interval({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "8"}, pid=7) is None
    assert watchdog_interval({}, pid=7) is None
    with capturedLogs() as events:
        assert watchdog_interval({"WATCHDOG_USEC": "soon"}, pid=7) is None
    assert len(events) == 1


def test_status_line() -> None:
    assert status_line("[::]:16900", "relay", 12, 850.2, 9400) == (
        "relay on [::]:16900: 12 clients, 850 msg/s in, 9,400 msg/s out"
    )
    assert status_line("0.0.0.0:1", "echo", 1, 0, 0) == "echo on 0.0.0.0:1: 1 client, 0 msg/s in, 0 msg/s out"


# Slow callbacks


class Named:
    def on_receive(self) -> None: ...


class Chain:
    def __init__(self, *callbacks: object) -> None:
        self.callbacks = callbacks


def test_slow_callback_warnings_are_rate_limited() -> None:
    now = [0.0]
    slow = SlowCallbacks(0.1, clock=lambda: now[0], interval=10.0)
    with capturedLogs() as events:
        for started in (0.0, 1.0, 2.0):
            now[0] = started + 0.5
            slow.finished(started, Named(), "on_receive", "a chunk")
        now[0] = 20.0
        slow.finished(19.95, Named(), "on_receive", "a chunk")  # under the threshold: nothing
        slow.finished(19.0, Named(), "on_receive", "a chunk")
    assert slow.warnings == 2
    assert events[-1]["more"] == "; 2 more such since the last warning"
    assert events[0]["ms"] == 500


def test_qualified_names() -> None:
    assert qualified_name(Named(), "on_receive") == f"{__name__}.Named.on_receive"
    both = qualified_name(Chain(Named(), Named()), "on_connect")
    assert both == f"{__name__}.Named.on_connect + {__name__}.Named.on_connect"


# The command line


def test_addresses() -> None:
    assert address("10.0.0.2:16901") == ("10.0.0.2", 16901)
    assert address("[::1]:5") == ("::1", 5)
    assert address("[::1]") == ("::1", 16900)
    assert address(":7") == ("127.0.0.1", 7)
    assert address("car.local") == ("car.local", 16900)
    for bad in ("h:0", "h:x", "[::1]5", "h:70000"):
        with pytest.raises(argparse.ArgumentTypeError):
            address(bad)
    assert separator("end;") == b"end;"
    assert separator("\\x00") == b"\x00"


def test_percentiles_and_summary() -> None:
    values = [float(n) for n in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99)) == (50.0, 99.0)
    assert summary([3.0, 1.0, 2.0]) == "3 round trips: min 1.000 ms, p50 2.000 ms, p99 3.000 ms, max 3.000 ms"


def test_connz_table() -> None:
    assert connz_url("127.0.0.1:9216") == "http://127.0.0.1:9216/connz"
    assert connz_url("http://h:1/connz") == "http://h:1/connz"
    assert (duration(42), duration(307), duration(11100), duration(187200)) == ("42s", "5m07s", "3h05m", "2d04h")
    link = {
        "peer": "10.0.0.5:40000",
        "transport": "tcp",
        "connected_since": 1000.0,
        "messages_in": 1234,
        "bytes_in": 5,
        "messages_out": 0,
        "bytes_out": 0,
        "buffered": 0,
        "dropped": 0,
    }
    lines = table({"now": 1090.0, "connections": 1, "messages_in": 1234, "messages_out": 0, "links": [link]})
    assert lines.splitlines()[0] == "1 links; 1,234 messages in, 0 out in all"
    assert lines.splitlines()[2].split() == ["10.0.0.5:40000", "tcp", "1m30s", "1,234", "5", "0", "0", "0", "0"]
