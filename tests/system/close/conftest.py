"""Real ``twistd leads-comm`` processes for the close tests (the daemon tests' harness), ended with the test."""

from __future__ import annotations
