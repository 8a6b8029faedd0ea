"""Let the daemon hold as many clients as the system allows: raise its soft limit on open descriptors.

Each client is one descriptor. systemd (and most shells) start services with a soft limit of 1024, kept low
for programs that use ``select()``, and a much higher hard limit that a process may raise its soft limit to.
An epoll or poll reactor has no use for the low one, which would otherwise turn clients away past a thousand.
"""

from __future__ import annotations

from twisted.logger import Logger

_log = Logger(namespace="leads_twisted.daemon")


def reactor_takes_any_descriptor(reactor: object) -> bool:
    """True for reactors that watch descriptors without ``select()``'s limit of 1024 (epoll, poll)."""
    return type(reactor).__name__ in ("EPollReactor", "PollReactor")


def raise_descriptor_limit(reactor: object) -> None:
    """Raise the soft limit on open descriptors to the hard limit, if the reactor can use them all."""
    try:
        import resource
    except ImportError:  # not POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard or not reactor_takes_any_descriptor(reactor):
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (OSError, ValueError) as error:
        _log.warn("could not raise the limit on open descriptors from {soft}: {error}", soft=soft, error=error)
        return
    limit = "unlimited" if hard == resource.RLIM_INFINITY else hard
    _log.info("open descriptors: limit raised from {soft} to {limit}", soft=soft, limit=limit)
