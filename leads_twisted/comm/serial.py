"""A client link over a serial port (an Arduino board, a USB serial adapter), with the usual framing.

``SerialEndpoint`` is a Twisted client endpoint: give it to a client as ``endpoint=`` and the client opens the
device instead of dialling TCP, with the same callbacks, ``send`` and ``close``. With ``reconnect=True`` the
client keeps trying to open the device again after it was lost (unplugged), so it comes back when the device
reappears. Twisted's ``SerialPort`` carries the bytes; it needs pyserial, the ``serial`` extra.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import TypedDict, Unpack

try:
    import serial as pyserial
except ImportError as missing:  # pragma: no cover - depends on the environment
    raise ImportError(
        "leads_twisted.comm.serial needs pyserial; install it with: pip install 'leads_twisted[serial]'"
    ) from missing

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionAborted
from twisted.internet.interfaces import IAddress, IProtocol, IProtocolFactory, IReactorTime, IStreamClientEndpoint
from twisted.internet.serialport import SerialPort
from twisted.python.failure import Failure
from zope.interface import implementer

from leads_twisted.comm.reactor_types import IHubReactor, global_reactor

#: The speed LEADS boards and pyserial start with.
DEFAULT_BAUDRATE: int = 9600

_PARITIES: dict[str, str] = {"N": "none", "E": "even", "O": "odd", "M": "mark", "S": "space"}


class SerialSettings(TypedDict):
    """The line settings Twisted's ``SerialPort`` takes besides the device and the speed (pyserial's names)."""

    bytesize: int
    parity: str
    stopbits: float
    xonxoff: bool
    rtscts: bool


@implementer(IAddress)
@dataclass(frozen=True)
class SerialAddress:
    """Where a serial link runs: its device; a connection over it is named after ``name``."""

    name: str


class _SerialTransport(SerialPort):
    """Twisted's ``SerialPort`` with what a LEADS link also asks of its transport.

    A serial line has no half-close, so shutting the write side closes the port once the output is written;
    ``abortConnection`` drops what is still unwritten and closes at once.
    """

    def __init__(
        self,
        protocol: IProtocol,
        address: SerialAddress,
        reactor: IHubReactor,
        baudrate: int,
        **settings: Unpack[SerialSettings],
    ) -> None:
        self._address = address
        self._aborting = False
        self._clock: IReactorTime = reactor
        super().__init__(protocol, address.name, reactor, baudrate=baudrate, **settings)

    def getPeer(self) -> SerialAddress:
        return self._address

    def getHost(self) -> SerialAddress:
        return self._address

    def loseWriteConnection(self) -> None:
        self.loseConnection()

    def abortConnection(self) -> None:
        if self.disconnected or self._aborting:
            return
        self._aborting = True
        self.stopReading()
        self.stopWriting()
        self._clock.callLater(0, self._lose_now)

    def _lose_now(self) -> None:
        if not self.disconnected:
            self.connectionLost(Failure(ConnectionAborted()))


@implementer(IStreamClientEndpoint)
class SerialEndpoint:
    """Opens the serial ``device`` (``/dev/ttyACM0``, ``COM3``) for a client: ``create_client(endpoint=...)``.

    ``baudrate``, ``bytesize`` (5 to 8), ``parity`` (``"N"``, ``"E"``, ``"O"``, ``"M"``, ``"S"``), ``stopbits``
    (1, 1.5, 2) and flow control (``xonxoff``, ``rtscts``) must match the device; the defaults are 9600 8N1
    without flow control. ``reactor`` is the global one unless given.

    Each ``connect`` opens the device anew and fails at once with ``OSError`` if it is missing or busy, so a
    reconnecting client (``reconnect=True``) can simply call it again until the device is back.
    """

    def __init__(
        self,
        device: str,
        baudrate: int = DEFAULT_BAUDRATE,
        *,
        bytesize: int = 8,
        parity: str = "N",
        stopbits: float = 1,
        xonxoff: bool = False,
        rtscts: bool = False,
        reactor: IHubReactor | None = None,
    ) -> None:
        if not isinstance(device, str) or not device:
            raise ValueError(f"the serial device must be a path or port name such as '/dev/ttyACM0', not {device!r}")
        if not isinstance(baudrate, int) or isinstance(baudrate, bool) or baudrate <= 0:
            raise ValueError(f"the baud rate must be a positive whole number such as 115200, not {baudrate!r}")
        if bytesize not in pyserial.Serial.BYTESIZES:
            raise ValueError(f"bytesize must be one of {pyserial.Serial.BYTESIZES}, not {bytesize!r}")
        if parity not in _PARITIES:
            raise ValueError(f"parity must be one of {sorted(_PARITIES)} ({', '.join(_PARITIES.values())})")
        if stopbits not in pyserial.Serial.STOPBITS:
            raise ValueError(f"stopbits must be one of {pyserial.Serial.STOPBITS}, not {stopbits!r}")
        self.address: SerialAddress = SerialAddress(device)
        self.baudrate: int = baudrate
        self.settings: SerialSettings = {
            "bytesize": bytesize,
            "parity": parity,
            "stopbits": stopbits,
            "xonxoff": bool(xonxoff),
            "rtscts": bool(rtscts),
        }
        self._reactor = reactor

    @property
    def device(self) -> str:
        """The device this endpoint opens."""
        return self.address.name

    def __repr__(self) -> str:
        settings = self.settings
        return (
            f"SerialEndpoint({self.device!r}, {self.baudrate} baud, "
            f"{settings['bytesize']}{settings['parity']}{settings['stopbits']:g})"
        )

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        """Open the device and run a protocol of ``protocolFactory`` over it; fails with ``OSError`` if it cannot."""
        reactor = self._reactor if self._reactor is not None else global_reactor()
        protocol = protocolFactory.buildProtocol(self.address)
        if protocol is None:
            return fail(ConnectionRefusedError(f"the client declined a link over {self.device}"))
        try:
            _SerialTransport(protocol, self.address, reactor, baudrate=self.baudrate, **self.settings)
        except pyserial.SerialException as error:
            return fail(self._cannot_open(error))
        except (OSError, ValueError):
            return fail()
        return succeed(protocol)

    def _cannot_open(self, error: pyserial.SerialException) -> OSError:
        code = error.errno if isinstance(error.errno, int) else None
        reason = os.strerror(code) if code else str(error)
        hint = {
            errno.ENOENT: "; is it plugged in, and is the name right?",
            errno.EACCES: "; add your user to the group that owns it (often dialout) or fix its permissions",
            errno.EBUSY: "; another program has it open",
        }.get(code or 0, "")
        described = OSError(code or errno.EIO, f"cannot open serial device {self.device!r}: {reason}{hint}")
        described.__cause__ = error
        return described
