"""The one error the ``leads-comm`` command shows its user."""

from __future__ import annotations


class CommandError(Exception):
    """Bad input or an unreachable peer: one line for the user, status 1."""
