"""Callbacks that the daemon tests load into twistd with ``--callback leads_probe:...``."""

from __future__ import annotations

from leads_twisted import L
from leads_twisted.comm import Callback, Service


class Probe(Callback):
    """Answers ``seen:<msg>`` to the sender of each message, so a test sees that this ``on_receive`` ran."""

    def on_receive(self, service: Service, msg: bytes) -> None:
        service.reply(b"seen:" + msg)


class Levels(Callback):
    """On the message ``levels``, logs one line at each level of ``L`` and says ``logged`` to the sender."""

    def on_receive(self, service: Service, msg: bytes) -> None:
        if msg == b"levels":
            L.debug("probe at debug")
            L.info("probe at info")
            L.warn("probe at warn")
            L.error("probe at error")
            service.reply(b"logged")


class NeedsArguments(Callback):
    """Cannot be made with no arguments, as the daemon makes it."""

    def __init__(self, required: int) -> None:
        super().__init__()
        self.required = required


class NotACallback:
    """Has nothing to do with ``Callback``."""
