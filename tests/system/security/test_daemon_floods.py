"""The real daemon against floods: 60 peers each holding an unfinished 7.9 MiB message stay within the memory
budget (RSS measured) while a well-behaved client keeps getting answers; a burst of empty messages is not
multiplied by the relay; a client cut for not reading is logged at warning with its name; ``--allow`` refuses
strangers at accept."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

import pytest

from ..daemon.twistd_harness import TIMEOUT, Client, Daemons, all_connected, clients, run_twistd

MIB = 1024 * 1024


def rss(pid: int) -> int:
    """Resident set size of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


class PeakRSS:
    """Samples a process's RSS every few milliseconds in a thread, until stopped; keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            with contextlib.suppress(OSError, AssertionError):
                self.peak = max(self.peak, rss(self.pid))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(TIMEOUT)
        return self.peak


def flood_unfinished_messages(port: int, peers: int, size: int, between_rounds) -> int:
    """``peers`` connections each send ``size`` bytes without a separator, round-robin in 256 KiB steps;
    ``between_rounds()`` runs after each round. Returns how many peers the daemon dropped."""
    step = 256 * 1024
    chunk = b"x" * step
    links = [socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) for _ in range(peers)]
    dropped: set[int] = set()
    try:
        sent = 0
        deadline = time.monotonic() + 120
        while sent < size and time.monotonic() < deadline:
            piece = chunk[: min(step, size - sent)]
            for index, link in enumerate(links):
                if index in dropped:
                    continue
                try:
                    link.sendall(piece)
                except OSError:
                    dropped.add(index)
            sent += len(piece)
            between_rounds()
        assert sent == size, "the flood did not finish in time"
        return len(dropped)
    finally:
        for link in links:
            link.close()


def test_sixty_peers_with_unfinished_messages_stay_within_the_memory_budget(daemons: Daemons) -> None:
    budget = 256 * MIB
    daemon = daemons.start("--port=0", "--interface=127.0.0.1", "--mode=echo")
    good = Client(daemon.port)
    try:
        good.send(b"ping start")
        assert good.receive(1) == [b"ping start"]
        baseline = rss(daemon.process.pid)
        sampler = PeakRSS(daemon.process.pid)
        answered = []

        def ping() -> None:
            number = len(answered)
            good.send(b"ping %d" % number)
            answered.append(good.receive(1, timeout=TIMEOUT))

        dropped = flood_unfinished_messages(daemon.port, 60, int(7.9 * MIB), ping)
        peak = sampler.stop()
        assert answered == [[b"ping %d" % n] for n in range(len(answered))] and len(answered) >= 30
        growth = peak - baseline
        print(f"RSS baseline {baseline / MIB:.0f} MiB, peak {peak / MIB:.0f} MiB, growth {growth / MIB:.0f} MiB")
        assert growth < budget + 64 * MIB, f"RSS grew by {growth / MIB:.0f} MiB, past the budget + 64 MiB"
        # The kernel's socket buffers hold part of the flood, so not every byte reaches the daemon before the
        # peers close; enough does to pass the budget many times over.
        assert dropped >= 5, f"only {dropped} of 60 peers dropped; 60 x 7.9 MiB is far past 256 MiB"
        log = daemon.wait_for_log("over max_memory (268435456); dropping it")
        line = next(line for line in log.splitlines() if "over max_memory" in line)
        assert "[leads_twisted.service#warn] 127.0.0.1:" in line and "held" in line, line
        good.send(b"ping end")
        assert good.receive(1) == [b"ping end"]
    finally:
        good.close()


def test_a_burst_of_empty_messages_is_not_multiplied_by_the_relay(daemons: Daemons) -> None:
    daemon = daemons.start("--port=0", "--interface=127.0.0.1")
    with clients(daemon.port, 100) as linked:
        all_connected(linked)
        sender, *receivers = linked
        started = time.monotonic()
        sender.socket.sendall(b";" * (512 * 1024) + b"after;")
        for receiver in receivers:
            assert receiver.receive(1) == [b"after"]
        elapsed = time.monotonic() - started
        # Nothing came before "after": each receiver got 6 bytes, not 512 KiB of separators.
        for receiver in receivers[:5]:
            receiver.socket.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                assert receiver.socket.recv(65536) == b""
        assert elapsed < 5, f"the relay took {elapsed:.1f} s over a burst of empty messages"


def test_a_client_cut_for_not_reading_is_logged_at_warning_with_its_name(daemons: Daemons) -> None:
    daemon = daemons.start("--port=0", "--interface=127.0.0.1", "--max-buffered=65536")
    with clients(daemon.port, 2) as (sender, sleeper):
        all_connected([sleeper, sender])
        sleeper_name = f"127.0.0.1:{sleeper.socket.getsockname()[1]}"
        payload = b"y" * 1000
        for _ in range(20):
            sender.send(*[payload] * 1000)  # 20 MB in all, to a peer that reads nothing
            if "SlowPeer" in daemon.log():
                break
        log = daemon.wait_for_log(f"SlowPeer: {sleeper_name} stopped reading")
        assert "[leads_twisted.daemon#warn]" in next(line for line in log.splitlines() if "SlowPeer:" in line)


def test_allow_refuses_strangers_at_accept_and_logs_it(daemons: Daemons, tmp_path: Path) -> None:
    daemon = daemons.start("--port=0", "--interface=127.0.0.1", "--allow=10.0.0.0/8", "--allow=fd00::/8")
    stranger = Client(daemon.port)
    try:
        assert stranger.receive_until_closed() == b""
    finally:
        stranger.close()
    daemon.wait_for_log("refused 127.0.0.1:")
    finished = run_twistd("--allow=10.0.0/33", cwd=tmp_path)
    lines = finished.stderr.strip().splitlines()
    assert finished.returncode == 1 and len(lines) == 1 and "--allow 10.0.0/33" in lines[0], finished.stderr


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (("--max-rate", "0"), "--max-rate must be a positive number of messages per second"),
        (("--handshake-timeout", "never"), "--handshake-timeout must be a positive number of seconds"),
        (("--max-memory", "-1"), "--max-memory must be a whole number of at least 0"),
    ],
)
def test_security_flags_that_do_not_fit_say_so_in_one_line(tmp_path: Path, arguments, expected) -> None:
    finished = run_twistd(*arguments, cwd=tmp_path)
    lines = finished.stderr.strip().splitlines()
    assert finished.returncode == 1 and len(lines) == 1 and expected in lines[0], finished.stderr
