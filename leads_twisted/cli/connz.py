"""``stats URL``: a daemon's ``/connz`` as a table people can read."""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from leads_twisted.cli.errors import CommandError

COLUMNS = ("peer", "transport", "up", "msgs in", "bytes in", "msgs out", "bytes out", "buffered", "dropped")


def connz_url(url: str) -> str:
    """``url`` with ``/connz`` as its path when it names none; ``http://`` when it names no scheme."""
    if "://" not in url:
        url = f"http://{url}"
    parts = urllib.parse.urlsplit(url)
    if parts.path in ("", "/"):
        parts = parts._replace(path="/connz")
    return urllib.parse.urlunsplit(parts)


# Any: a JSON document from the network, whose values ``table`` converts as it reads them.
def fetch(url: str, timeout: float) -> dict[str, Any]:
    """The JSON at ``url``, or ``CommandError``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        raise CommandError(f"{url}: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise CommandError(f"cannot reach {url}: {reason}; is the daemon running with --monitor?") from None
    except ValueError as error:
        raise CommandError(f"{url}: {error}") from None
    try:
        document = json.loads(body)
    except ValueError:
        raise CommandError(f"{url} did not answer JSON; give the daemon's --monitor address") from None
    if not isinstance(document, dict) or not isinstance(document.get("links"), list):
        raise CommandError(f"{url} did not answer a /connz document")
    return document


def duration(seconds: float) -> str:
    """``42s``, ``5m07s``, ``3h05m``, ``2d04h``."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def table(document: dict[str, Any]) -> str:
    """The links as aligned columns, under a line of totals."""
    now = float(document.get("now", time.time()))
    rows = [
        (
            str(link["peer"]),
            str(link["transport"]),
            duration(now - float(link["connected_since"])),
            f"{link['messages_in']:,}",
            f"{link['bytes_in']:,}",
            f"{link['messages_out']:,}",
            f"{link['bytes_out']:,}",
            f"{link['buffered']:,}",
            f"{link['dropped']:,}",
        )
        for link in document["links"]
    ]
    widths = [max(len(row[i]) for row in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    lines = [
        f"{document.get('connections', len(rows))} links; {document.get('messages_in', 0):,} messages in, "
        f"{document.get('messages_out', 0):,} out in all",
    ]
    for row in [COLUMNS, *rows]:
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [cell.ljust(width) if i < 2 else cell.rjust(width) for i, (cell, width) in pairs]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def show_links(options: argparse.Namespace) -> int:
    """Print the table of the daemon's links."""
    url = connz_url(options.url)
    document = fetch(url, options.timeout)
    try:
        print(table(document))
    except (KeyError, TypeError, ValueError) as error:
        raise CommandError(f"{url}: a link lacks {error}; is this a leads-comm monitor?") from None
    return 0
