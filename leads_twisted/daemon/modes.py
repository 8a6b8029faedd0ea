"""What the daemon does with messages: the built-in modes, and a chain that runs a user's callback after one.

Each mode is a ``Callback`` of a ``Server``; it runs in the reactor thread and never raises, so a user's
callback chained after it always sees the event too.
"""

from __future__ import annotations

import contextlib

from twisted.logger import Logger

from leads_twisted.comm import Callback, ConnectionBase, LinkView, ServerHub, ServiceView
from leads_twisted.comm.log_guard import RateLimitedWarnings, already_logged, escape, peer_of

_log = Logger(namespace="leads_twisted.daemon")

#: How much of a message the log mode shows.
PREVIEW_BYTES: int = 80


class Mode(Callback):
    """What every mode does: log who comes and goes, how many are connected, and what went wrong with a peer's
    link (a slow reader cut, an idle link), at warning with the peer. The library logs the other link failures
    itself (an oversize message, the memory budget, a failed TLS handshake such as a refused certificate), so
    each failure is one line. A flood of one kind is summarised in one line per interval."""

    name: str = ""
    _warnings: RateLimitedWarnings | None = None

    def on_fail(self, service: ServiceView, error: Exception) -> None:
        peer = peer_of(error)
        if peer is None or already_logged(error):
            return  # not about one link (a failed start, a raising callback), or logged by the library already
        if self._warnings is None:
            from twisted.internet import reactor

            self._warnings = RateLimitedWarnings(_log, reactor)
        text = escape(error)
        if peer not in text:
            text = f"{peer}: {text}"
        self._warnings.warn(type(error).__name__, "{kind}: {text}", kind=type(error).__name__, text=text)

    def on_connect(self, service: ServiceView, connection: ConnectionBase) -> None:
        _log.info("{peer} connected ({count} connected)", peer=str(connection), count=_count(service))

    def on_disconnect(self, service: ServiceView, connection: ConnectionBase) -> None:
        _log.info("{peer} disconnected ({count} connected)", peer=str(connection), count=_count(service))


class Relay(Mode):
    """The hub: each message goes to every other connected client, in the order received, not to its sender.

    An empty message carries nothing and is not relayed: a burst of bare separators from one peer would
    otherwise be multiplied by the number of clients.
    """

    name = "relay"

    def on_receive(self, service: ServiceView, msg: bytes) -> None:
        if msg and isinstance(service, ServerHub):
            service.broadcast(msg, exclude=service.sender())


class Echo(Mode):
    """Each message goes back to its sender alone: for checking a client's link."""

    name = "echo"

    def on_receive(self, service: ServiceView, msg: bytes) -> None:
        with contextlib.suppress(OSError):
            service.reply(msg)


class LogOnly(Mode):
    """Nothing is sent: each message is logged and counted, per client and in all, for diagnosis."""

    name = "log"

    def __init__(self) -> None:
        super().__init__()
        self.messages: int = 0
        self.bytes: int = 0
        self._per_peer: dict[LinkView, tuple[int, int]] = {}

    def on_receive(self, service: ServiceView, msg: bytes) -> None:
        sender = service.sender()
        count, size = self._per_peer.get(sender, (0, 0))
        self._per_peer[sender] = (count + 1, size + len(msg))
        self.messages += 1
        self.bytes += len(msg)
        _log.info(
            "{peer} #{count} ({size} bytes): {preview!r}",
            peer=str(sender),
            count=count + 1,
            size=len(msg),
            preview=bytes(msg[:PREVIEW_BYTES]),
        )

    def on_disconnect(self, service: ServiceView, connection: ConnectionBase) -> None:
        count, size = self._per_peer.pop(connection, (0, 0))
        _log.info(
            "{peer} disconnected after {count} messages ({size} bytes); {total} messages ({total_bytes} bytes) in all",
            peer=str(connection),
            count=count,
            size=size,
            total=self.messages,
            total_bytes=self.bytes,
        )


#: The modes by the name ``--mode`` takes.
MODES: dict[str, type[Mode]] = {mode.name: mode for mode in (Relay, Echo, LogOnly)}


class Chained(Callback):
    """Runs the same method of each callback in turn, for every event: the mode first, then the user's."""

    def __init__(self, *callbacks: Callback) -> None:
        super().__init__()
        self.callbacks: tuple[Callback, ...] = callbacks

    def on_initialize(self, service: ServiceView) -> None:
        for callback in self.callbacks:
            callback.on_initialize(service)

    def on_fail(self, service: ServiceView, error: Exception) -> None:
        for callback in self.callbacks:
            callback.on_fail(service, error)

    def on_connect(self, service: ServiceView, connection: ConnectionBase) -> None:
        for callback in self.callbacks:
            callback.on_connect(service, connection)

    def on_receive(self, service: ServiceView, msg: bytes) -> None:
        for callback in self.callbacks:
            callback.on_receive(service, msg)

    def on_disconnect(self, service: ServiceView, connection: ConnectionBase) -> None:
        for callback in self.callbacks:
            callback.on_disconnect(service, connection)


def _count(service: ServiceView) -> int:
    return service.num_connections() if isinstance(service, ServerHub) else 1
