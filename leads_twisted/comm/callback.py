"""The ``Callback`` interface through which a service reports everything that happens to it."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from leads_twisted.comm.views import ServiceView

if TYPE_CHECKING:
    from leads_twisted.comm.connection import ConnectionBase


class CallbackChain:
    """A link in a chain of handlers: a method can hand the same call on to the link bound before it.

    ``set_callback`` on a service binds the new callback in front of the current one; inside an overriding
    method, ``self.super(*args)`` calls the method of the same name on the previous link, if there is one.
    """

    def __init__(self, chain: CallbackChain | None = None) -> None:
        self._chain: CallbackChain | None = chain

    def bind_chain(self, chain: CallbackChain | None) -> None:
        """Make ``chain`` the link that ``super`` hands calls on to."""
        self._chain = chain

    def super(self, *args: object, **kwargs: object) -> None:
        """Call the previous link's method of the same name as the method this is called from.

        Call it directly from the overriding method (it finds the method's name from the caller's frame).
        """
        if self._chain is None:
            return
        frame = sys._getframe(1)
        while frame.f_code.co_name == "super" and frame.f_back is not None:
            frame = frame.f_back
        getattr(self._chain, frame.f_code.co_name)(*args, **kwargs)


class Callback(CallbackChain):
    """Override the methods you need; each one is a no-op by default.

    Every method runs in the reactor thread, one call at a time, so a method must not block: hand slow work to
    a thread of your own. A method that raises is reported to ``on_fail`` and the service carries on.
    """

    def on_initialize(self, service: ServiceView) -> None:
        """The service has started: the server is listening, or the client is about to connect."""

    def on_fail(self, service: ServiceView, error: Exception) -> None:
        """Something went wrong: a connection could not be made, a peer broke the rules, a callback raised."""

    def on_connect(self, service: ServiceView, connection: ConnectionBase) -> None:
        """A connection is up; it comes before any of that connection's messages."""

    def on_receive(self, service: ServiceView, msg: bytes) -> None:
        """A message arrived; ``service.sender()`` is the connection it came from."""

    def on_disconnect(self, service: ServiceView, connection: ConnectionBase) -> None:
        """A connection is gone, whichever side ended it; called once per connection."""
