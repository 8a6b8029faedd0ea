"""``--config FILE``: the daemon's options in a TOML file, read with ``tomllib``.

Every key is a long option of the daemon without its ``--`` (``port = 16901``, ``max-connections = 100``,
``separator = "end;"``; ``_`` may stand for ``-``). A list gives a repeatable option once per item
(``endpoint = ["tcp6:16900", "unix:/run/leads-comm/socket"]``); ``true`` turns a flag on, ``false`` leaves it
off. The file is turned into command-line arguments placed before the real ones, and a key whose option is
also given on the command line is left out, so the command line wins, also for repeatable options. The keys
are found from the options themselves, so every option, whoever added it, works in the file too.
"""

from __future__ import annotations

import getopt
import tomllib
from collections.abc import Sequence

from twisted.python import usage

#: Options that steer the reading of options; a file cannot hold them.
NOT_IN_FILES: frozenset[str] = frozenset({"config", "check", "version", "help"})


def _canonical(options: usage.Options, name: str) -> str | None:
    """The option's own name for a long or short name, or None if there is no such option."""
    for candidate in (name, name.replace("-", "_"), name.replace("_", "-")):
        if candidate in options.synonyms:
            return str(options.synonyms[candidate]).replace("_", "-")
    return None


def _takes_value(options: usage.Options) -> dict[str, bool]:
    """Each long option's name, and whether it takes a value."""
    return {spec.rstrip("="): spec.endswith("=") for spec in options.longOpt}


def given_on_command_line(options: usage.Options, arguments: Sequence[str]) -> tuple[set[str], str | None]:
    """The options named in ``arguments`` (own names), and the ``--config`` path if one is given.

    Raises ``usage.UsageError`` for an argument the options do not know, as parsing would.
    """
    try:
        pairs, _ = getopt.getopt(list(arguments), options.shortOpt, options.longOpt)
    except getopt.error as error:
        raise usage.UsageError(str(error)) from None
    names: set[str] = set()
    path: str | None = None
    for flag, value in pairs:
        name = _canonical(options, flag.lstrip("-"))
        if name is None:
            continue
        names.add(name)
        if name == "config":
            path = value
    return names, path


def file_arguments(options: usage.Options, path: str, skip: set[str]) -> list[str]:
    """Command-line arguments for the settings in the TOML file at ``path``, leaving out the options in ``skip``.

    Raises ``usage.UsageError`` with one line naming the file and the key for anything it cannot use.
    """
    try:
        with open(path, "rb") as file:
            settings = tomllib.load(file)
    except OSError as error:
        raise usage.UsageError(f"--config {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise usage.UsageError(f"--config {path}: not valid TOML: {error}") from None
    takes_value = _takes_value(options)
    arguments: list[str] = []
    for key, value in settings.items():
        name = _canonical(options, key)
        if name is None or name not in takes_value or len(key) == 1:
            raise usage.UsageError(
                f"--config {path}: no option --{key}; a key is a long option of --help without its '--'"
            )
        if name in NOT_IN_FILES:
            raise usage.UsageError(f"--config {path}: {key} belongs on the command line, not in the file")
        if name in skip:
            continue
        arguments.extend(_arguments_for(path, key, name, value, takes_value[name]))
    return arguments


def _arguments_for(path: str, key: str, name: str, value: object, takes_value: bool) -> list[str]:
    if not takes_value:
        if not isinstance(value, bool):
            raise usage.UsageError(f"--config {path}: {key} is a flag: write {key} = true or false, not {value!r}")
        return [f"--{name}"] if value else []
    values = value if isinstance(value, list) else [value]
    arguments = []
    for item in values:
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise usage.UsageError(
                f"--config {path}: {key} takes a string or a number (or a list of them), not {item!r}"
            )
        arguments.append(f"--{name}={item}")
    return arguments
