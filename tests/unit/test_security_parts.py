"""The pure parts of the security work: the memory budget's choice of whom to drop, the rate limit's pauses,
rate-limited warnings, escaping of peer text, allow lists, and unix socket modes that cannot apply."""

from __future__ import annotations

import pytest
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.task import Clock
from twisted.logger import Logger, LogLevel, formatEvent

from leads_twisted.comm.endpoints import UNIXSocketServerEndpoint, parse_unix_description
from leads_twisted.comm.link_policy import LinkPolicy
from leads_twisted.comm.log_guard import RateLimitedWarnings, escape
from leads_twisted.comm.memory_budget import MemoryBudget, check_max_memory
from leads_twisted.comm.rate_limit import ReadRateLimit
from leads_twisted.comm.server_hub import _allowed, _loopback_only, describe_address, parse_allow


class Holder:
    def __init__(self, budget: MemoryBudget, name: str) -> None:
        self.budget = budget
        self.name = name
        self.dropped: tuple[int, int, int] | None = None

    def drop_for_memory(self, held: int, total: int, limit: int) -> None:
        self.dropped = (held, total, limit)
        self.budget.release(self)

    def __repr__(self) -> str:
        return self.name


def test_the_budget_drops_the_biggest_holders_first_until_the_rest_fit() -> None:
    budget = MemoryBudget(100)
    small, middle, big = (Holder(budget, name) for name in ("small", "middle", "big"))
    budget.set(small, 20)
    budget.set(middle, 35)
    budget.set(big, 40)
    assert budget.total == 95 and not any(h.dropped for h in (small, middle, big))
    budget.add(small, 30)  # 50 + 35 + 40 = 125 > 100: the biggest (small, now 50) goes, then 75 fits
    assert small.dropped == (50, 125, 100)
    assert middle.dropped is None and big.dropped is None
    assert budget.total == 75 and budget.held_by(small) == 0
    budget.set(middle, 0)
    assert budget.total == 40
    budget.release(big)
    assert budget.total == 0


def test_the_budget_drops_the_newcomer_when_it_is_the_biggest() -> None:
    budget = MemoryBudget(100)
    holders = [Holder(budget, f"h{i}") for i in range(5)]
    for index, holder in enumerate(holders):
        budget.set(holder, 30 + index)  # 30 + 31 + 32 = 93 fit; with 33 (then 34) the newcomer is the biggest
    assert [holder.name for holder in holders if holder.dropped] == ["h3", "h4"]
    assert budget.total == 93
    assert check_max_memory(None) is None
    with pytest.raises(ValueError, match="max_memory"):
        check_max_memory(0)


def test_the_rate_limit_pauses_reading_for_as_long_as_the_excess_takes() -> None:
    clock = Clock()
    events: list[tuple[str, float]] = []
    limit = ReadRateLimit(
        100,
        clock,
        lambda: events.append(("pause", clock.seconds())),
        lambda: events.append(("resume", clock.seconds())),
    )
    limit.spend(100)  # a full burst: still allowed
    assert events == [] and not limit.paused
    limit.spend(50)  # 50 over: half a second of pause
    assert events == [("pause", 0.0)] and limit.paused
    clock.advance(0.49)
    assert events == [("pause", 0.0)]
    clock.advance(0.02)
    assert events[-1][0] == "resume" and not limit.paused
    clock.advance(10)
    limit.spend(100)  # the allowance has grown back to a full burst, no more
    assert events[-1][0] == "resume"
    limit.spend(1)
    assert events[-1][0] == "pause"
    limit.stop()
    clock.advance(10)
    assert events[-1][0] == "pause", "no resume after stop()"


def test_repeated_warnings_become_one_summary_line_per_interval() -> None:
    clock = Clock()
    lines: list[str] = []

    def observe(event):
        if event["log_level"] == LogLevel.warn:
            lines.append(formatEvent(event))

    warnings = RateLimitedWarnings(Logger(observer=observe), clock, interval=10)
    for index in range(5):
        warnings.warn("refusal", "refused {peer}", peer=f"10.0.0.{index}")
    warnings.warn("other", "something else")
    assert lines == ["refused 10.0.0.0", "something else"]
    clock.advance(10)
    assert lines[2:] == ["4 more like the last refusal warning in 10 s"]
    warnings.warn("refusal", "refused {peer}", peer="10.0.0.9")  # still in the flood's window: counted
    clock.advance(10)
    assert lines[3:] == ["1 more like the last refusal warning in 10 s"]
    clock.advance(10)  # a quiet interval ends the flood
    warnings.warn("refusal", "refused {peer}", peer="10.0.0.10")
    assert lines[-1] == "refused 10.0.0.10" and len(lines) == 5


def test_peer_text_is_escaped() -> None:
    assert escape("10.0.0.1") == "10.0.0.1"
    assert escape("/tmp/a\nforged line") == "/tmp/a\\nforged line"
    assert "\n" not in escape("x\r\n\x1b[31m") and "\x1b" not in escape("x\r\n\x1b[31m")
    assert escape("back\\slash") == "back\\\\slash"
    name = UNIXAddress(b"/tmp/evil\n2026 [leads] forged")
    assert describe_address(name) == "/tmp/evil\\n2026 [leads] forged"


def test_allow_lists() -> None:
    networks = parse_allow(["10.20.0.0/16", "::1", "192.168.1.7"])
    assert networks is not None
    assert _allowed(IPv4Address("TCP", "10.20.3.4", 1), networks)
    assert not _allowed(IPv4Address("TCP", "10.21.3.4", 1), networks)
    assert _allowed(IPv4Address("TCP", "192.168.1.7", 1), networks)
    assert _allowed(IPv6Address("TCP", "::1", 1), networks)
    assert _allowed(IPv6Address("TCP", "::ffff:10.20.0.1", 1), networks), "IPv4 seen through an IPv6 socket"
    assert not _allowed(IPv6Address("TCP", "fe80::1%eth0", 1), networks)
    assert _allowed(UNIXAddress(b"/run/x"), networks), "unix peers are governed by the socket file's mode"
    assert parse_allow(None) is None
    with pytest.raises(ValueError, match=r"'10\.0\.0/33' is not a network"):
        parse_allow(["10.0.0/33"])
    with pytest.raises(ValueError, match="allow is empty"):
        parse_allow([])


def test_which_listening_addresses_are_loopback_only() -> None:
    assert _loopback_only(IPv4Address("TCP", "127.0.0.1", 1))
    assert _loopback_only(IPv6Address("TCP", "::1", 1))
    assert _loopback_only(UNIXAddress(b"/run/leads.sock"))
    assert not _loopback_only(IPv4Address("TCP", "0.0.0.0", 1))
    assert not _loopback_only(IPv6Address("TCP", "::", 1))
    assert not _loopback_only(IPv4Address("TCP", "192.168.1.2", 1))


def test_mode_is_refused_for_an_abstract_unix_socket() -> None:
    with pytest.raises(ValueError, match="mode= cannot apply to the abstract unix socket"):
        parse_unix_description("\0leads:mode=600")
    with pytest.raises(ValueError, match="mode= cannot apply"):
        UNIXSocketServerEndpoint(None, "\0leads", mode=0o600)
    assert parse_unix_description("\0leads") == {"path": "\0leads"}
    assert UNIXSocketServerEndpoint(None, "\0leads").path == "\0leads"
    assert parse_unix_description("/run/leads.sock:mode=600")["mode"] == 0o600


def test_link_policy_checks_the_new_options() -> None:
    assert LinkPolicy().handshake_timeout == 10.0 and LinkPolicy().max_rate is None
    with pytest.raises(ValueError, match="max_rate must be a positive number of messages per second"):
        LinkPolicy(max_rate=0)
    with pytest.raises(ValueError, match="handshake_timeout must be a positive number of seconds"):
        LinkPolicy(handshake_timeout=-1)
