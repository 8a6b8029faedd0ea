"""Fixtures of the daemon tests: real twistd processes, ended with the test."""

from __future__ import annotations
