"""End-to-end tests of ``twistd leads-comm``: real processes, raw-socket clients, the systemd units, the wheel."""
