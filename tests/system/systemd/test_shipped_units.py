"""What systemd really does with the shipped units: readiness, hardening, TLS, socket activation, journal
priorities and stop, each seen from outside with real clients on loopback."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from pathlib import Path

import pytest
from support_net import Identity, make_pki

from ..daemon.twistd_harness import Client, all_connected, clients
from .conftest import SERVICE, SOCKET, Units

#: The session's daemon venv may be built in the first test's setup.
pytestmark = pytest.mark.timeout(300)


def relays(port: int, host: str = "127.0.0.1") -> None:
    """Two clients: a message from one reaches the other through the daemon."""
    with clients(port, 2, host) as (receiver, sender):
        all_connected([receiver, sender])
        sender.send(b"through systemd")
        assert receiver.receive(1) == [b"through systemd"]


def status_of(units: Units, unit: str = SERVICE) -> dict[str, str]:
    """The daemon's ``/proc/PID/status``, read inside the sandbox's PID namespace."""
    pid = units.box.show(unit, "MainPID")
    assert pid not in ("", "0"), units.box.journal(unit)
    text = units.box.run("run", "cat", f"/proc/{pid}/status")
    return {key: value.strip() for key, _, value in (line.partition(":") for line in text.splitlines())}


def mounts_of(units: Units) -> dict[str, tuple[set[str], str]]:
    """The daemon's mount points as it sees them: options and file system type (the last mount on a point wins)."""
    pid = units.box.show(SERVICE, "MainPID")
    mounts = {}
    for line in units.box.run("run", "cat", f"/proc/{pid}/mountinfo").splitlines():
        fields, _, tail = line.partition(" - ")
        point, options = fields.split()[4:6]
        mounts[point] = (set(options.split(",")), tail.split()[0])
    return mounts


def journal_until(units: Units, text: str, *arguments: str, timeout: float = 10.0) -> str:
    """``journalctl ARGUMENTS`` once its output holds ``text`` (journald takes the daemon's lines in its own time)."""
    deadline = time.monotonic() + timeout
    while text not in (found := units.box.run("journal", "-o", "cat", *arguments)):
        assert time.monotonic() < deadline, f"no {text!r} in the journal:\n{units.box.journal(SERVICE)}"
        time.sleep(0.1)
    return found


def this_run(units: Units) -> str:
    """The journal match for the service's current run only."""
    return f"_SYSTEMD_INVOCATION_ID={units.box.show(SERVICE, 'InvocationID')}"


def test_start_returns_once_the_daemon_is_ready(units: Units) -> None:
    port = units.listen()
    assert units.box.show(SERVICE, "Type") == "notify"
    units.box.ctl("start", SERVICE)  # blocks until READY=1 (Type=notify)
    # No polling: by the time `systemctl start` returned the unit was active and the port listening.
    state = units.box.properties(SERVICE, "ActiveState", "SubState", "StatusText")
    assert (state["ActiveState"], state["SubState"]) == ("active", "running"), units.box.journal(SERVICE)
    assert f"127.0.0.1:{port}" in state["StatusText"]
    relays(port)


def test_hardening_is_applied_to_the_running_daemon(units: Units) -> None:
    units.listen()
    units.box.ctl("start", SERVICE)
    shown = units.box.properties(
        SERVICE,
        "DynamicUser",
        "PrivateUsers",
        "NoNewPrivileges",
        "ProtectSystem",
        "ProtectHome",
        "MemoryDenyWriteExecute",
        "RestrictAddressFamilies",
        "SystemCallFilter",
        "CapabilityBoundingSet",
        "UID",
    )
    for name, value in {
        "DynamicUser": "yes",
        "PrivateUsers": "yes",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "MemoryDenyWriteExecute": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert shown[name] == value, (name, shown[name])
    assert set(shown["RestrictAddressFamilies"].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    allowed = set(shown["SystemCallFilter"].split())
    assert {"read", "accept4", "epoll_wait"} <= allowed
    assert not {"reboot", "setrlimit", "mount", "init_module"} & allowed  # ~@privileged @resources, not @system-service
    # What the kernel says about the process systemd started.
    status = status_of(units)
    assert status["NoNewPrivs"] == "1"
    assert status["Seccomp"] == "2"  # a filter, not strict mode
    assert int(status["Seccomp_filters"]) >= 1
    assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0
    uid = int(shown["UID"])
    assert uid != 0 and 61184 <= uid <= 65519  # systemd's range for dynamic users
    assert status["Uid"].split() == [str(uid)] * 4
    # What it sees: a read-only system, empty home directories, a private /dev.
    mounts = mounts_of(units)
    assert "ro" in mounts["/"][0]
    for hidden in ("/root", "/home", "/dev"):
        assert mounts[hidden][1] == "tmpfs" and "ro" in mounts[hidden][0], (hidden, mounts[hidden])


def tls_link(port: int, ca: Path, identity: Identity) -> ssl.SSLSocket:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(ca)
    context.load_cert_chain(identity.certificate, identity.private_key)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def read_until(link: ssl.SSLSocket, wanted: bytes, timeout: float = 10.0) -> bytes:
    """Bytes from ``link`` until ``wanted`` is among them; fails on the end of the link or the deadline."""
    data, deadline = b"", time.monotonic() + timeout
    while wanted not in data:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {wanted!r} within {timeout} s; have {data!r}"
        link.settimeout(remaining)
        chunk = link.recv(65536)
        assert chunk, f"the server closed the link; have {data!r}"
        data += chunk
    return data


def refused(link: ssl.SSLSocket, timeout: float = 10.0) -> bool:
    """True if the server ends the link (a TLS alert or the end of the stream) without sending any message."""
    link.settimeout(timeout)
    try:
        link.sendall(b"let me in;")
        return link.recv(65536) == b""
    except (ssl.SSLError, ConnectionError):
        return True


def test_mutual_tls_under_the_shipped_hardening(units: Units) -> None:
    pki = make_pki(units.files, "systemd")
    for path in units.files.iterdir():
        path.chmod(0o644)  # throwaway keys the dynamic user must read
    port = units.listen(
        f"--tls-certificate={pki.server.certificate}", f"--tls-key={pki.server.private_key}", f"--tls-ca={pki.ca}"
    )
    units.box.ctl("start", SERVICE)
    assert units.box.show(SERVICE, "MemoryDenyWriteExecute") == "yes"
    receiver, sender = tls_link(port, pki.ca, pki.client), tls_link(port, pki.ca, pki.client)
    try:
        sender.sendall(b"hello;")  # the relay holds both once the receiver sees this
        read_until(receiver, b"hello;")
        stranger = tls_link(port, pki.ca, pki.stranger)  # its CA is not the server's
        try:
            assert refused(stranger)
        finally:
            stranger.close()
        sender.sendall(b"signed;")
        assert read_until(receiver, b"signed;") == b"signed;"  # and nothing of the stranger's
    finally:
        receiver.close()
        sender.close()
    journal_until(units, "TLS handshake with 127.0.0.1:", "-p", "warning", this_run(units))
    assert units.box.show(SERVICE, "ActiveState") == "active"


def test_socket_activation_starts_the_service_on_the_first_client(units: Units) -> None:
    port = units.socket_activated()
    units.box.ctl("start", SOCKET)
    assert units.box.show(SOCKET, "ActiveState") == "active"
    assert units.box.show(SERVICE, "ActiveState") == "inactive"  # nothing runs before a client comes
    assert f"[::1]:{port}" in units.box.show(SOCKET, "Listen")
    with clients(port, 2, "::1") as (receiver, sender):
        units.box.wait_for(SERVICE, "ActiveState", "active")
        assert units.box.show(SERVICE, "TriggeredBy") == SOCKET
        all_connected([receiver, sender])
        sender.send(b"activated")
        assert receiver.receive(1) == [b"activated"]
    # The shipped drop-in's own network namespace: the daemon opened nothing, it took systemd's socket.
    assert units.box.show(SERVICE, "PrivateNetwork") == "yes"


def test_journal_priorities_from_the_daemon(units: Units) -> None:
    units.listen("--allow=192.0.2.0/24")  # loopback is not in it: every test client is refused with a warning
    units.box.ctl("start", SERVICE)
    invocation = this_run(units)
    stranger = Client(units.port)
    address = f"127.0.0.1:{stranger.socket.getsockname()[1]}"
    try:
        assert stranger.receive_until_closed() == b""
    finally:
        stranger.close()
    warnings = journal_until(units, "not in allow", "-p", "warning", invocation)
    everything = units.box.run("journal", "-o", "cat", invocation)
    assert "listening on" in everything  # an info line: logged, and under -p warning it is not
    assert "listening on" not in warnings
    assert [line.split("] ", 1)[-1] for line in warnings.splitlines()] == [f"refused {address}: not in allow"]
    priorities = units.box.run("journal", "-o", "export", invocation)
    assert "PRIORITY=4" in priorities and "PRIORITY=6" in priorities


def test_stop_tells_the_clients_and_ends_inactive(units: Units) -> None:
    port = units.listen()
    units.box.ctl("start", SERVICE)
    limit = units.box.show(SERVICE, "TimeoutStopUSec")
    assert limit == "30s"  # above the daemon's stop bound, 3 x --close-timeout (docs/reliability.md)
    heard: list[bytes] = []

    def answer(client: Client) -> None:
        """A well-behaved client: on the daemon's disconnect it closes too."""
        heard.append(b"".join(client.receive(1, timeout=10.0)))
        client.socket.shutdown(socket.SHUT_WR)
        heard.append(client.receive_until_closed(timeout=10.0))

    with clients(port, 3) as connected:
        all_connected(connected)
        answering = [threading.Thread(target=answer, args=(client,)) for client in connected]
        for thread in answering:
            thread.start()
        started = time.monotonic()
        units.box.ctl("stop", SERVICE)  # returns once the unit has stopped
        took = time.monotonic() - started
        for thread in answering:
            thread.join(15)
    assert sorted(heard) == [b"", b"", b"", b"disconnect", b"disconnect", b"disconnect"], heard
    state = units.box.properties(SERVICE, "ActiveState", "Result", "ExecMainStatus")
    assert state == {"ActiveState": "inactive", "Result": "success", "ExecMainStatus": "0"}, units.box.journal(SERVICE)
    assert took < 10.0  # the clients answered: nothing waited for --close-timeout


#: What the template must share with the service, as systemd reads it.
HARDENING = (
    "Type",
    "TimeoutStopUSec",
    "LimitNOFILE",
    "DynamicUser",
    "PrivateUsers",
    "NoNewPrivileges",
    "CapabilityBoundingSet",
    "UMask",
    "ProtectSystem",
    "ProtectHome",
    "PrivateTmp",
    "PrivateDevices",
    "PrivateIPC",
    "ProtectProc",
    "ProcSubset",
    "ProtectKernelTunables",
    "ProtectKernelModules",
    "ProtectKernelLogs",
    "ProtectControlGroups",
    "ProtectClock",
    "ProtectHostname",
    "RestrictNamespaces",
    "RestrictRealtime",
    "RestrictSUIDSGID",
    "LockPersonality",
    "MemoryDenyWriteExecute",
    "RestrictAddressFamilies",
    "SystemCallArchitectures",
    "SystemCallFilter",
    "SystemCallErrorNumber",
)


def test_a_template_instance_runs_from_its_file_hardened_as_the_service(units: Units) -> None:
    instance = "leads-comm@telemetry.service"
    port = units.channel("telemetry")
    units.box.ctl("start", instance)  # ExecStartPre checks the file, then READY=1
    assert units.box.show(instance, "ActiveState") == "active"
    relays(port)
    hardening = units.box.properties(SERVICE, *HARDENING)
    assert sorted(hardening) == sorted(HARDENING)  # systemd knows every name (it leaves out one it does not)
    assert units.box.properties(instance, *HARDENING) == hardening
    assert units.box.show(instance, "WatchdogUSec") == "10s"  # the service's WatchdogSec=10 (shown once running)
    status = status_of(units, instance)
    assert (status["NoNewPrivs"], status["Seccomp"]) == ("1", "2")
    assert status["Uid"].split()[0] != "0"
    # Without its file an instance does not start, and systemd says which assertion failed.
    units.box.ctl("start", "leads-comm@missing.service", check=False)
    missing = units.box.properties("leads-comm@missing.service", "ActiveState", "AssertResult")
    assert missing == {"ActiveState": "inactive", "AssertResult": "no"}
