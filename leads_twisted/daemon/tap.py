"""``twistd leads-comm``: its options and ``makeService``, which the plugin names by this module's path.

A mistake in the command line ends twistd with one line on stderr and status 1, not twistd's full usage text
or a traceback: on a vehicle the line lands in the journal, where it must say what to fix.
"""

from __future__ import annotations

import codecs
import sys
from collections.abc import Sequence
from typing import NoReturn

from twisted.application.service import IService
from twisted.python import usage

from leads_twisted.comm import DEFAULT_MAX_MESSAGE, DEFAULT_SEPARATOR, Callback, ServerHub
from leads_twisted.comm.endpoints import server_endpoint
from leads_twisted.comm.errors import endpoint_mistake
from leads_twisted.comm.framing import check_separator
from leads_twisted.comm.link_policy import DEFAULT_CLOSE_TIMEOUT, DEFAULT_MAX_BUFFERED
from leads_twisted.comm.memory_budget import DEFAULT_MAX_MEMORY
from leads_twisted.comm.reactor_types import IHubReactor, global_reactor
from leads_twisted.comm.server_hub import parse_allow
from leads_twisted.comm.tls import TLSOptions, TLSSelfCheckFailed
from leads_twisted.daemon.bridge import with_bridge
from leads_twisted.daemon.config import file_arguments, given_on_command_line
from leads_twisted.daemon.loader import CallbackNotLoaded, load_callback_class, make_callback
from leads_twisted.daemon.modes import MODES, Chained
from leads_twisted.daemon.operators import (
    DEFAULT_SLOW_CALLBACK,
    check,
    log_version,
    version_line,
    with_operator_parts,
)
from leads_twisted.daemon.readiness import Notifier
from leads_twisted.daemon.security import security_options
from leads_twisted.daemon.service import CommService
from leads_twisted.daemon.stopping import stop_within
from leads_twisted.daemon.websocket import with_websocket
from leads_twisted.logger import leave_output_to_host

DEFAULT_PORT: int = 16900

LONGDESC = """\
Serves LEADS clients over TCP or any Twisted server endpoint. By default it is a relay hub: each message from a
client goes to every other connected client, in order, and not back to its sender. --callback runs your own
Callback after the mode, in the reactor thread. On SIGTERM every client is told "disconnect" before the process
ends. Under systemd (Type=notify) it reports READY=1 once every listener is up, and STOPPING=1.
"""


class Options(usage.Options):
    """The command line of ``twistd leads-comm``."""

    longdesc = LONGDESC
    compData = usage.Completions(optActions={"mode": usage.CompleteList(sorted(MODES))})

    def __init__(self) -> None:
        super().__init__()
        self["port"] = DEFAULT_PORT
        self["interface"] = ""
        self["endpoint"] = []
        self["separator"] = DEFAULT_SEPARATOR
        self["max-message"] = DEFAULT_MAX_MESSAGE
        self["mode"] = "relay"
        self["callback"] = None
        self["max-connections"] = None
        self["max-buffered"] = DEFAULT_MAX_BUFFERED
        self["slow-policy"] = "disconnect"
        self["idle-timeout"] = None
        self["heartbeat"] = None
        self["framing"] = "separator"
        self["tls-certificate"] = None
        self["tls-key"] = None
        self["tls-ca"] = None
        self["allow"] = []
        self["max-memory"] = DEFAULT_MAX_MEMORY
        self["max-rate"] = None
        self["handshake-timeout"] = 10.0
        # --- operators ---
        self["monitor"] = None
        self["slow-callback"] = DEFAULT_SLOW_CALLBACK
        self["config"] = None
        self["check"] = False
        # --- reliable close (issue 10a) ---
        self["close-timeout"] = DEFAULT_CLOSE_TIMEOUT

    def opt_port(self, value: str) -> None:
        """TCP port to listen on, 0 for any free one [default: 16900]"""
        self["port"] = _number("--port", value, 0, 65535)

    opt_p = opt_port

    def opt_interface(self, address: str) -> None:
        """address to listen on with --port [default: all interfaces]"""
        self["interface"] = address

    opt_i = opt_interface

    def opt_endpoint(self, description: str) -> None:
        """Twisted server endpoint to listen on instead of --port/--interface, like tcp6:16900,
        unix:/run/leads-comm/socket or systemd:domain=INET6:name=leads-comm; repeat it to listen on several"""
        self["endpoint"].append(description)

    opt_e = opt_endpoint

    def opt_separator(self, value: str) -> None:
        """bytes that end every message; backslash escapes such as \\n or \\x00 are understood [default: ;]"""
        try:
            self["separator"] = check_separator(codecs.escape_decode(value.encode())[0])
        except ValueError as error:
            raise usage.UsageError(f"--separator {value!r}: {error}") from None

    def opt_max_message(self, value: str) -> None:
        """longest message a client may send, in bytes [default: 8388608]"""
        self["max-message"] = _number("--max-message", value, 1, None)

    def opt_max_connections(self, value: str) -> None:
        """most clients connected at once; one more is closed at once, with a log line [default: no limit]"""
        self["max-connections"] = _number("--max-connections", value, 1, None)

    def opt_max_buffered(self, value: str) -> None:
        """bytes held for a client that stopped reading before --slow-policy acts [default: 4194304]"""
        self["max-buffered"] = _number("--max-buffered", value, 0, None)

    def opt_slow_policy(self, value: str) -> None:
        """disconnect a client past --max-buffered, or drop messages for it [default: disconnect]"""
        if value not in ("disconnect", "drop"):
            raise usage.UsageError(f"--slow-policy must be disconnect or drop, not {value!r}")
        self["slow-policy"] = value

    def opt_idle_timeout(self, value: str) -> None:
        """seconds without a byte from a client before it is closed [default: none]"""
        self["idle-timeout"] = _seconds("--idle-timeout", value)

    def opt_heartbeat(self, value: str) -> None:
        """seconds between heartbeats to each client; LEADS 0.9.x clients see them as messages [default: none]"""
        self["heartbeat"] = _seconds("--heartbeat", value)

    def opt_framing(self, value: str) -> None:
        """separator (as LEADS 0.9.x) or length (4-byte length prefix; clients must use it too) [default: separator]"""
        if value not in ("separator", "length"):
            raise usage.UsageError(f"--framing must be separator or length, not {value!r}")
        self["framing"] = value

    def opt_tls_certificate(self, path: str) -> None:
        """PEM certificate of the server: listen with TLS on --port (needs --tls-key)"""
        self["tls-certificate"] = _readable("--tls-certificate", path)

    def opt_tls_key(self, path: str) -> None:
        """PEM private key of --tls-certificate"""
        self["tls-key"] = _readable("--tls-key", path)

    def opt_tls_ca(self, path: str) -> None:
        """PEM CA certificate: require every client to present a certificate it signed (mutual TLS)"""
        self["tls-ca"] = _readable("--tls-ca", path)

    # --- security ---

    def opt_allow(self, cidr: str) -> None:
        """let only peers from this network connect, like 10.20.0.0/16 or ::1; repeat it for several; others
        are closed at once, counted and logged [default: everyone]"""
        try:
            parse_allow([cidr])
        except ValueError as error:
            raise usage.UsageError(f"--allow {cidr}: {error}") from None
        self["allow"].append(cidr)

    def opt_max_memory(self, value: str) -> None:
        """bytes all clients together may have held (unfinished messages, output for clients not reading);
        past it the clients holding the most are dropped, 0 for no bound [default: 268435456]"""
        self["max-memory"] = _number("--max-memory", value, 0, None)

    def opt_max_rate(self, value: str) -> None:
        """messages per second one client may send on average; faster ones are slowed down by TCP, not
        dropped [default: no limit]"""
        self["max-rate"] = _seconds("--max-rate", value, "messages per second")

    def opt_handshake_timeout(self, value: str) -> None:
        """seconds a client may take to finish its TLS handshake before it is dropped [default: 10]"""
        self["handshake-timeout"] = _seconds("--handshake-timeout", value)

    # --- end security ---

    # --- WebSocket ---
    def opt_websocket(self, description: str) -> None:
        """Twisted server endpoint for browsers, like tcp:8080: the live page at /, the WebSocket stream at /ws;
        TLS (wss) with an ssl: description or the --tls-* options; repeat it to listen on several"""
        self.setdefault("websocket", []).append(description)

    def opt_websocket_origin(self, origin: str) -> None:
        """page origin, like https://dash.example.org, allowed to open the stream besides the endpoint's own
        (* for any); repeatable"""
        self.setdefault("websocket-origin", []).append(origin)

    # --- end WebSocket ---

    # --- operators ---

    def opt_monitor(self, description: str) -> None:
        """serve /metrics (Prometheus), /healthz and /connz over HTTP on this Twisted endpoint, like
        tcp:9216:interface=127.0.0.1 (a bare port number means loopback) [default: off]"""
        self["monitor"] = description

    def opt_slow_callback(self, value: str) -> None:
        """warn when a callback holds the reactor longer than this many seconds; 0 turns it off [default: 0.1]"""
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not seconds >= 0:
            raise usage.UsageError(f"--slow-callback must be a number of seconds (0 for off), not {value!r}")
        self["slow-callback"] = seconds or None

    def opt_config(self, path: str) -> None:
        """TOML file of options (keys are the long options: port = 16901, max-connections = 100); the command
        line wins over it"""
        self["config"] = path  # read by parseOptions, before every other option

    def opt_check(self) -> None:
        """check the options (and --config file), print one line and exit 0 or 1; start nothing"""
        self["check"] = True

    def opt_version(self) -> None:
        """print the versions of leads_twisted, Twisted and Python, and exit"""
        print(version_line(), flush=True)
        raise SystemExit(0)

    def _with_config_file(self, arguments: Sequence[str]) -> list[str]:
        """``arguments`` preceded by the ``--config`` file's settings for the options they do not give."""
        given, path = given_on_command_line(self, arguments)
        if path is None:
            return list(arguments)
        return [*file_arguments(self, path, given), *arguments]

    # --- end of operators ---

    # --- reliable close (issue 10a) ---
    def opt_close_timeout(self, value: str) -> None:
        """seconds a closing client may take no bytes at all before it is cut; on SIGTERM the daemon ends within
        three times this [default: 5]"""
        self["close-timeout"] = _seconds("--close-timeout", value)

    def postOptions(self) -> None:
        """Check the options that only make sense together."""
        tls = (self["tls-certificate"], self["tls-key"], self["tls-ca"])
        if any(tls) and not (self["tls-certificate"] and self["tls-key"]):
            raise usage.UsageError("TLS needs both --tls-certificate and --tls-key")
        if any(tls) and self["endpoint"]:
            raise usage.UsageError("--tls-* options apply to --port; with --endpoint use an ssl: description")

    def opt_mode(self, value: str) -> None:
        """what to do with each message: relay (to every other client), echo (to its sender) or log [default:
        relay]"""
        if value not in MODES:
            raise usage.UsageError(f"--mode must be one of {', '.join(MODES)}, not {value!r}")
        self["mode"] = value

    opt_m = opt_mode

    def opt_callback(self, spec: str) -> None:
        """module:Class of a leads_twisted.comm.Callback subclass to run after the mode, for every event"""
        leave_output_to_host()  # before the user's module is imported, in case it logs at import
        try:
            self["callback"] = load_callback_class(spec)
        except CallbackNotLoaded as error:
            _exit(str(error))

    opt_c = opt_callback

    # --- MQTT bridge ---
    # Read with options.get in leads_twisted.daemon.bridge, so these keys exist only when given.

    def opt_bridge(self, url: str) -> None:
        """mqtt://HOST[:PORT] or mqtts://HOST[:PORT]: publish each client's message to leads/NAME/up and send
        leads/NAME/down to every client (needs --vehicle and paho-mqtt)"""
        self["bridge"] = url

    def opt_vehicle(self, name: str) -> None:
        """this vehicle's name in the bridge's topics (leads/NAME/...) and MQTT client id"""
        self["vehicle"] = name

    def opt_bridge_topic(self, root: str) -> None:
        """topic root of the bridge instead of leads/NAME"""
        self["bridge-topic"] = root

    def opt_bridge_qos(self, value: str) -> None:
        """MQTT QoS of the messages published to up, 0 or 1 [default: 0]"""
        self["bridge-qos"] = _number("--bridge-qos", value, 0, 1)

    def opt_bridge_retain(self) -> None:
        """publish up messages retained, so a dashboard that joins late sees the last one at once"""
        self["bridge-retain"] = True

    def opt_bridge_queue(self, value: str) -> None:
        """bytes of up messages kept while the broker is away; past it the oldest are dropped [default: 8388608]"""
        self["bridge-queue"] = _number("--bridge-queue", value, 0, None)

    def opt_bridge_credentials(self, path: str) -> None:
        """file with the broker user name on its first line and the password on its second"""
        self["bridge-credentials"] = _readable("--bridge-credentials", path)

    def opt_bridge_ca(self, path: str) -> None:
        """PEM CA certificate that signed the mqtts:// broker's certificate [default: the system's CAs]"""
        self["bridge-ca"] = _readable("--bridge-ca", path)

    def opt_bridge_certificate(self, path: str) -> None:
        """PEM certificate the bridge presents to an mqtts:// broker that asks for one (needs --bridge-key)"""
        self["bridge-certificate"] = _readable("--bridge-certificate", path)

    def opt_bridge_key(self, path: str) -> None:
        """PEM private key of --bridge-certificate"""
        self["bridge-key"] = _readable("--bridge-key", path)

    # --- end of MQTT bridge ---

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        """Parse, or end the process with one line saying what is wrong."""
        try:
            super().parseOptions(self._with_config_file(sys.argv[1:] if options is None else options))
        except usage.UsageError as error:
            _exit(f"{error} (see twistd leads-comm --help)")
        if self["check"]:
            check(self, makeService)


def makeService(options: Options, reactor: IHubReactor | None = None) -> IService:
    """The service twistd runs: a ``ServerHub`` with the chosen mode (and callback), wrapped in ``CommService``."""
    leave_output_to_host()
    if reactor is None:
        reactor = global_reactor()
    endpoints: list[str] = options["endpoint"]
    for description in endpoints:
        _check_endpoint(reactor, description)
    callbacks: list[Callback] = [MODES[options["mode"]]()]
    if options["callback"] is not None:
        try:
            callbacks.append(make_callback(options["callback"]))
        except CallbackNotLoaded as error:
            _exit(str(error))
    server = ServerHub(
        options["port"],
        Chained(*callbacks) if len(callbacks) > 1 else callbacks[0],
        options["separator"],
        options["max-message"],
        interface=options["interface"],
        endpoint=endpoints or None,
        reactor=reactor,
        max_connections=options["max-connections"],
        max_buffered=options["max-buffered"],
        slow_policy=options["slow-policy"],
        idle_timeout=options["idle-timeout"],
        heartbeat=options["heartbeat"],
        framing=options["framing"],
        tls=_tls_options(options),
        **security_options(options),
        slow_callback=options["slow-callback"],
        close_timeout=options["close-timeout"],
    )
    twistd = getattr(options, "parent", None)
    # twist always runs in the foreground and has no such option; twistd forks unless told --nodaemon.
    foreground = twistd is None or bool(twistd.get("nodaemon", True))
    notifier = Notifier.from_environment()
    comm = CommService(
        server, reactor, notifier, options["mode"], foreground, stop_within=stop_within(options["close-timeout"])
    )
    log_version()
    served = with_bridge(options, with_websocket(options, comm, server, reactor, foreground), server, reactor)
    return with_operator_parts(served, server, reactor, options, notifier, options["mode"])


def _check_endpoint(reactor: IHubReactor, description: str) -> None:
    """Parse an endpoint description as the server will, now, so a mistake is one line before anything starts."""
    try:
        server_endpoint(reactor, description)
    except KeyError as error:
        if description.startswith("systemd:"):
            _exit(
                f"--endpoint {description}: systemd passed no socket named {error}; start the service through "
                f"its .socket unit, whose FileDescriptorName= must match the name"
            )
        _exit(f"--endpoint {description}: missing {error}")
    except IndexError:
        _exit(f"--endpoint {description}: systemd passed no socket with that index")
    except Exception as error:  # any parser's complaint about the user's text
        _exit(f"--endpoint {description}: {endpoint_mistake(error)}")


def _tls_options(options: Options) -> TLSOptions | None:
    """The server's TLS settings from the --tls-* options, or None for plain TCP."""
    if not options["tls-certificate"]:
        return None
    tls = TLSOptions(options["tls-certificate"], options["tls-key"], options["tls-ca"])
    try:
        # A handshake with itself, before anything listens: TLS that cannot work here ends the start.
        tls.self_check()
    except ImportError:
        _exit("TLS needs pyOpenSSL: pip install 'leads_twisted[tls]'")
    except TLSSelfCheckFailed as error:
        _exit(f"TLS self-check failed: {error}")
    return tls


def _seconds(option: str, value: str, unit: str = "seconds") -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise usage.UsageError(f"{option} must be a positive number of {unit}, not {value!r}")
    return seconds


def _readable(option: str, path: str) -> str:
    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        raise usage.UsageError(f"{option} {path}: {error.strerror}") from None
    return path


def _number(option: str, value: str, lowest: int, highest: int | None) -> int:
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < lowest or (highest is not None and number > highest):
        bounds = f"from {lowest} to {highest}" if highest is not None else f"of at least {lowest}"
        raise usage.UsageError(f"{option} must be a whole number {bounds}, not {value!r}")
    return number


def _exit(message: str) -> NoReturn:
    raise SystemExit(f"twistd leads-comm: {message}")
