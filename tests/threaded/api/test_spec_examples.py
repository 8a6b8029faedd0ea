"""Every example of the spec (leads-comm.md), with ``leads`` changed to ``leads_twisted``, run in a subprocess.

An example is adapted only so that it ends and touches no fixed port: each adaptation is a textual replacement
listed with the example (and checked to apply), or code added before or after it. The examples themselves are
kept here word for word; ``test_examples_match_the_spec`` checks them against the spec when it is at hand.
"""

from __future__ import annotations

import os
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support import REPO_ROOT, run_python

from .prelude import script

CREATE_SERVER = """\
from leads_twisted.comm import create_server, Server

port: int = 9000
server: Server = create_server(port)
"""

SERVER_CALLBACK = """\
from typing import override
from leads_twisted import L
from leads_twisted.comm import create_server, Server, Callback, Service, ConnectionBase


class MyCallback(Callback):
    @override
    def on_initialize(self, service: Service) -> None:
        L.info("Initialized")

    @override
    def on_connect(self, service: Service, connection: ConnectionBase) -> None:
        L.info("Connected")

    @override
    def on_receive(self, service: Service, msg: bytes) -> None:
        L.info(msg.decode())

    @override
    def on_fail(self, service: Service, error: Exception) -> None:
        L.error(repr(error))

    @override
    def on_disconnect(self, service: Service, connection: ConnectionBase) -> None:
        L.info("Disconnected")


server: Server = create_server(callback=MyCallback())
"""

START_SERVER = """\
from leads_twisted.comm import create_server, Server, start_server

parallel: bool = True
server: Server = create_server()
start_server(server, parallel)
"""

BROADCAST = """\
from leads_twisted.comm import create_server, Server, start_server

server: Server = start_server(create_server())
server.broadcast(b"Hello world")
"""

NUM_CONNECTIONS = """\
from leads_twisted import L
from leads_twisted.comm import create_server, Server, start_server

server: Server = start_server(create_server())
L.info(str(server.num_connections()))
"""

CLOSE_SERVER = """\
from leads_twisted.comm import create_server, Server, start_server

server: Server = start_server(create_server())
server.close()
"""

CREATE_CLIENT = """\
from leads_twisted.comm import create_client, Client

port: int = 9000
client: Client = create_client(port)
"""

CLIENT_CALLBACK = SERVER_CALLBACK.replace("create_server, Server,", "create_client, Client,").replace(
    "server: Server = create_server(callback=MyCallback())", "client: Client = create_client(callback=MyCallback())"
)

START_CLIENT = """\
from leads_twisted.comm import create_client, Client, start_client

parallel: bool = True
address: str = "127.0.0.1"
client: Client = create_client()
start_client(address, client, parallel)
"""

SEND = """\
from leads_twisted.comm import create_client, Client, start_client

address: str = "127.0.0.1"
client: Client = start_client(address, create_client())
client.send(b"Hello world")
"""

CLOSE_CLIENT = """\
from leads_twisted.comm import create_client, Client, start_client

address: str = "127.0.0.1"
client: Client = start_client(address, create_client())
client.close()
"""

#: In the order of the spec.
EXAMPLES = [
    CREATE_SERVER,
    SERVER_CALLBACK,
    START_SERVER,
    BROADCAST,
    NUM_CONNECTIONS,
    CLOSE_SERVER,
    CREATE_CLIENT,
    CLIENT_CALLBACK,
    START_CLIENT,
    SEND,
    CLOSE_CLIENT,
]

# The spec's examples use typing.override, which Python 3.11 (supported here) lacks: give it the same no-op.
OVERRIDE_FOR_3_11 = """
import typing
if not hasattr(typing, "override"):
    try:
        from typing_extensions import override as _override
    except ImportError:
        def _override(method):
            return method
    typing.override = _override
"""

# A server on a free port for the client examples to reach, recording what it sees.
HELPER_SERVER = """
import leads_twisted.comm as _comm
helper_events = Events()
helper = _comm.start_server(_comm.create_server(0, helper_events, interface="127.0.0.1"), True)
PORT = helper.port()
"""

PARALLEL_FREE_PORT = [
    ("start_server(create_server())", "start_server(create_server(0, interface='127.0.0.1'), True)"),
]


@dataclass
class Case:
    example: str
    replace: list[tuple[str, str]] = field(default_factory=list)
    before: str = ""
    after: str = ""

    def code(self) -> str:
        text = self.example
        for old, new in self.replace:
            assert old in text, f"the adaptation {old!r} no longer applies"
            text = text.replace(old, new)
        return script("watchdog(20)\n" + self.before + "\n" + text + "\n" + self.after)


CASES = {
    "create a server": Case(
        CREATE_SERVER,
        after="result(port=server.port(), state=server.state.value, connections=server.num_connections())",
    ),
    "server callback": Case(
        SERVER_CALLBACK, before=OVERRIDE_FOR_3_11, after="result(callback=type(server._callback).__name__)"
    ),
    "start a server": Case(
        START_SERVER,
        replace=[("create_server()", "create_server(0, interface='127.0.0.1')")],
        after="""
import socket
with socket.create_connection(("127.0.0.1", server.port()), timeout=5):
    pass
port = server.port()
server.close()
result(port=port, state=server.state.value)
""",
    ),
    "broadcast": Case(BROADCAST, replace=PARALLEL_FREE_PORT, after="server.close()\nresult(state=server.state.value)"),
    "number of connections": Case(
        NUM_CONNECTIONS, replace=PARALLEL_FREE_PORT, after="server.close()\nresult(state=server.state.value)"
    ),
    "close a server": Case(CLOSE_SERVER, replace=PARALLEL_FREE_PORT, after="result(state=server.state.value)"),
    "create a client": Case(
        CREATE_CLIENT, after="result(port=client.port(), state=client.state.value, connection=client.connection())"
    ),
    "client callback": Case(
        CLIENT_CALLBACK, before=OVERRIDE_FOR_3_11, after="result(callback=type(client._callback).__name__)"
    ),
    "start a client": Case(
        START_CLIENT,
        replace=[("create_client()", "create_client(PORT)")],
        before=HELPER_SERVER,
        after="""
helper_events.wait_count("connect", 1)
connected = client.connection() is not None
client.close()
helper_events.wait_count("disconnect", 1)
helper.close()
result(connected=connected, helper=helper_events.kinds(), state=client.state.value)
""",
    ),
    "send": Case(
        SEND,
        replace=[("start_client(address, create_client())", "start_client(address, create_client(PORT), True)")],
        before=HELPER_SERVER,
        after="""
helper_events.wait_count("receive", 1)
client.close()
helper_events.wait_count("disconnect", 1)
helper.close()
result(received=[m.decode() for m in helper_events.received()], helper=helper_events.kinds())
""",
    ),
    "close a client": Case(
        CLOSE_CLIENT,
        replace=[("start_client(address, create_client())", "start_client(address, create_client(PORT), True)")],
        before=HELPER_SERVER,
        after="""
helper_events.wait_count("disconnect", 1)
helper.close()
result(helper=helper_events.kinds(), state=client.state.value)
""",
    ),
}


def run_case(name: str) -> dict:
    done = run_python(CASES[name].code(), timeout=30)
    assert "Traceback" not in done.stderr, done.describe()
    return done.result()


def test_create_a_server():
    assert run_case("create a server") == {"port": 9000, "state": "new", "connections": 0}


def test_server_callback():
    assert run_case("server callback") == {"callback": "MyCallback"}


def test_start_a_server():
    outcome = run_case("start a server")
    assert outcome["port"] > 0
    assert outcome["state"] == "closed"


def test_broadcast():
    assert run_case("broadcast") == {"state": "closed"}


def test_number_of_connections():
    done = run_python(CASES["number of connections"].code(), timeout=30)
    assert done.result() == {"state": "closed"}
    assert any("INFO" in line and line.endswith(" 0") for line in done.stdout.splitlines()), done.describe()


def test_close_a_server():
    assert run_case("close a server") == {"state": "closed"}


def test_create_a_client():
    assert run_case("create a client") == {"port": 9000, "state": "new", "connection": None}


def test_client_callback():
    assert run_case("client callback") == {"callback": "MyCallback"}


def test_start_a_client():
    outcome = run_case("start a client")
    assert outcome["connected"] is True
    assert outcome["helper"] == ["initialize", "connect", "disconnect"]
    assert outcome["state"] == "closed"


def test_send_right_after_a_parallel_start():
    outcome = run_case("send")
    assert outcome["received"] == ["Hello world"]
    assert outcome["helper"] == ["initialize", "connect", "receive", "disconnect"]


def test_close_a_client():
    outcome = run_case("close a client")
    assert outcome["helper"] == ["initialize", "connect", "disconnect"]
    assert outcome["state"] == "closed"


def lines_in_order(stdout: str, expected: list[str]) -> bool:
    position = 0
    for text in expected:
        found = stdout.find(text, position)
        if found < 0:
            return False
        position = found + len(text)
    return True


def test_server_callback_example_reports_through_l_when_started():
    code = CASES["server callback"].code() + textwrap.dedent(
        """
        from leads_twisted.comm import start_server, create_client, start_client
        live = start_server(create_server(0, MyCallback(), interface="127.0.0.1"), True)
        visitor = start_client("127.0.0.1", create_client(live.port()), True)
        visitor.send(b"Hello from the client")
        visitor.close()
        live.close()
        """
    )
    done = run_python(code, timeout=30)
    expected = ["Initialized", "Connected", "Hello from the client", "Disconnected"]
    assert lines_in_order(done.stdout, expected), done.describe()


def test_client_callback_example_reports_through_l_when_started():
    code = (
        CASES["client callback"].code()
        + HELPER_SERVER
        + textwrap.dedent(
            """
            from leads_twisted.comm import start_client
            live = start_client("127.0.0.1", create_client(PORT, MyCallback()), True)
            helper_events.wait_count("connect", 1)
            helper_events.of("connect")[0].send(b"Hello from the server")
            helper.close()
            live.close()
            """
        )
    )
    done = run_python(code, timeout=30)
    expected = ["Initialized", "Connected", "Hello from the server", "Disconnected"]
    assert lines_in_order(done.stdout, expected), done.describe()


def spec_path() -> Path | None:
    candidates = [os.environ.get("LEADS_SPEC", ""), REPO_ROOT.parent / "shared/spec/leads-comm.md"]
    candidates.append(Path("/work/shared/spec/leads-comm.md"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def test_examples_match_the_spec():
    path = spec_path()
    if path is None:
        pytest.skip("the spec (shared/spec/leads-comm.md beside the repo, or $LEADS_SPEC) is not at hand")
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(), re.S)
    ported = [block.replace("from leads", "from leads_twisted") for block in blocks]
    assert ported == EXAMPLES
