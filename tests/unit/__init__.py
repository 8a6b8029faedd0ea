"""Pure units: no reactor, no sockets, no threads of the library."""
