"""The daemon's parts without processes: options, modes (on in-memory links), the twistd service, sd_notify."""

from __future__ import annotations

import errno
import socket
from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactorClock, RaisingMemoryReactor
from twisted.logger import LogLevel, capturedLogs
from twisted.python import threadable

from leads_twisted import logger as leads_logger
from leads_twisted.comm import Callback, ConnectionBase, Server, Service
from leads_twisted.comm.reactor_thread import ReactorRunner
from leads_twisted.daemon import tap
from leads_twisted.daemon.modes import Chained, Echo, LogOnly, Relay
from leads_twisted.daemon.readiness import Notifier, socket_address
from leads_twisted.daemon.service import CommService, describe_address
from leads_twisted.testing import MemoryNetwork

from .twistd_harness import HERE, NotifySocket


@pytest.fixture(autouse=True)
def _restore_process_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon declares the calling thread the reactor's and leaves log output to twistd: undo both."""
    monkeypatch.setattr(threadable, "ioThread", threadable.ioThread)
    monkeypatch.setattr(leads_logger, "_output_decided", leads_logger._output_decided)


def parse(*arguments: str) -> tap.Options:
    options = tap.Options()
    options.parseOptions(list(arguments))
    return options


# Options and makeService


def test_defaults_are_those_of_leads() -> None:
    options = parse()
    assert (options["port"], options["interface"], options["endpoint"]) == (16900, "", [])
    assert (options["separator"], options["mode"], options["callback"]) == (b";", "relay", None)


def test_every_option_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))  # for leads_probe, as twistd's PYTHONPATH has it
    options = parse(
        "-p", "9000", "-i", "127.0.0.1", "--separator", r"\n", "--max-message", "1024", "-m", "echo",
        "-e", "tcp:9001", "--endpoint", "tcp6:9002", "--callback", "leads_probe:Probe",
    )  # fmt: skip
    assert (options["port"], options["interface"], options["separator"]) == (9000, "127.0.0.1", b"\n")
    assert (options["max-message"], options["mode"]) == (1024, "echo")
    assert options["endpoint"] == ["tcp:9001", "tcp6:9002"]
    assert options["callback"].__name__ == "Probe"


def test_separator_escapes_and_text() -> None:
    assert parse("--separator", r"\x00\x01")["separator"] == b"\x00\x01"
    assert parse("--separator", "||")["separator"] == b"||"
    assert parse("--separator", "é")["separator"] == "é".encode()


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--bogus"], "option --bogus not recognized"),
        (["-p", "70000"], "--port must be a whole number from 0 to 65535, not '70000'"),
        (["--max-message", "0"], "--max-message must be a whole number of at least 1, not '0'"),
        (["--separator", ""], "--separator '': the separator must not be empty"),
        (["--separator", r"\x"], "--separator '\\\\x': invalid \\x escape"),
        (["--mode", "shout"], "--mode must be one of relay, echo, log, not 'shout'"),
        (["--callback", "leads_probe"], "--callback wants module:Class"),
        (["--callback", "leads_probe:Missing"], "'leads_probe' has no 'Missing'"),
        (["--callback", "leads_probe:NotACallback"], "is not a subclass of leads_twisted.comm.Callback"),
        (["--callback", "no_such_module:Handler"], "cannot import 'no_such_module'"),
    ],
)
def test_a_usage_error_exits_with_one_line(
    monkeypatch: pytest.MonkeyPatch, arguments: list[str], expected: str
) -> None:
    monkeypatch.syspath_prepend(str(HERE))
    with pytest.raises(SystemExit) as exited:
        parse(*arguments)
    message = str(exited.value.code)
    assert message.startswith("twistd leads-comm: ")
    assert expected in message
    assert "\n" not in message


def test_make_service_builds_the_server_described() -> None:
    options = parse("--port", "0", "--interface", "127.0.0.1", "--separator", "|", "--max-message", "64")
    service = tap.makeService(options, MemoryReactorClock())
    assert isinstance(service, CommService)
    server = service.server
    assert (server.port(), server.separator, server.max_message) == (0, b"|", 64)
    assert server.describe_target() == "127.0.0.1 port 0"


def test_make_service_refuses_an_unparsable_endpoint_in_one_line() -> None:
    with pytest.raises(SystemExit) as exited:
        tap.makeService(parse("--endpoint", "tcp:notaport"), MemoryReactorClock())
    assert str(exited.value.code).startswith("twistd leads-comm: --endpoint tcp:notaport: ")


# The modes, on in-memory links


def three_clients(mode: Callback) -> tuple[MemoryNetwork, list[Any]]:
    network = MemoryNetwork(mode)
    seen = [network.add_client()[1] for _ in range(3)]
    return network, seen


def test_relay_sends_to_every_other_client_in_order() -> None:
    network, (a, b, c) = three_clients(Relay())
    network.client.send(b"1")
    network.client.send(b"2")
    network.flush()
    assert (a.received, b.received, c.received) == ([], [b"1", b"2"], [b"1", b"2"])


def test_echo_answers_the_sender_alone() -> None:
    network, (a, b, c) = three_clients(Echo())
    network.client.send(b"ping")
    network.flush()
    assert (a.received, b.received, c.received) == ([b"ping"], [], [])


def test_log_mode_sends_nothing_and_counts() -> None:
    mode = LogOnly()
    network, (a, b, _) = three_clients(mode)
    with capturedLogs() as events:
        network.client.send(b"x" * 200)
        network.client.send(b"y")
        network.flush()
        network.close()
    assert (a.received, b.received) == ([], [])
    assert (mode.messages, mode.bytes) == (2, 201)
    texts = [event["log_format"] for event in events if event.get("log_namespace") == "leads_twisted.daemon"]
    assert texts.count("{peer} #{count} ({size} bytes): {preview!r}") == 2
    previews = [event["preview"] for event in events if "preview" in event]
    assert previews == [b"x" * 80, b"y"]


def test_chained_runs_the_mode_first_then_the_user_callback_with_the_sender() -> None:
    calls: list[str] = []

    class Mode(Relay):
        def on_receive(self, service: Service, msg: bytes) -> None:
            calls.append(f"mode {msg.decode()}")
            super().on_receive(service, msg)

    class User(Callback):
        def on_connect(self, service: Service, connection: ConnectionBase) -> None:
            calls.append("user connect")

        def on_receive(self, service: Service, msg: bytes) -> None:
            calls.append(f"user {msg.decode()} from {service.sender()}")

    network, (_, b, _) = three_clients(Chained(Mode(), User()))
    network.client.send(b"m")
    network.flush()
    assert calls[:3] == ["user connect"] * 3
    assert calls[3:5] == ["mode m", f"user m from {network.server.connections()[0]}"]
    assert b.received == [b"m"]


# The twistd service


class Notes(Notifier):
    """A notifier that keeps what it would have told systemd."""

    def __init__(self) -> None:
        super().__init__(None)
        self.sent: list[tuple[str, ...]] = []

    def notify(self, *fields: str) -> None:
        self.sent.append(fields)


def comm_service(reactor: Any, **server_options: Any) -> tuple[CommService, Notes]:
    server = Server(0, Relay(), interface="127.0.0.1", runner=ReactorRunner(reactor), **server_options)
    notes = Notes()
    return CommService(server, reactor, notes, "relay"), notes


def test_listens_before_the_reactor_runs_and_is_ready_once_it_does() -> None:
    reactor = MemoryReactorClock()
    service, notes = comm_service(reactor)
    service.privilegedStartService()
    assert [entry[0] for entry in reactor.tcpServers] == [0]
    service.startService()
    assert notes.sent == []
    with capturedLogs() as events:
        reactor.run()
    assert notes.sent == [("READY=1", "STATUS=relay on 0.0.0.0:0")]
    assert any(event.get("where") == "0.0.0.0:0" for event in events)

    stopped = service.stopService()
    assert notes.sent[-1] == ("STOPPING=1", "STATUS=telling 0 clients to disconnect")
    assert stopped.called


def test_port_in_use_ends_the_start_with_status_1() -> None:
    in_use = CannotListenError("127.0.0.1", 0, OSError(errno.EADDRINUSE, "Address already in use"))
    reactor = RaisingMemoryReactor(listenException=in_use)
    service, notes = comm_service(reactor)
    with capturedLogs() as events, pytest.raises(SystemExit) as exited:
        service.privilegedStartService()
    assert exited.value.code == 1
    errors = [event for event in events if event["log_level"] >= LogLevel.error]
    assert len(errors) == 1
    assert notes.sent == []


def test_a_late_listening_failure_stops_twistd_without_ready() -> None:
    reactor = MemoryReactorClock()
    pending: Deferred[Any] = Deferred()

    class LateEndpoint:
        def listen(self, factory: object) -> Deferred[Any]:
            return pending

    server = Server(0, Relay(), endpoint=[LateEndpoint()], runner=ReactorRunner(reactor))
    service = CommService(server, reactor, Notes(), "relay")
    service.privilegedStartService()
    with capturedLogs():
        pending.errback(CannotListenError("", 0, OSError(errno.EACCES, "Permission denied")))
    assert [hook[0] for hook in reactor.whenRunningHooks] == [reactor.stop]


def test_addresses_are_described_for_people() -> None:
    from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress

    assert describe_address(IPv4Address("TCP", "127.0.0.1", 1)) == "127.0.0.1:1"
    assert describe_address(IPv6Address("TCP", "::1", 2)) == "[::1]:2"
    assert describe_address(UNIXAddress(b"/run/leads-comm/socket")) == "unix:/run/leads-comm/socket"


# sd_notify


def test_notify_socket_values() -> None:
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@abstract") == b"\0abstract"
    assert socket_address("relative") is None
    assert socket_address("@") is None
    assert not Notifier.from_environment({}).enabled
    with capturedLogs() as events:
        assert not Notifier.from_environment({"NOTIFY_SOCKET": "relative"}).enabled
    assert [event["log_level"] for event in events] == [LogLevel.warn]


def test_notifications_are_one_datagram_each() -> None:
    listener = NotifySocket()
    try:
        notifier = Notifier.from_environment({"NOTIFY_SOCKET": listener.path})
        notifier.ready("relay on 127.0.0.1:1")
        notifier.stopping("telling 0 clients to disconnect")
        assert listener.receive(timeout=5) == {"READY": "1", "STATUS": "relay on 127.0.0.1:1"}
        assert listener.receive(timeout=5) == {"STOPPING": "1", "STATUS": "telling 0 clients to disconnect"}
    finally:
        listener.close()


def test_abstract_notify_socket() -> None:
    name = f"leads-comm-test-{id(object())}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(b"\0" + name.encode())
        listener.settimeout(5)
        Notifier.from_environment({"NOTIFY_SOCKET": f"@{name}"}).notify("READY=1")
        assert listener.recv(100) == b"READY=1"


def test_a_notification_nobody_hears_is_a_warning_not_a_crash(tmp_path: Any) -> None:
    with capturedLogs() as events:
        Notifier(str(tmp_path / "nobody")).ready("relay")
    assert [event["log_level"] for event in events] == [LogLevel.warn]
