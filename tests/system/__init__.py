"""System tests: real twistd/twist, interop with leads 0.9.7, systemd, Mosquitto, Chromium."""
