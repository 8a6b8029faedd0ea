"""The per-connection wrapper of the WebSocket endpoint: it meters a browser's frames and carries its link's
writes, and the factory that wraps each connection of the site in one."""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IProtocol
from twisted.internet.protocol import connectionDone
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from twisted.web.server import Site

from leads_twisted.comm import MessageTooLong
from leads_twisted.comm.memory_budget import MemoryBudget, MemoryBudgetExceeded
from leads_twisted.comm.reactor_types import ClockFromThreads
from leads_twisted.websocket.frames import FrameMeter


class MeteredChannel(ProtocolWrapper):
    """Stands between one TCP (or TLS) connection and its HTTP channel. Once the connection is a WebSocket,
    it counts the frames coming in (``FrameMeter``), stops passing bytes on when a message is too long, and
    tells the server's memory budget what an unfinished message holds."""

    def __init__(self, factory: WebSocketSite, wrapped: IProtocol) -> None:
        super().__init__(factory, wrapped)
        self.reactor: ClockFromThreads = factory.reactor
        self._meter: FrameMeter | None = None
        self._over: Callable[[Exception], None] | None = None
        self._limit = 0
        self._stopped = False
        self._budget: MemoryBudget | None = None
        self._partial_in = 0

    def meter(self, limit: int, over: Callable[[Exception], None], budget: MemoryBudget | None = None) -> None:
        """From now on, call ``over(error)`` (once) when a message grows past ``limit`` bytes or ``budget`` has
        no room for what its unfinished part holds, and drop the bytes that follow."""
        self._meter, self._over, self._limit, self._budget = FrameMeter(limit), over, limit, budget

    def carries_websocket(self) -> bool:
        """True once the connection has become a browser's link."""
        return self._meter is not None

    def dataReceived(self, data: bytes) -> None:
        if self._stopped:
            return
        meter = self._meter
        within = None if meter is None else meter.feed(data)
        if within is None:
            super().dataReceived(data)
            if meter is not None and self._budget is not None and meter.held != self._partial_in:
                self._partial_in = meter.held
                self._budget.set(self, meter.held)
            return
        if within:
            super().dataReceived(data[:within])  # the messages before the one too long still count
        self._stop(MessageTooLong(self._limit + 1, self._limit))

    def _stop(self, error: Exception) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._budget is not None:
            self._budget.release(self)
        if self._over is not None:
            self._over(error)

    def drop_for_memory(self, held: int, total: int, limit: int) -> None:
        """The server's memory budget is over, and this browser's unfinished message is among the biggest."""
        self._partial_in = 0
        self._stop(
            MemoryBudgetExceeded(
                f"{self.getPeer()} held {held} bytes of an unfinished WebSocket message while all peers held "
                f"{total}, over max_memory ({limit}); dropping it"
            )
        )

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._budget is not None:
            self._budget.release(self)
        super().connectionLost(reason)


class WebSocketSite(WrappingFactory[MeteredChannel]):
    """The factory for the endpoint: a twisted.web ``Site`` behind ``MeteredChannel``s."""

    protocol = MeteredChannel
    noisy = False

    def __init__(self, site: Site, reactor: ClockFromThreads) -> None:
        super().__init__(site)
        self.reactor: ClockFromThreads = reactor

    def channels(self) -> list[MeteredChannel]:
        """The connections open now (HTTP or WebSocket)."""
        return list(self.protocols)
