"""The ``leads-comm`` command line: one subcommand per job, one-line errors and status 1 on bad input."""

from __future__ import annotations

import argparse
import codecs
import sys
from collections.abc import Sequence
from typing import NoReturn

from leads_twisted.cli.errors import CommandError
from leads_twisted.comm.framing import DEFAULT_SEPARATOR
from leads_twisted.daemon.operators import version_line

DEFAULT_PORT = 16900


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line and status 1 (argparse's own is usage text and 2)."""

    def error(self, message: str) -> NoReturn:
        raise CommandError(f"{message} (see {self.prog} --help)")


def address(value: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT``, ``HOST`` (port 16900) or ``:PORT`` (127.0.0.1)."""
    host, port = value, str(DEFAULT_PORT)
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT")
            port = rest[1:]
    elif value.count(":") == 1:
        host, port = value.split(":")
    host = host or "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{value!r}: the port must be a number from 1 to 65535")
    return host, int(port)


def separator(value: str) -> bytes:
    """A separator with backslash escapes (``\\n``, ``\\x00``), as the daemon's ``--separator``."""
    decoded: bytes = codecs.escape_decode(value.encode())[0]
    if not decoded:
        raise argparse.ArgumentTypeError("the separator must not be empty")
    return decoded


def positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {value!r}")
    return int(value)


def seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {value!r}")
    return number


def _link_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("address", type=address, metavar="HOST:PORT", help="the daemon (port 16900 if left out)")
    parser.add_argument("--separator", type=separator, default=DEFAULT_SEPARATOR, help="bytes ending each message [;]")
    parser.add_argument("--tls-ca", metavar="PEM", help="connect with TLS, checking the server against this CA")
    parser.add_argument("--tls-certificate", metavar="PEM", help="client certificate, for mutual TLS")
    parser.add_argument("--tls-key", metavar="PEM", help="private key of --tls-certificate")
    parser.add_argument("--timeout", type=seconds, default=5.0, help="seconds to wait for the daemon [5]")


def build_parser() -> Parser:
    parser = Parser(prog="leads-comm", description="Talk to a LEADS communication daemon (twistd leads-comm).")
    parser.add_argument("--version", action="version", version=version_line())
    parser.add_argument("-v", "--verbose", action="store_true", help="log the library's events to stderr")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser, required=True)

    listen = commands.add_parser("listen", help="print each message from the daemon on its own line")
    _link_options(listen)
    style = listen.add_mutually_exclusive_group()
    style.add_argument("--hex", action="store_true", help="print each message in hexadecimal")
    style.add_argument("--json", action="store_true", help="print a JSON object per message, with a timestamp")
    listen.add_argument("--count", type=positive, help="stop after this many messages")

    send = commands.add_parser("send", help="send messages: the arguments, or one per line of stdin")
    _link_options(send)
    send.add_argument("messages", nargs="*", metavar="MSG", help="messages to send (none: read stdin)")

    ping = commands.add_parser("ping", help="time round trips through an echo daemon (--mode echo)")
    _link_options(ping)
    ping.add_argument("--count", type=positive, default=20, help="round trips [20]")
    ping.add_argument("--size", type=positive, default=32, help="bytes per message [32]")

    stats = commands.add_parser("stats", help="show a daemon's links, from its --monitor /connz")
    stats.add_argument("url", metavar="URL", help="the monitor, like http://127.0.0.1:9216 (/connz is added)")
    stats.add_argument("--timeout", type=seconds, default=5.0, help="seconds to wait for the monitor [5]")

    certs = commands.add_parser("certs", help="make a CA, a server and client certificates for mutual TLS")
    certs.add_argument("directory", metavar="DIR", help="where to write the PEM files (made if missing)")
    certs.add_argument("--host", action="append", default=[], help="a name or address the server is reached by")
    certs.add_argument("--client", action="append", default=[], help="a client certificate's name [client]")
    certs.add_argument("--days", type=positive, default=825, help="validity of the certificates [825]")
    certs.add_argument("--force", action="store_true", help="overwrite files already there")
    return parser


def log_to_stderr(verbose: bool) -> None:
    """The library's log on stderr (stdout carries messages): everything with ``-v``, else only the critical,
    since each failure is told in the command's own one line."""
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        textFileLogObserver,
    )

    from leads_twisted.logger import leave_output_to_host

    leave_output_to_host()
    level = LogLevel.info if verbose else LogLevel.critical
    observer = FilteringLogObserver(textFileLogObserver(sys.stderr), [LogLevelFilterPredicate(level)])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


def main(arguments: Sequence[str] | None = None) -> int:
    """Run one command; the exit status."""
    try:
        parser = build_parser()
        options, extra = parser.parse_known_args(arguments)
        if options.command == "send" and not [word for word in extra if word.startswith("-")]:
            options.messages += extra  # messages after the options: argparse takes them only before
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        log_to_stderr(options.verbose)
        if options.command == "certs":
            from leads_twisted.cli.certs import make_certificates

            return make_certificates(options)
        if options.command == "stats":
            from leads_twisted.cli.connz import show_links

            return show_links(options)
        from leads_twisted.cli import talk

        run = {"listen": talk.listen, "send": talk.send, "ping": talk.ping}[options.command]
        return run(options)
    except CommandError as error:
        print(f"leads-comm: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
