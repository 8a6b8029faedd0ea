"""Bridges between a LEADS server and the world beyond the vehicle: today an MQTT broker (``MQTTBridge``)."""

from __future__ import annotations

from leads_twisted.bridge.mqtt import MQTTBridge
from leads_twisted.bridge.settings import BrokerAddress, parse_broker_url, read_credentials, tls_context
from leads_twisted.bridge.up_queue import DEFAULT_QUEUE_BYTES, UpQueue

__all__ = [
    "DEFAULT_QUEUE_BYTES",
    "BrokerAddress",
    "MQTTBridge",
    "UpQueue",
    "parse_broker_url",
    "read_credentials",
    "tls_context",
]
