"""Sum py-spy collapsed stacks (``--format raw``) per function: where a phase's samples went.

    python bench/stacks.py /tmp/prof/gateway-create.txt [--top 40] [--grep kling_gateway]

Prints each function's share of samples *inclusive* (on the stack at all) and *self* (the innermost
frame), plus a few coarse buckets (server, framework, database, upstream client, logging, metrics,
ours) so two runs can be compared line by line. Idle samples (the event loop waiting in
``select``/``epoll``) are counted apart: they are not CPU.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# Innermost frames (with line) of a thread that waits rather than works: the loop in
# epoll, aiosqlite's and the executor's threads blocked on their queues. py-spy
# counts some of these as active.
IDLE = re.compile(r"EpollSelector\.select|aiosqlite/core\.py:59\)|futures/thread\.py:81\)")
# First match wins, tested on the innermost frame.
BUCKETS = (
    ("logging", re.compile(r"logging/|observability/logs|observability/redact")),
    ("metrics", re.compile(r"prometheus_client|observability/metrics")),
    ("database", re.compile(r"sqlite3|aiosqlite|asyncpg|storage/")),
    ("upstream client", re.compile(r"aiohttp|yarl|multidict|upstream/|httpx|httpcore")),
    ("server (uvicorn)", re.compile(r"uvicorn|httptools|uvloop")),
    ("framework (fastapi/starlette)", re.compile(r"fastapi|starlette|pydantic")),
    ("ours", re.compile(r"kling_gateway")),
)


def frame_name(frame: str) -> str:
    return re.sub(r":\d+\)$", ")", frame)  # one entry per function, not per line


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--grep", default="", help="only list functions whose name contains this")
    args = parser.parse_args()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in args.file.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        raw = stack.split(";")
        total += count
        if IDLE.search(raw[-1]):
            buckets["idle"] += count
            continue
        frames = [frame_name(f) for f in raw]
        thread = "event loop thread" if not frames[0].startswith("Thread.") else "other threads"
        threads[thread] += count
        for f in set(frames):
            inclusive[f] += count
        own[frames[-1]] += count
        for name, pattern in BUCKETS:
            if pattern.search(frames[-1]):
                buckets[name] += count
                break
        else:
            buckets["other (stdlib, asyncio)"] += count
    busy = total - buckets["idle"]
    print(
        f"samples: {total}, busy: {busy}; "
        + ", ".join(f"{k} {v}" for k, v in threads.most_common())
    )
    print("\nbuckets (share of busy samples, by innermost frame):")
    for name, n in buckets.most_common():
        if name != "idle":
            print(f"  {n / max(busy, 1):6.1%}  {name}")
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"\n{title} (share of busy samples):")
        shown = 0
        for f, n in counter.most_common():
            if args.grep not in f:
                continue
            print(f"  {n / max(busy, 1):6.1%}  {f}")
            shown += 1
            if shown >= args.top:
                break


if __name__ == "__main__":
    main()
