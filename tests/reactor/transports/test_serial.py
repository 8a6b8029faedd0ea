"""The serial link: its settings, its errors, and coming back when the device reappears (on pty pairs)."""

from __future__ import annotations

import os
import subprocess
import sys
import termios

import pytest
import pytest_twisted

from leads_twisted.comm import create_client
from leads_twisted.comm.link_policy import Backoff
from leads_twisted.comm.serial import SerialEndpoint
from leads_twisted.testing import Recorder

from .conftest import FramedPeer, PtyMaster, bounded


class Pty:
    """A pty pair whose slave side plays the device; ``serve()`` puts a framed peer on the master side once
    the client holds the slave side. Everything it opened is closed by ``close()``."""

    def __init__(self) -> None:
        self.master_fd, self.slave_fd = os.openpty()
        self.device = os.ttyname(self.slave_fd)
        self.peer = FramedPeer()
        self.master: PtyMaster | None = None

    def serve(self) -> FramedPeer:
        os.close(self.slave_fd)
        self.slave_fd = -1
        self.master = PtyMaster(self.master_fd, self.peer)
        self.master_fd = -1
        return self.peer

    def close(self) -> None:
        if self.master is not None:
            self.master.end()
        for fd in (self.master_fd, self.slave_fd):
            if fd >= 0:
                os.close(fd)
        self.master_fd = self.slave_fd = -1


@pytest.fixture
def ptys():
    made: list[Pty] = []
    yield lambda: made.append(Pty()) or made[-1]
    for pty in made:
        pty.close()


def test_missing_pyserial_says_how_to_install():
    code = "import sys; sys.modules['serial'] = None; import leads_twisted.comm.serial"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "ImportError" in done.stderr
    assert "pip install 'leads_twisted[serial]'" in done.stderr


def test_settings_are_checked():
    for bad, words in [
        ({"device": ""}, "serial device"),
        ({"baudrate": 0}, "baud rate"),
        ({"baudrate": "fast"}, "baud rate"),
        ({"bytesize": 9}, "bytesize"),
        ({"parity": "X"}, "parity"),
        ({"stopbits": 3}, "stopbits"),
    ]:
        options = {"device": "/dev/ttyACM0", **bad}
        with pytest.raises(ValueError, match=words):
            SerialEndpoint(**options)
    endpoint = SerialEndpoint("/dev/ttyACM0", 115200, bytesize=7, parity="E", stopbits=2)
    assert repr(endpoint) == "SerialEndpoint('/dev/ttyACM0', 115200 baud, 7E2)"


@pytest_twisted.ensureDeferred
async def test_settings_reach_the_line(services, ptys):
    pty = ptys()
    seen = Recorder()
    await services.client(seen, endpoint=SerialEndpoint(pty.device, 57600, bytesize=7, parity="E", stopbits=2))
    _, _, cflag, _, ispeed, ospeed, _ = termios.tcgetattr(pty.slave_fd)
    assert (ispeed, ospeed) == (termios.B57600, termios.B57600)
    assert cflag & termios.CSTOPB
    # A Linux pty forces 8 data bits without parity whatever it is told, so those two cannot be seen here.


@pytest_twisted.ensureDeferred
async def test_a_missing_device_fails_the_start_clearly(services, tmp_path):
    device = str(tmp_path / "ttyNOTHERE")
    seen = Recorder()
    client = create_client(0, seen, endpoint=SerialEndpoint(device))
    services.started.append(client)
    with pytest.raises(OSError) as raised:
        await bounded(client.start_in_reactor())
    assert device in str(raised.value) and "plugged in" in str(raised.value)
    assert seen.failures == [raised.value]
    with pytest.raises(OSError, match="ttyNOTHERE"):
        client.send(b"to nobody")


@pytest_twisted.ensureDeferred
async def test_a_lost_device_is_reported_once(services, ptys):
    pty = ptys()
    seen = Recorder()
    client = await services.client(seen, endpoint=SerialEndpoint(pty.device))
    peer = pty.serve()
    client.send(b"before the cable is pulled")
    await peer.when_received(1)
    pty.master.end()  # the device goes away
    await bounded(seen.when(lambda seen: seen.disconnections))
    assert seen.kinds() == ["initialize", "connect", "disconnect"]
    assert client.connection() is None


@pytest_twisted.ensureDeferred
async def test_reconnects_when_the_device_reappears(services, ptys, tmp_path):
    # A stable device name, as udev gives a board; it points at a new pty when the "board" comes back.
    device = tmp_path / "ttyLEADS"
    first = ptys()
    device.symlink_to(first.device)
    seen = Recorder()
    quick = Backoff(initial=0.05, factor=1.5, maximum=0.2, jitter=0.0)
    client = await services.client(seen, endpoint=SerialEndpoint(str(device)), reconnect=True, backoff=quick)
    await bounded(seen.when(lambda seen: len(seen.connections) == 1))
    peer = first.serve()
    client.send(b"one")
    await peer.when_received(1)

    first.master.end()  # unplugged: the client hears it and keeps trying to open the device
    await bounded(seen.when(lambda seen: len(seen.disconnections) == 1))
    second = ptys()
    (tmp_path / "ttyLEADS.new").symlink_to(second.device)
    os.replace(tmp_path / "ttyLEADS.new", device)  # plugged in again
    await bounded(seen.when(lambda seen: len(seen.connections) == 2))
    peer = second.serve()
    client.send(b"two")
    peer.send(b"welcome back")
    await peer.when_received(1)
    await bounded(seen.when(lambda seen: seen.received == [b"welcome back"]))
    assert peer.received == [b"two"]
    await bounded(client.close_in_reactor())
    assert isinstance(await bounded(peer.lost), Exception)
    assert seen.kinds() == ["initialize", "connect", "disconnect", "connect", "receive", "disconnect"]
