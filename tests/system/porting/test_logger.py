"""``L`` takes every call form of LEADS 0.9.7's logger and marks its lines the same way (level, caller, time).

The same calls run under the original (in its venv) and here; the lines must match once the time is masked.
The original always writes colour codes and, with its ``end="\\n"`` default, a blank line after each message;
here colour is for terminals and a line has one line break, so those two are set aside in the comparison.
"""

from __future__ import annotations

import re

from support import run_python

CALLS = """
import sys
from {package} import L, Level

def vehicle_loop():
    L.info("speed", "42", "km/h")
    L.debug("raw", f=(L.BOLD, L.GREEN, None))
    L.warn("low battery", end="")
    L.error("a", "b", sep="-", end="!\\n", f=(L.REGULAR, L.RED, L.WHITE))
    L.info("no colour", f=(L.ITALIC, None, None))
    L.debug_level(Level.WARN)
    L.info("hidden")
    L.warn("shown")
    L.debug_level(Level.DEBUG)

vehicle_loop()
L.info("at module level")
sys.stdout.flush()
print("HISTORY", [line.split("] ", 2)[-1] for line in L.history_messages()[-4:]])
"""

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TIME = re.compile(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\]")


def lines(out: str) -> list[str]:
    kept = []
    for line in ANSI.sub("", out).splitlines():
        if line.strip() and "LTM" not in line:  # the original's import prints a line about its own storage
            kept.append(TIME.sub("[TIME]", line))
    return kept


def test_the_same_calls_give_the_same_lines_as_the_original(original_python):
    theirs = lines(run_python(CALLS.format(package="leads"), python=original_python, timeout=60).stdout)
    here = lines(run_python(CALLS.format(package="leads_twisted"), timeout=30).stdout)
    assert "[Level.INFO: 1] [vehicle_loop] [TIME] speed 42 km/h" in theirs  # a control: the original's format
    assert here == theirs


def test_lines_carry_a_real_time_and_no_colour_codes_in_a_pipe():
    out = run_python(CALLS.format(package="leads_twisted"), timeout=30).stdout
    assert "\x1b[" not in out
    first = out.splitlines()[0]
    assert re.fullmatch(r"\[Level\.INFO: 1\] \[vehicle_loop\] \[\d{4}-\d\d-\d\d [\d:.]+\] speed 42 km/h", first)
