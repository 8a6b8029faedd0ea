"""Callbacks the operator tests load into the daemon with ``--callback``."""

from __future__ import annotations

import time

from leads_twisted.comm import Callback, Service

#: How long ``Block`` holds the reactor: past the watchdog interval and /healthz's one second.
BLOCK_SECONDS = 2.0


class Block(Callback):
    """Holds the reactor thread on purpose when it receives ``block``: what the watchdog and health must see."""

    def on_receive(self, service: Service, msg: bytes) -> None:
        if msg == b"block":
            time.sleep(BLOCK_SECONDS)
