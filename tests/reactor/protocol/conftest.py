"""Fixtures for tests that run inside pytest-twisted's reactor; the helpers themselves live in ``support_net``.

Every wait is on an event (a Deferred fired by a callback or by data arriving) and has a timeout.
"""

from __future__ import annotations

import pytest_twisted
from support_net import REACTOR_TIMEOUT as TIMEOUT
from support_net import Net, Recorder

__all__ = ["TIMEOUT", "Net", "Recorder"]


@pytest_twisted.async_yield_fixture
async def net():
    helper = Net()
    yield helper
    await helper.close_all()
