"""Errors a user meets: start-up failures as the built-in exceptions a LEADS user already catches, misspelt
options, and the ``leads.comm`` 0.9 names that cannot keep their meaning here."""

from __future__ import annotations

import dataclasses
import difflib
import errno
import inspect
import re
from collections.abc import Iterable

from twisted.internet import error as twisted_errors
from twisted.internet.defer import CancelledError
from twisted.internet.defer import TimeoutError as DeferredTimeoutError
from twisted.python.failure import Failure

from leads_twisted.comm.views import ServiceView


class ReactorThreadError(RuntimeError):
    """A blocking call was made where it would deadlock, a reactor-thread call was made from another thread, or
    the reactor could not be reached."""


def describe_start_failure(service: ServiceView, failure: Failure) -> Exception:
    """Return a built-in ``OSError`` subclass saying what could not start and why, chained to the cause.

    A mistake in the settings (``ValueError``, ``TypeError``, a missing optional package) is returned as it is.
    """
    cause = failure.value
    where = service.describe_target()
    if isinstance(cause, ValueError) and endpoint_mistake(cause) != str(cause):
        return ValueError(f"cannot start on {where}: {endpoint_mistake(cause)}")
    if isinstance(cause, (ValueError, TypeError, ImportError)):
        return cause
    if isinstance(cause, OSError):
        described: OSError = cause
    elif isinstance(cause, twisted_errors.ConnectionRefusedError):
        described = ConnectionRefusedError(f"connection to {where} refused: is the server running there?")
    elif isinstance(cause, twisted_errors.DNSLookupError):
        described = ConnectionError(f"cannot resolve the address of {where}: {cause}")
    elif isinstance(cause, (twisted_errors.TimeoutError, DeferredTimeoutError)):
        described = TimeoutError(f"connecting to {where} timed out")
    elif isinstance(cause, twisted_errors.CannotListenError):
        reason = cause.socketError
        detail = getattr(reason, "strerror", None) or str(reason)
        port = cause.port if isinstance(cause.port, int) else 0
        hint = why_port_is_taken(port) if getattr(reason, "errno", None) == errno.EADDRINUSE else ""
        described = OSError(getattr(reason, "errno", None) or 0, f"cannot listen on {where}: {detail}{hint}")
    elif isinstance(cause, (CancelledError, twisted_errors.ConnectingCancelledError)):
        described = ConnectionAbortedError(f"closed before the connection to {where} was made")
    else:
        described = ConnectionError(f"cannot start on {where}: {cause}")
    if described is not cause:
        # The message says all of it: a chained Twisted traceback would say it twice more.
        described.__suppress_context__ = True
    return described


#: TCP states in /proc/net/tcp{,6}, by their hex code, for the ones that can hold a port.
_TCP_STATES: dict[str, str] = {
    "01": "ESTABLISHED",
    "02": "SYN_SENT",
    "03": "SYN_RECV",
    "04": "FIN_WAIT1",
    "05": "FIN_WAIT2",
    "06": "TIME_WAIT",
    "07": "CLOSE",
    "08": "CLOSE_WAIT",
    "09": "LAST_ACK",
    "0A": "LISTEN",
    "0B": "CLOSING",
}


def sockets_on_port(port: int, tables: Iterable[str] = ("/proc/net/tcp", "/proc/net/tcp6")) -> list[str]:
    """The states of the TCP sockets whose local port is ``port``, from the kernel's tables (Linux only)."""
    wanted = f":{port:04X}"
    states: list[str] = []
    for table in tables:
        try:
            with open(table) as lines:
                next(lines, None)
                for line in lines:
                    fields = line.split()
                    if len(fields) > 3 and fields[1].endswith(wanted):
                        states.append(_TCP_STATES.get(fields[3], fields[3]))
        except OSError:
            continue
    return states


def why_port_is_taken(port: int, states: list[str] | None = None) -> str:
    """What holds ``port``, said so the user knows what to do: a listener, or connections that linger."""
    if port <= 0:
        return ""
    states = sockets_on_port(port) if states is None else states
    if not states:
        return f"; another program holds port {port} (`ss -tanp 'sport = :{port}'` shows which)"
    if "LISTEN" in states:
        return f"; another program listens on it (`ss -ltnp 'sport = :{port}'` shows which)"
    lingering = states.count("TIME_WAIT")
    if lingering == len(states):
        return (
            f"; nothing listens on it, but {lingering} connection(s) of a program that has ended linger in "
            f"TIME_WAIT (up to 60 s), and that program did not allow the port's reuse (leads 0.9 does not): "
            f"start again in a minute, or use another port"
        )
    counts = ", ".join(f"{states.count(state)} {state}" for state in sorted(set(states)))
    return (
        f"; nothing listens on it, but connections still use it as their local port ({counts}): stop the "
        f"program that owns them (`ss -tanp 'sport = :{port}'`), or use another port"
    )


class PortingError(NotImplementedError):
    """A ``leads.comm`` 0.9 method whose meaning cannot hold here; the message says what to use instead."""


def porting_error(name: str, instead: str) -> PortingError:
    """The error for ``name`` of ``leads.comm`` 0.9, pointing at ``instead`` and at docs/porting.md."""
    return PortingError(f"{name} of leads.comm 0.9 has no counterpart here: {instead} (see docs/porting.md)")


#: Keyword arguments that wire a service to its reactor rather than set an option of it.
_WIRING = frozenset({"runner", "reactor", "handoff", "write_batch"})


def option_names(service_class: type) -> frozenset[str]:
    """The keyword options a ``Server`` or ``Client`` takes: its own keyword-only ones and the link options."""
    from leads_twisted.comm.link_policy import LinkPolicy

    own = {
        name
        for cls in service_class.__mro__
        if "__init__" in vars(cls)
        for name, parameter in inspect.signature(vars(cls)["__init__"]).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name not in _WIRING
    }
    shared = {f.name for f in dataclasses.fields(LinkPolicy) if f.init} - {"separator", "max_message"}
    return frozenset(own | shared)


def check_options(call: str, given: Iterable[str], valid: frozenset[str]) -> None:
    """Raise ``TypeError`` naming ``call`` for an option it does not take, with the nearest valid one."""
    unknown = sorted(set(given) - valid)
    if not unknown:
        return
    name = unknown[0]
    near = difflib.get_close_matches(name, sorted(valid), n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    raise TypeError(f"{call}() has no option {name!r}{hint}; its options are: {', '.join(sorted(valid))}")


def endpoint_mistake(error: Exception) -> str:
    """What is wrong with an endpoint description, in words: Twisted's parsers say ``int()`` failed."""
    text = str(error)
    found = re.fullmatch(r"invalid literal for int\(\) with base \d+: (.*)", text)
    if found:
        return f"{found.group(1)} is not a number where the description needs one (a port, as in tcp:16900)"
    return text
