"""Loads the user's ``Callback`` class named by ``--callback module:Class``, with a one-line reason if it cannot."""

from __future__ import annotations

import importlib
import traceback

from leads_twisted.comm import Callback


class CallbackNotLoaded(ValueError):
    """``--callback`` names something that cannot be used; the message says what and why, in one line."""


def load_callback_class(spec: str) -> type[Callback]:
    """Import ``module:Class`` and return the class, which must subclass ``leads_twisted.comm.Callback``."""
    module_name, colon, class_name = spec.partition(":")
    if not colon or not module_name or not class_name:
        raise CallbackNotLoaded(f"--callback wants module:Class (like mypackage.handlers:Telemetry), not {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise CallbackNotLoaded(
            f"--callback {spec}: cannot import {module_name!r} ({error}); is it installed, or on PYTHONPATH?"
        ) from error
    except Exception as error:
        raise CallbackNotLoaded(f"--callback {spec}: importing {module_name!r} failed: {_describe(error)}") from error
    found = module
    for part in class_name.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise CallbackNotLoaded(f"--callback {spec}: {module_name!r} has no {class_name!r}") from None
    if not (isinstance(found, type) and issubclass(found, Callback)):
        raise CallbackNotLoaded(f"--callback {spec}: {class_name!r} is not a subclass of leads_twisted.comm.Callback")
    return found


def make_callback(cls: type[Callback]) -> Callback:
    """Instantiate the user's class with no arguments, as the daemon has none to give."""
    try:
        return cls()
    except Exception as error:
        raise CallbackNotLoaded(f"--callback: {cls.__qualname__}() failed: {_describe(error)}") from error


def _describe(error: BaseException) -> str:
    """``Type: message (file:line)``, the line being the last one of the user's code that ran."""
    text = f"{type(error).__name__}: {error}"
    if isinstance(error, SyntaxError):
        return text  # its message names the file and line already
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if frame.filename != __file__ and not frame.filename.startswith("<frozen ")
    ]
    return f"{text} ({frames[-1].filename}:{frames[-1].lineno})" if frames else text
