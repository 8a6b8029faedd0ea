"""Reactor tests: in memory or over loopback, inside pytest-twisted's reactor."""
