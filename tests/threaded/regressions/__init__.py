"""Regression tests of the threaded facade, each in a subprocess."""
