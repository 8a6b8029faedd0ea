"""The daemon's stop on SIGTERM: what clients sent before it is read, within the documented bound."""
