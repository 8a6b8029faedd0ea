"""The typed link options name exactly the options a ``LinkPolicy`` takes, so a new option cannot be left untyped."""

from __future__ import annotations

import dataclasses
import typing

from leads_twisted.comm.link_policy import LinkOptions, LinkPolicy


def test_link_options_are_the_policys_own_options() -> None:
    typed = set(typing.get_type_hints(LinkOptions))
    taken = {field.name for field in dataclasses.fields(LinkPolicy) if field.init} - {"separator", "max_message"}
    assert typed == taken
