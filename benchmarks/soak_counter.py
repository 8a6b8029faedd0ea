"""The ``--callback`` of the daemon under ``soak.py``'s close phases: it records, per sender, which numbered
messages (``name:seq[:...]``) arrived, and writes that to ``$LEADS_SOAK_COUNTS`` whenever a link ends."""

from __future__ import annotations

import json
import os

from leads_twisted.comm import Callback, ConnectionBase, Service


class Counting(Callback):
    """Per sender: how many arrived, the first and last number, how many came out of order, numbers skipped."""

    def __init__(self) -> None:
        super().__init__()
        self.senders: dict[str, dict[str, object]] = {}
        self.fails: list[str] = []

    def on_receive(self, service: Service, msg: bytes) -> None:
        name, _, rest = msg.partition(b":")
        seq = int(rest.split(b":", 1)[0])
        key = name.decode()
        if key not in self.senders:
            self.senders[key] = {"count": 0, "first": seq, "last": seq - 1, "out_of_order": 0, "skipped": []}
        entry = self.senders[key]
        last = entry["last"]
        assert isinstance(last, int)
        if seq <= last:
            entry["out_of_order"] += 1  # type: ignore[operator]
        elif seq > last + 1:
            skipped = entry["skipped"]
            assert isinstance(skipped, list)
            if len(skipped) < 100_000:
                skipped.extend(range(last + 1, seq))
        entry["last"] = max(last, seq)
        entry["count"] += 1  # type: ignore[operator]

    def on_fail(self, service: Service, error: Exception) -> None:
        if len(self.fails) < 50:
            self.fails.append(repr(error))

    def on_disconnect(self, service: Service, connection: ConnectionBase) -> None:
        path = os.environ["LEADS_SOAK_COUNTS"]
        with open(path + ".tmp", "w") as out:
            json.dump({"senders": self.senders, "fails": self.fails}, out)
        os.replace(path + ".tmp", path)
