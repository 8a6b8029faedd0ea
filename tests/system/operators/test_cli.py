"""Every ``leads-comm`` command as a subprocess against a real daemon, with its error cases."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import leads_twisted

from ..daemon.twistd_harness import REPO, Client, Daemons, all_connected, clients
from .conftest import monitor_url

SCRIPT = Path(sys.executable).with_name("leads-comm")


def run(*arguments: str, stdin: str | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``python -m leads_twisted ARGUMENTS`` to its end."""
    return subprocess.run(
        [sys.executable, "-m", "leads_twisted", *arguments],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def start(*arguments: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "leads_twisted", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def one_line_error(result: subprocess.CompletedProcess[str], text: str) -> None:
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert result.stderr.startswith("leads-comm: ") and text in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def wait_connected(daemon, count: int) -> None:
    """The relay logs each link with the count: wait for the line saying ``count`` are connected."""
    daemon.wait_for_log(f"connected ({count} connected)")


def test_console_script_and_module_say_the_version() -> None:
    for command in ([str(SCRIPT)], [sys.executable, "-m", "leads_twisted"]):
        result = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0
        assert result.stdout.startswith(f"leads-comm {leads_twisted.__version__} (leads_twisted) on Twisted ")


def test_send_arguments_and_stdin_lines(daemons: Daemons) -> None:
    daemon = daemons.start("--interface", "127.0.0.1", "--port", "0")
    with clients(daemon.port, 1) as (watcher,):
        wait_connected(daemon, 1)
        assert run("send", f"127.0.0.1:{daemon.port}", "one", "two").returncode == 0
        assert run("send", f":{daemon.port}", stdin="three\nfour\n").returncode == 0
        assert watcher.receive(4) == [b"one", b"two", b"three", b"four"]


def test_send_errors(daemons: Daemons) -> None:
    daemon = daemons.start("--interface", "127.0.0.1", "--port", "0")
    one_line_error(run("send", f":{daemon.port}", "a;b"), "message 1 contains the separator b';'")
    one_line_error(run("send", "127.0.0.1:1", "x"), "cannot connect to 127.0.0.1:1")
    one_line_error(run("send", "127.0.0.1:99999", "x"), "the port must be a number from 1 to 65535")
    one_line_error(run("send"), "the following arguments are required: HOST:PORT")
    one_line_error(run("fly"), "invalid choice: 'fly'")
    one_line_error(run("send", f":{daemon.port}", "--separator", "", "x"), "the separator must not be empty")


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ((), ["caf\u00e9", "two"]),
        (("--hex",), ["636166c3a9", "74776f"]),
    ],
)
def test_listen_prints_each_message_on_its_line(daemons: Daemons, style, expected) -> None:
    daemon = daemons.start("--interface", "127.0.0.1", "--port", "0")
    listener = start("listen", f":{daemon.port}", "--count", "2", *style)
    try:
        wait_connected(daemon, 1)
        with clients(daemon.port, 1) as (talker,):
            talker.send("caf\u00e9".encode(), b"two", b"three")
            out, err = listener.communicate(timeout=20)
    finally:
        listener.kill() if listener.poll() is None else None
    assert (listener.returncode, err) == (0, "")
    assert out.splitlines() == expected


def test_listen_json_with_a_timestamp_and_custom_separator(daemons: Daemons) -> None:
    daemon = daemons.start("--interface", "127.0.0.1", "--port", "0", "--separator", "end;")
    listener = start("listen", f":{daemon.port}", "--separator", "end;", "--json", "--count", "2")
    try:
        wait_connected(daemon, 1)
        before = time.time()
        talker = Client(daemon.port, separator=b"end;")
        try:
            talker.send(b"frame;1", b"\xff\x00")
            out, err = listener.communicate(timeout=20)
        finally:
            talker.close()
    finally:
        listener.kill() if listener.poll() is None else None
    assert err == ""
    first, second = (json.loads(line) for line in out.splitlines())
    assert (first["text"], first["size"]) == ("frame;1", 7)
    assert (second["hex"], second["size"]) == ("ff00", 2)
    assert before - 1 < first["time"] < time.time() + 1


def test_listen_ends_when_the_daemon_closes(daemons: Daemons) -> None:
    daemon = daemons.start("--interface", "127.0.0.1", "--port", "0")
    listener = start("listen", f":{daemon.port}")
    try:
        wait_connected(daemon, 1)
        daemon.terminate()
        out, err = listener.communicate(timeout=20)
    finally:
        listener.kill() if listener.poll() is None else None
    assert (listener.returncode, out, err) == (0, "", "")


def test_listen_errors() -> None:
    one_line_error(run("listen", "127.0.0.1:1"), "cannot connect to 127.0.0.1:1")
    one_line_error(run("listen", ":1", "--hex", "--json"), "not allowed with argument")
    one_line_error(run("listen", ":1", "--count", "0"), "must be a whole number of at least 1")


def test_ping_an_echo_daemon(daemons: Daemons) -> None:
    daemon = daemons.start("--interface", "127.0.0.1", "--port", "0", "--mode", "echo")
    result = run("ping", f"127.0.0.1:{daemon.port}", "--count", "30", "--size", "100")
    assert result.returncode == 0, result.stderr
    found = result.stdout.split()
    assert result.stdout.startswith("30 round trips: min ")
    values = [float(found[i]) for i in (4, 7, 10, 13)]  # min, p50, p99, max in ms
    assert 0 < values[0] <= values[1] <= values[2] <= values[3]


def test_ping_a_relay_times_out_saying_why(daemons: Daemons) -> None:
    daemon = daemons.start("--interface", "127.0.0.1", "--port", "0")
    one_line_error(
        run("ping", f":{daemon.port}", "--count", "1", "--timeout", "0.5"),
        "no echo within 0.5 s; is the daemon running with --mode echo?",
    )


def test_stats_shows_the_links(daemons: Daemons) -> None:
    daemon = daemons.start("--interface", "127.0.0.1", "--port", "0", "--monitor", "tcp:0:interface=127.0.0.1")
    url = monitor_url(daemon)
    with clients(daemon.port, 2) as pair:
        all_connected(pair)
        result = run("stats", url)
        names = ["{}:{}".format(*client.socket.getsockname()[:2]) for client in pair]
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "2 links; 1 messages in, 1 out in all"
    assert lines[1].split() == [
        "peer",
        "transport",
        "up",
        "msgs",
        "in",
        "bytes",
        "in",
        "msgs",
        "out",
        "bytes",
        "out",
        "buffered",
        "dropped",
    ]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert set(rows) == set(names)
    assert rows[names[1]][2:4] == ["1", "6"]  # the sender: 1 message, "hello;" in


def test_stats_errors(daemons: Daemons, tmp_path: Path) -> None:
    one_line_error(run("stats", "http://127.0.0.1:1"), "cannot reach http://127.0.0.1:1/connz")
    daemon = daemons.start("--interface", "127.0.0.1", "--port", "0", "--monitor", "tcp:0:interface=127.0.0.1")
    url = monitor_url(daemon)
    one_line_error(run("stats", f"{url}/nothing"), "HTTP 404")
    one_line_error(run("stats", f"{url}/healthz"), "did not answer JSON")


def test_certs_make_a_working_mutual_tls_set_up(daemons: Daemons, tmp_path: Path) -> None:
    pytest.importorskip("OpenSSL", reason="TLS needs pyOpenSSL (the tls extra, in the test extra)")
    pki = tmp_path / "pki"
    made = run("certs", str(pki), "--client", "dashboard")
    assert made.returncode == 0, made.stderr
    for stem in ("ca", "server", "dashboard"):
        assert (pki / f"{stem}.crt").read_text().startswith("-----BEGIN CERTIFICATE-----")
        assert (pki / f"{stem}.key").stat().st_mode & 0o077 == 0
    daemon = daemons.start(
        "--interface",
        "127.0.0.1",
        "--port",
        "0",
        "--tls-certificate",
        str(pki / "server.crt"),
        "--tls-key",
        str(pki / "server.key"),
        "--tls-ca",
        str(pki / "ca.crt"),
    )
    tls = ("--tls-ca", str(pki / "ca.crt"), "--tls-certificate", str(pki / "dashboard.crt"))
    tls_key = ("--tls-key", str(pki / "dashboard.key"))
    listener = start("listen", f"localhost:{daemon.port}", *tls, *tls_key, "--count", "1")
    try:
        wait_connected(daemon, 1)
        sent = run("send", f"127.0.0.1:{daemon.port}", *tls, *tls_key, "over tls")
        assert sent.returncode == 0, sent.stderr
        out, err = listener.communicate(timeout=20)
    finally:
        listener.kill() if listener.poll() is None else None
    assert (out, err) == ("over tls\n", "")
    one_line_error(run("send", f":{daemon.port}", *tls, "x"), "--tls-certificate and --tls-key go together")


def test_certs_errors(tmp_path: Path) -> None:
    assert run("certs", str(tmp_path)).returncode == 0
    one_line_error(run("certs", str(tmp_path)), "exists; give --force to overwrite")
    assert run("certs", str(tmp_path), "--force").returncode == 0
    one_line_error(run("certs", str(tmp_path / "x"), "--client", "server"), "a client cannot be named ca or server")
    blocker = tmp_path / "file"
    blocker.write_text("")
    one_line_error(run("certs", str(blocker / "sub")), "cannot make")
