"""Fixtures of the MQTT bridge tests: a real Mosquitto, its clients, twistd daemons; all ended by pid."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..interop.conftest import original_python  # noqa: F401 - the leads 0.9.7 venv, shared with the interop tests
from .mosquitto import Broker, need_mosquitto


@pytest.fixture
def make_broker(tmp_path: Path) -> Iterator[type[Broker]]:
    """Makes brokers (not started) for one test; each is stopped when the test ends."""
    need_mosquitto()
    made: list[Broker] = []

    def make(persistence: bool = False, settings: tuple[str, ...] = ()) -> Broker:
        directory = tmp_path / f"broker{len(made)}"
        directory.mkdir()
        broker = Broker(directory, persistence, settings)
        made.append(broker)
        return broker

    try:
        yield make  # type: ignore[misc]
    finally:
        for broker in made:
            broker.close()


@pytest.fixture
def broker(make_broker) -> Broker:
    """A running broker."""
    return make_broker().start()
