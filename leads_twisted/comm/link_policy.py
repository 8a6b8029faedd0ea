"""The settings every link of a service shares: framing, size bounds, slow-peer policy, liveness."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypedDict

from leads_twisted.comm.framing import (
    DEFAULT_MAX_MESSAGE,
    DEFAULT_SEPARATOR,
    Decoder,
    Encoder,
    check_max_message,
    check_separator,
)
from leads_twisted.comm.length_framing import LengthDecoder, LengthEncoder

FramingName = Literal["separator", "length"]
SlowPolicy = Literal["disconnect", "drop"]

#: Outgoing bytes a link may hold for a peer that is not reading, beyond the transport's own buffer.
DEFAULT_MAX_BUFFERED: int = 4 * 1024 * 1024

#: Seconds a closing link may go without its peer taking a byte before it is cut.
DEFAULT_CLOSE_TIMEOUT: float = 5.0

#: The message a heartbeat sends; only services with ``heartbeat`` set send it or swallow it.
HEARTBEAT: bytes = b"heartbeat"


@dataclass(frozen=True)
class Backoff:
    """How a reconnecting client spaces its attempts: ``initial`` seconds, times ``factor`` per failure, at
    most ``maximum``, each delay moved at random by up to ``jitter`` of itself so a fleet does not retry in
    step."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.factor < 1 or self.maximum < self.initial or not 0 <= self.jitter < 1:
            raise ValueError(
                f"{self!r} is not a usable backoff: need initial > 0, factor >= 1, maximum >= initial, 0 <= jitter < 1"
            )

    def policy(self, uniform: Callable[[float, float], float] = random.uniform) -> Callable[[int], float]:
        """The delay before attempt number ``n`` (counted from 0 after a failure), as ``ClientService`` wants."""

        def delay(failures: int) -> float:
            base = min(self.initial * self.factor ** min(failures, 64), self.maximum)
            return base * (1.0 + uniform(-self.jitter, self.jitter))

        return delay


class LinkOptions(TypedDict, total=False):
    """The keyword options a service hands to its ``LinkPolicy`` beside ``separator`` and ``max_message``: type
    a service's ``**link_options`` with ``Unpack[LinkOptions]``."""

    framing: FramingName
    max_buffered: int
    slow_policy: SlowPolicy
    idle_timeout: float | None
    heartbeat: float | None
    handshake_timeout: float
    max_rate: float | None
    close_timeout: float
    direct_writes: bool


@dataclass(frozen=True)
class LinkPolicy:
    """What each link of one service obeys. Built once per service from its keyword options."""

    separator: bytes = DEFAULT_SEPARATOR
    framing: FramingName = "separator"
    max_message: int = DEFAULT_MAX_MESSAGE
    max_buffered: int = DEFAULT_MAX_BUFFERED
    slow_policy: SlowPolicy = "disconnect"
    idle_timeout: float | None = None
    heartbeat: float | None = None
    #: Seconds a TLS link may take from connect to a finished handshake before it is dropped.
    handshake_timeout: float = 10.0
    #: Messages per second a peer may send on average (bursts of one second's worth); more are held back by
    #: pausing reading from that peer, not dropped. None: no limit.
    max_rate: float | None = None
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT
    #: Whether a plain TCP or unix link's socket may be written past Twisted's buffer: by the reactor at the
    #: end of a batch, and by a sending thread when nothing is queued (``direct_write``). False: every byte goes
    #: through ``transport.write`` and every thread's send wakes the reactor.
    direct_writes: bool = True
    encoder: Encoder | LengthEncoder = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_separator(self.separator)
        check_max_message(self.max_message)
        if self.framing not in ("separator", "length"):
            raise ValueError(f"framing must be 'separator' or 'length', not {self.framing!r}")
        if self.slow_policy not in ("disconnect", "drop"):
            raise ValueError(f"slow_policy must be 'disconnect' or 'drop', not {self.slow_policy!r}")
        if not isinstance(self.max_buffered, int) or self.max_buffered < 0:
            raise ValueError(f"max_buffered must be a number of bytes, not {self.max_buffered!r}")
        for name in ("idle_timeout", "heartbeat", "handshake_timeout", "max_rate"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                unit = "messages per second" if name == "max_rate" else "seconds"
                raise ValueError(f"{name} must be a positive number of {unit} or None, not {value!r}")
        if (
            isinstance(self.close_timeout, bool)
            or not isinstance(self.close_timeout, (int, float))
            or not (self.close_timeout > 0)
        ):
            raise ValueError(f"close_timeout must be a positive number of seconds, not {self.close_timeout!r}")
        if not isinstance(self.direct_writes, bool):
            raise ValueError(f"direct_writes must be True or False, not {self.direct_writes!r}")
        encoder = LengthEncoder() if self.framing == "length" else Encoder(self.separator)
        object.__setattr__(self, "encoder", encoder)

    def decoder(self) -> Decoder | LengthDecoder:
        """A fresh decoder for one link."""
        if self.framing == "length":
            return LengthDecoder(self.max_message)
        return Decoder(self.separator, self.max_message)
