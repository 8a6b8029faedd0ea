"""``leads-comm``: the command-line client of a LEADS daemon (listen, send, ping, stats, certs)."""
