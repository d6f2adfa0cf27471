#!/usr/bin/env python3
"""Summarise the data-plane profiles `run.py --py-spy` records (py-spy collapsed stacks).

Only the event loop's thread counts (the idle worker threads of the thread pools are
left out), and shares are of its busy samples (the loop waiting in `select` is left
out too), so a share is a share of the data plane's CPU time.

  profile_summary.py bench/results/<ts>/profiles/*.raw            # buckets per profile
  profile_summary.py --top 40 bench/results/<ts>/profiles/x.raw   # + heaviest functions
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

Stack = list[str]
OWN = "switchyard_dataplane/"
NATS = "site-packages/nats/"

# Overlapping on purpose: each answers "how much of the CPU time is spent under X".
BUCKETS: tuple[tuple[str, Callable[[Stack], bool]], ...] = (
    ("protocol codecs (protocols/*)", lambda s: any(OWN + "protocols/" in f for f in s)),
    ("stream relay (passthrough or translating)", lambda s: any("Relay.feed" in f for f in s)),
    ("upstream HTTP client (httpx API over aiohttp)", lambda s: any("HttpxUpstream" in f for f in s)),
    (
        "usage events + NATS client",
        lambda s: any(k in f for f in s for k in ("UsageEmitter", "NatsPublisher", "AckWindow", NATS)),
    ),
    (
        "server side outside the handlers (uvicorn, httptools, writes)",
        lambda s: not any(OWN in f or NATS in f for f in s),
    ),
)


def load(path: Path) -> list[tuple[Stack, int]]:
    stacks = []
    for line in path.read_text().splitlines():
        frames, _, count = line.rstrip().rpartition(" ")
        if frames and count.isdigit():
            stacks.append((frames.split(";"), int(count)))
    return stacks


def _idle(stack: Stack) -> bool:
    leaf = stack[-1]
    return leaf.startswith(("Runner.run", "run (uvloop")) or "select" in leaf


def _short(frame: str) -> str:
    """`func (path/to/module.py:12)` -> `func (module.py)`, data-plane paths kept relative."""
    match = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
    if match is None:
        return frame
    func, path = match.groups()
    path = path.split("site-packages/")[-1].split(OWN)[-1]
    return f"{func} ({path})"


def summarise(path: Path, top: int) -> str:
    stacks = [(s, n) for s, n in load(path) if not s[0].startswith("Thread._bootstrap")]
    busy = [(s, n) for s, n in stacks if not _idle(s)]
    total = sum(n for _, n in busy)
    lines = [f"{path.name}: {total} busy samples of {sum(n for _, n in stacks)} on the event-loop thread"]
    if not total:
        return lines[0]
    for name, matches in BUCKETS:
        share = sum(n for s, n in busy if matches(s)) / total
        lines.append(f"  {100 * share:5.1f}%  {name}")
    if top:
        inclusive: Counter[str] = Counter()
        for stack, n in busy:
            for frame in {_short(f) for f in stack if OWN in f}:
                inclusive[frame] += n
        lines.append("  heaviest data-plane functions (inclusive):")
        lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=0, help="also list the N heaviest functions")
    args = parser.parse_args(argv)
    print("\n".join(summarise(p, args.top) for p in args.profiles))
    return 0


if __name__ == "__main__":
    sys.exit(main())
