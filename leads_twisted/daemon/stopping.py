"""How long the daemon may take to stop: its links drain while their peers read, within a bound that the unit's
``TimeoutStopSec=`` must exceed.

On SIGTERM every client is told ``disconnect`` after what was sent to it before, and everything a client sent
before it heard that is still read and handed to the mode and callback. A link whose peer takes nothing for
``--close-timeout`` seconds is cut (each close timeout is measured from the peer's last progress). Links still
draining ``STOP_WITHIN_CLOSE_TIMEOUTS`` close timeouts after SIGTERM are cut too, so the daemon ends within
that bound (plus the moment twistd needs to exit) whatever its peers do.
"""

from __future__ import annotations

#: On SIGTERM, links still draining after this many close timeouts are cut.
STOP_WITHIN_CLOSE_TIMEOUTS: int = 3


def stop_within(close_timeout: float) -> float:
    """Seconds after SIGTERM by which every link has ended (drained, or cut)."""
    return STOP_WITHIN_CLOSE_TIMEOUTS * close_timeout
