"""The daemon's security options turned into the server's keyword options: who may connect, how much memory
all peers may hold, how fast one peer may send, how long a TLS handshake may take."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from twisted.python import usage


class SecurityOptions(TypedDict):
    """The server's keyword options the security flags set."""

    allow: Sequence[str] | None
    max_memory: int | None
    max_rate: float | None
    handshake_timeout: float


def security_options(options: usage.Options) -> SecurityOptions:
    """``create_server`` keyword options from the parsed ``--allow``, ``--max-memory``, ``--max-rate`` and
    ``--handshake-timeout``."""
    return {
        "allow": options["allow"] or None,
        "max_memory": options["max-memory"] or None,
        "max_rate": options["max-rate"],
        "handshake_timeout": options["handshake-timeout"],
    }
