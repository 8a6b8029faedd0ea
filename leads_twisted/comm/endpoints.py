"""Server endpoints beyond Twisted's plain ones: a ``unix:`` socket that is safe to start again and again.

A server turns each endpoint description it is given into an endpoint with ``server_endpoint``: ``unix:``
descriptions get a ``UNIXSocketServerEndpoint``, every other kind (``tcp:``, ``tcp6:``, ``ssl:``, ``systemd:``,
...) goes to Twisted's ``serverFromString`` unchanged.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from typing import TypeAlias, TypedDict

from twisted.internet.defer import Deferred, fail
from twisted.internet.endpoints import UNIXServerEndpoint, serverFromString
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IStreamClientEndpoint, IStreamServerEndpoint
from zope.interface import implementer

from leads_twisted.comm.reactor_types import IHubReactor

#: Where a server listens: a Twisted server endpoint, or its description (``tcp:16900``, ``unix:/run/x.sock``).
ServerEndpointLike: TypeAlias = "str | IStreamServerEndpoint"
#: Where a client connects: a Twisted client endpoint, or its description (``tcp:host=example.org:port=16900``).
ClientEndpointLike: TypeAlias = "str | IStreamClientEndpoint"

#: Who may connect to a server's unix socket unless told otherwise: its owner and its group.
DEFAULT_UNIX_MODE: int = 0o660

#: Pending connections the kernel may hold on a unix socket.
DEFAULT_UNIX_BACKLOG: int = 50


class UnixOptions(TypedDict, total=False):
    """The keyword arguments of ``UNIXSocketServerEndpoint`` a ``unix:`` description gives; ``path`` always."""

    path: str
    mode: int
    backlog: int
    lockfile: bool


def server_endpoint(reactor: IHubReactor, description: str) -> IStreamServerEndpoint:
    """The endpoint a server listens on for ``description``; raises ``ValueError`` if it cannot be parsed."""
    kind, _, arguments = description.partition(":")
    if kind.strip().lower() == "unix":
        return UNIXSocketServerEndpoint(reactor, **parse_unix_description(arguments))
    endpoint: IStreamServerEndpoint = serverFromString(reactor, description)
    return endpoint


def parse_unix_description(arguments: str) -> UnixOptions:
    """The keyword arguments of ``UNIXSocketServerEndpoint`` from what follows ``unix:`` in a description.

    The syntax is Twisted's: ``/run/leads.sock:mode=660:backlog=50:lockfile=0`` (or ``address=/run/...``,
    also ``path=``); a ``\\`` escapes the next character, such as a ``:`` in the path. ``mode`` is octal.
    """
    options: UnixOptions = {}
    for key, value in _fields(arguments):
        name = "path" if key in (None, "address", "path") else key
        if name in options:
            raise ValueError(f"unix endpoint {arguments!r}: {name} is given twice")
        if name == "path":
            options["path"] = value
        elif name == "mode":
            options["mode"] = _octal_mode(value)
        elif name == "backlog":
            options["backlog"] = _number(name, value)
        elif name == "lockfile":
            options["lockfile"] = bool(_number(name, value))
        else:
            raise ValueError(
                f"unix endpoint {arguments!r}: unknown option {key!r}; use a path and mode=, backlog=, lockfile="
            )
    if not options.get("path"):
        raise ValueError("a unix endpoint needs a socket path, as in 'unix:/run/leads/leads.sock:mode=660'")
    if "mode" in options:
        _check_mode_applies(options["path"])
    return options


def _check_mode_applies(path: str) -> None:
    """Raise ``ValueError`` for a mode given to an abstract-namespace socket: it has no file to set it on."""
    if path.startswith("\0"):
        raise ValueError(
            f"mode= cannot apply to the abstract unix socket {path!r}: it has no file, so anyone in the same "
            f"network namespace may connect; leave mode= out, or use a socket path in a directory you control"
        )


def _fields(text: str) -> list[tuple[str | None, str]]:
    """Split on unescaped ``:``, each field on its first unescaped ``=``: ``(key, value)`` or ``(None, value)``."""
    fields: list[tuple[str | None, str]] = []
    key: str | None = None
    current: list[str] = []
    characters = iter(text)
    for character in characters:
        if character == "\\":
            current.append(next(characters, ""))
        elif character == ":":
            fields.append((key, "".join(current)))
            key, current = None, []
        elif character == "=" and key is None:
            key, current = "".join(current), []
        else:
            current.append(character)
    fields.append((key, "".join(current)))
    return fields


def _octal_mode(value: str) -> int:
    try:
        mode = int(value, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o777:
        raise ValueError(f"a unix socket mode is octal permission bits such as 660 or 600, not {value!r}")
    return mode


def _number(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} of a unix endpoint must be a whole number, not {value!r}") from None


def clear_stale_socket(path: str) -> None:
    """Make ``path`` free to bind a unix socket on: remove a socket left behind by a server that is gone.

    Raises ``FileExistsError`` if something other than a socket is there (a file, a directory, a link),
    ``OSError`` with ``EADDRINUSE`` if a server still listens on it, and ``FileNotFoundError`` if its
    directory does not exist. An abstract-namespace address (starting with NUL) has no file: nothing to do.
    """
    if path.startswith("\0"):
        return
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        directory = os.path.dirname(path) or "."
        if not os.path.isdir(directory):
            raise FileNotFoundError(
                errno.ENOENT, f"cannot listen on unix socket {path!r}: its directory does not exist; create it"
            ) from None
        return
    if not stat.S_ISSOCK(status.st_mode):
        raise FileExistsError(
            errno.EEXIST,
            f"cannot listen on unix socket {path!r}: a {_kind(status.st_mode)} is there, not a socket; "
            f"remove it yourself if it is not needed, or choose another path",
        )
    in_use = _in_use(path)
    if in_use:
        raise OSError(
            errno.EADDRINUSE, f"cannot listen on unix socket {path!r}: {in_use}; stop it or choose another path"
        )
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _in_use(path: str) -> str:
    """Why the socket at ``path`` must be left alone, or ``""`` if nobody listens there (it is stale)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            return ""
        except BlockingIOError:
            return "a server listens there (its queue is full)"
        except OSError as error:
            return f"cannot tell whether a server still uses it ({error.strerror or error})"
    return "another server listens there"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_ISREG(mode):
        return "regular file"
    return "special file"


@implementer(IStreamServerEndpoint)
class UNIXSocketServerEndpoint:
    """Listens on a unix socket at ``path`` with permissions ``mode`` (octal; ``0o660`` by default; refused for
    an abstract-namespace ``path``, starting with NUL, which has no file to set it on).

    On ``listen`` it refuses a path taken by anything but a socket, or by a socket a server still listens
    on, and removes a stale socket (its server is gone) first. The socket is made with ``mode`` before it
    accepts anyone, and removed again when the server stops listening. ``lockfile=True`` adds Twisted's
    ``path.lock`` guard against two servers starting on one path at the same moment.
    """

    def __init__(
        self,
        reactor: IHubReactor,
        path: str,
        mode: int | None = None,
        backlog: int = DEFAULT_UNIX_BACKLOG,
        lockfile: bool = False,
    ) -> None:
        if not isinstance(path, str) or not path:
            raise ValueError(f"a unix socket path must be a non-empty string, not {path!r}")
        if mode is None:
            mode = DEFAULT_UNIX_MODE
        else:
            _check_mode_applies(path)
        if not isinstance(mode, int) or not 0 <= mode <= 0o777:
            raise ValueError(f"mode must be permission bits such as 0o660, not {mode!r}")
        self._reactor = reactor
        self.path: str = path
        self.mode: int = mode
        self.backlog: int = backlog
        self.lockfile: bool = lockfile

    def __repr__(self) -> str:
        return f"UNIXSocketServerEndpoint({self.path!r}, mode={self.mode:#o})"

    def listen(self, factory: IProtocolFactory) -> Deferred[IListeningPort]:
        try:
            clear_stale_socket(self.path)
        except OSError:
            return fail()
        plain = UNIXServerEndpoint(self._reactor, self.path, self.backlog, self.mode, wantPID=self.lockfile)
        listening: Deferred[IListeningPort] = plain.listen(factory)
        return listening
