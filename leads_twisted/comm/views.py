"""How callbacks and observers see a service and a link: the narrow, declared faces of the core's objects.

The modules beneath the core (callbacks, observers, counters, error descriptions) are typed against these
``Protocol``s, never against the core's classes, so that imports run one way and the core can change behind
them. A ``Server``, a ``Client`` and their hubs satisfy ``ServiceView``; every ``ConnectionBase`` satisfies
``LinkView``.
"""

from __future__ import annotations

from typing import Protocol


class LinkView(Protocol):
    """One link between a service and a peer, as callbacks and observers use it; ``str()`` names the peer."""

    #: The link's traffic, counted while its service has observers (framing included, controls not).
    messages_in: int
    bytes_in: int
    messages_out: int
    bytes_out: int

    @property
    def transport_kind(self) -> str:
        """What carries the link, in a word (``tcp``, ``tls``, ``unix``, a custom link's class)."""
        ...

    def send(self, msg: bytes) -> None:
        """Send one message to this peer alone; ``OSError`` once closed."""
        ...

    def close(self) -> None:
        """Tell the peer ``disconnect``, then end the link."""
        ...

    def closed(self) -> bool:
        """True once the link is closing or closed."""
        ...

    def buffered(self) -> int:
        """Bytes accepted for the peer and not yet written to it."""
        ...


class ServiceView(Protocol):
    """A server or a client, as its callbacks and observers see it."""

    def port(self) -> int:
        """The port served or connected to."""
        ...

    def describe_target(self) -> str:
        """Where the service listens or connects, for messages."""
        ...

    def sender(self) -> LinkView:
        """The link whose message is being delivered (inside ``on_receive``)."""
        ...

    def reply(self, msg: bytes) -> None:
        """Send ``msg`` to the sender of the message being delivered."""
        ...

    def close(self) -> None:
        """End the service."""
        ...
