"""A daemon ``--callback`` for the close tests: counts each client's numbered messages (``name:seq``) as the
daemon receives them, checks their order, and writes the counts to ``$LEADS_COUNT_FILE`` whenever a link ends."""

from __future__ import annotations

import json
import os

from leads_twisted.comm import Callback, ConnectionBase, Service


class Counting(Callback):
    def __init__(self) -> None:
        super().__init__()
        self.got: dict[str, int] = {}
        self.out_of_order = 0
        self.fails: list[str] = []

    def on_receive(self, service: Service, msg: bytes) -> None:
        name, _, seq = msg.partition(b":")
        key = name.decode()
        expected = self.got.get(key, 0)
        if int(seq) != expected:
            self.out_of_order += 1
        self.got[key] = expected + 1

    def on_fail(self, service: Service, error: Exception) -> None:
        self.fails.append(repr(error))

    def on_disconnect(self, service: Service, connection: ConnectionBase) -> None:
        path = os.environ["LEADS_COUNT_FILE"]
        with open(path + ".tmp", "w") as out:
            json.dump({"got": self.got, "out_of_order": self.out_of_order, "fails": self.fails[:20]}, out)
        os.replace(path + ".tmp", path)
