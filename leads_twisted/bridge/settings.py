"""Where and how the bridge reaches its broker: the ``mqtt://`` or ``mqtts://`` address, credentials and TLS.

Each mistake is a ``ValueError`` of one line that says what to fix, so the daemon can print it as it is.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

#: MQTT's registered ports, used when the address names none.
DEFAULT_PORTS: dict[str, int] = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True)
class BrokerAddress:
    """A broker: its host and port, and whether the link is TLS (``mqtts://``)."""

    host: str
    port: int
    tls: bool

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtt://HOST[:PORT]`` or ``mqtts://HOST[:PORT]`` as a ``BrokerAddress``."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS:
        raise ValueError(f"the broker address {url!r} must start with mqtt:// or mqtts://")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"the broker address {url!r} has a port that is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError(f"the broker address {url!r} names no host, as in mqtt://broker.example:1883")
    if parts.username is not None or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(
            f"the broker address {url!r} may hold only a host and a port; give credentials in a credentials file"
        )
    return BrokerAddress(parts.hostname, port or DEFAULT_PORTS[parts.scheme], parts.scheme == "mqtts")


def read_credentials(path: str) -> tuple[str, str]:
    """The user name (first line) and password (second line, may be empty) of a credentials file."""
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except OSError as error:
        raise ValueError(f"cannot read the broker credentials file {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"the broker credentials file {path} is not UTF-8 text") from None
    if not lines or not lines[0].strip():
        raise ValueError(f"the broker credentials file {path} must hold a user name on its first line")
    return lines[0].strip(), lines[1] if len(lines) > 1 else ""


def tls_context(ca: str | None = None, certificate: str | None = None, key: str | None = None) -> ssl.SSLContext:
    """A client TLS context that checks the broker's certificate and name: against ``ca`` if given, else the
    system's CAs; with ``certificate`` and ``key``, the bridge also presents its own (mutual TLS)."""
    try:
        context = ssl.create_default_context(cafile=ca)
    except (OSError, ssl.SSLError) as error:
        raise ValueError(f"cannot use the broker CA file {ca}: {error}") from None
    if certificate is not None:
        try:
            context.load_cert_chain(certificate, key)
        except (OSError, ssl.SSLError) as error:
            raise ValueError(f"cannot use the bridge's certificate {certificate} and key {key}: {error}") from None
    elif key is not None:
        raise ValueError("a key for the bridge's TLS needs its certificate too")
    return context


def check_topic_root(root: str) -> str:
    """``root`` if it can prefix MQTT topics to publish to: not empty, no wildcard, no trailing slash."""
    if not root or "+" in root or "#" in root or root.endswith("/") or "\x00" in root:
        raise ValueError(f"the bridge topic root {root!r} must be a plain topic like leads/car1: no + # or final /")
    return root


def check_vehicle(name: str) -> str:
    """``name`` if it can be one level of a topic: not empty, no ``/``, ``+`` or ``#``."""
    if not name or any(character in name for character in "/+#\x00"):
        raise ValueError(f"the vehicle name {name!r} must be one topic level: not empty, no / + or #")
    return name
