"""The words of the errors a newcomer meets: misspelt options, endpoint descriptions, a taken port."""

from __future__ import annotations

import pytest

from leads_twisted.comm.client import Client
from leads_twisted.comm.errors import check_options, endpoint_mistake, option_names, sockets_on_port, why_port_is_taken
from leads_twisted.comm.server import Server
from leads_twisted.logger import Level, colour, mark


def test_option_names_are_the_keyword_options_and_the_link_options():
    assert {"reconnect", "connect_timeout", "idle_timeout", "max_queued", "framing"} <= option_names(Client)
    assert {"backlog", "max_connections", "interface", "slow_policy", "heartbeat"} <= option_names(Server)
    assert "runner" not in option_names(Server) and "separator" not in option_names(Client)


def test_a_known_option_passes_and_an_unknown_one_is_named_with_its_neighbour():
    check_options("create_client", ["reconnect"], option_names(Client))
    with pytest.raises(TypeError, match=r"^create_client\(\) has no option 'reconect' \(did you mean 'reconnect'\?\)"):
        check_options("create_client", ["reconect"], option_names(Client))
    with pytest.raises(TypeError, match=r"no option 'zzz'; its options are: allow, backlog, "):
        check_options("create_server", ["zzz"], option_names(Server))


def test_endpoint_mistakes_in_words():
    assert endpoint_mistake(ValueError("invalid literal for int() with base 10: 'abc'")) == (
        "'abc' is not a number where the description needs one (a port, as in tcp:16900)"
    )
    assert endpoint_mistake(ValueError("Unknown endpoint type: 'tpc'")) == "Unknown endpoint type: 'tpc'"


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        (["LISTEN"], "another program listens on it"),
        (["LISTEN", "TIME_WAIT"], "another program listens on it"),
        (["TIME_WAIT", "TIME_WAIT"], "nothing listens on it, but 2 connection(s) of a program that has ended"),
        (["ESTABLISHED", "TIME_WAIT"], "(1 ESTABLISHED, 1 TIME_WAIT)"),
        ([], "another program holds port 4242"),
    ],
)
def test_why_a_port_is_taken(states, expected):
    assert expected in why_port_is_taken(4242, states)


def test_the_kernel_table_is_read(tmp_path):
    table = tmp_path / "tcp"
    table.write_text(
        "  sl  local_address rem_address   st\n"
        "   0: 0100007F:1092 00000000:0000 0A 00000000:00000000\n"
        "   1: 0100007F:1092 0100007F:D000 06 00000000:00000000\n"
        "   2: 0100007F:1093 0100007F:D000 01 00000000:00000000\n"
    )
    assert sockets_on_port(0x1092, [str(table), str(tmp_path / "absent")]) == ["LISTEN", "TIME_WAIT"]


def test_lines_are_marked_and_coloured_as_leads_did():
    assert mark("hi", Level.WARN, "main").startswith("[Level.WARN: 2] [main] [")
    assert colour("x", (1, 31, 37)) == "\033[1;31;47mx\033[0m"
    assert colour("x", (0, None, None)) == "\033[0mx\033[0m"


@pytest.mark.parametrize("wiring", ["reactor", "handoff", "write_batch"])
def test_the_facade_refuses_a_hubs_wiring_instead_of_ignoring_it(wiring: str) -> None:
    from leads_twisted.comm import Client, Server

    for service_class in (Server, Client):
        with pytest.raises(TypeError, match=f"no option '{wiring}'.*Hub takes a reactor of your own"):
            service_class(0, **{wiring: object()})
