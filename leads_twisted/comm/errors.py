"""Turns Twisted's start-up failures into the built-in exceptions a LEADS user already catches."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from twisted.internet import error as twisted_errors
from twisted.internet.defer import CancelledError
from twisted.internet.defer import TimeoutError as DeferredTimeoutError
from twisted.python.failure import Failure

if TYPE_CHECKING:
    from leads_twisted.comm.service import Service


def describe_start_failure(service: Service, failure: Failure) -> Exception:
    """Return a built-in ``OSError`` subclass saying what could not start and why, chained to the cause.

    A mistake in the settings (``ValueError``, ``TypeError``, a missing optional package) is returned as it is.
    """
    cause = failure.value
    if isinstance(cause, (ValueError, TypeError, ImportError)):
        return cause
    where = getattr(service, "describe_target", lambda: f"port {service.port()}")()
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
        hint = (
            "; another program (or another server) uses it"
            if getattr(reason, "errno", None) == errno.EADDRINUSE
            else ""
        )
        described = OSError(getattr(reason, "errno", None) or 0, f"cannot listen on {where}: {detail}{hint}")
    elif isinstance(cause, (CancelledError, twisted_errors.ConnectingCancelledError)):
        described = ConnectionAbortedError(f"closed before the connection to {where} was made")
    else:
        described = ConnectionError(f"cannot start on {where}: {cause}")
    if described is not cause:
        described.__cause__ = cause if isinstance(cause, BaseException) else None
    return described
