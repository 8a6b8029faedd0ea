"""Tells systemd when the daemon is ready and when it is stopping, for a ``Type=notify`` unit.

systemd names a Unix datagram socket in ``NOTIFY_SOCKET``; each notification is one datagram of
``KEY=value`` lines (see sd_notify(3)). Without that variable nothing is sent, so the daemon runs the same
by hand. A failed notification is logged, never fatal: the relay matters more than the bookkeeping.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from twisted.logger import Logger

_log = Logger(namespace="leads_twisted.daemon")

#: How long a notification may wait for room in systemd's socket queue.
SEND_TIMEOUT_SECONDS: float = 2.0


def socket_address(value: str) -> str | bytes | None:
    """The address to send to for a ``NOTIFY_SOCKET`` value: a path, or an abstract name (``@name``)."""
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return b"\0" + value[1:].encode()
    return None


class Notifier:
    """Sends sd_notify messages to the socket systemd gave us, or does nothing if it gave none."""

    def __init__(self, address: str | bytes | None) -> None:
        self._address: str | bytes | None = address

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Notifier:
        """A notifier for ``NOTIFY_SOCKET``; a value it cannot use is logged and ignored."""
        value = environ.get("NOTIFY_SOCKET", "")
        address = socket_address(value) if value else None
        if value and address is None:
            _log.warn("NOTIFY_SOCKET={value!r} is not a socket path or @name; systemd will not be told", value=value)
        return cls(address)

    @property
    def enabled(self) -> bool:
        """True if systemd asked to be notified."""
        return self._address is not None

    def ready(self, status: str) -> None:
        """Every listener is up: systemd may start the units that wait for this one."""
        self.notify("READY=1", f"STATUS={status}")

    def stopping(self, status: str) -> None:
        """The daemon has begun to shut down."""
        self.notify("STOPPING=1", f"STATUS={status}")

    def notify(self, *fields: str) -> None:
        """Send ``fields`` (``KEY=value`` strings) as one notification."""
        if self._address is None:
            return
        message = "\n".join(fields).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.settimeout(SEND_TIMEOUT_SECONDS)
                sock.sendto(message, self._address)
        except OSError as error:
            _log.warn("could not notify systemd ({fields}): {error}", fields=fields[0], error=error)
