"""Summarise py-spy's collapsed stacks (``py-spy record --format raw``) as percentages per function.

    python benchmarks/profile_summary.py PROFILE.txt [--focus dataReceived] [--top 25]

Samples whose innermost frame is a wait (epoll, a condition, ...) are left out unless ``--keep-idle``.
``--focus`` keeps only the samples whose stack passes through a frame containing that text (a thread name, a
function, a file), so the percentages are of the time spent under it. Inclusive time counts a function once
per sample however deep it recurs; self time is the innermost frame.
"""

from __future__ import annotations

import argparse
import collections
import re

_LINE = re.compile(r" \(([^)]*?):\d+\)$")


def frame_key(frame: str) -> str:
    """A frame without its line number: ``function (path/file.py)``, with the path shortened."""
    match = _LINE.search(frame)
    if not match:
        return frame
    path = match.group(1)
    for marker in ("site-packages/", "lib/python3", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{frame[: match.start()]} ({path})"


#: Innermost frames that are waits, not work: py-spy cannot always tell an idle thread here.
IDLE_LEAVES = ("doPoll (", "Condition.wait (", "Event.wait (", "_wait_for_tstate_lock", "select (", "wait_for_stop (")


def summarise(path: str, focus: str | None, top: int, idle: tuple[str, ...] = IDLE_LEAVES) -> str:
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    with open(path) as stacks:
        for line in stacks:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            frames = stack.split(";")
            if focus and not any(focus in frame for frame in frames):
                continue
            if idle and any(text in frames[-1] for text in idle):
                continue
            count = int(count_text)
            total += count
            keys = [frame_key(frame) for frame in frames]
            self_time[keys[-1]] += count
            for key in set(keys):
                inclusive[key] += count
    if not total:
        return f"{path}: no samples{' under ' + focus if focus else ''}"
    out = [f"{path}: {total} samples{' under ' + repr(focus) if focus else ''}", "", "self %  function"]
    out += [f"{100 * n / total:6.1f}  {key}" for key, n in self_time.most_common(top)]
    out += ["", "incl %  function"]
    out += [f"{100 * n / total:6.1f}  {key}" for key, n in inclusive.most_common(top)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profiles", nargs="+")
    parser.add_argument("--focus", help="only samples whose stack contains this text")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--keep-idle", action="store_true", help="keep samples whose innermost frame is a wait")
    args = parser.parse_args()
    for path in args.profiles:
        print(summarise(path, args.focus, args.top, () if args.keep_idle else IDLE_LEAVES))
        print()


if __name__ == "__main__":
    main()
