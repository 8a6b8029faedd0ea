"""Browsers on the relay: a WebSocket endpoint whose peers are links of a ``Server``, and a live page.

Built on Twisted's own ``twisted.web.websocket`` (with wsproto, ``pip install 'leads_twisted[websocket]'``);
``docs/browsers.md`` says how to use it and why this library.
"""

from __future__ import annotations

from leads_twisted.websocket.gate import WebSocketGate
from leads_twisted.websocket.link import CLOSE_GOING_AWAY, CLOSE_NORMAL, CLOSE_TOO_BIG, WebSocketLink

__all__ = ["CLOSE_GOING_AWAY", "CLOSE_NORMAL", "CLOSE_TOO_BIG", "WebSocketGate", "WebSocketLink"]
