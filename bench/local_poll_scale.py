"""How the local tracker's poll scales with the board: files read and time per poll on a folder of N tickets.

    python bench/local_poll_scale.py [--tickets 10000]

Builds N ticket files written "an hour ago", polls once from scratch (every file is read), changes one file, and
polls again: with the file index only the changed file is read. Prints files read and wall time for each poll.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracker_bridge.protocols import Trigger  # noqa: E402
from tracker_bridge_connectors import local  # noqa: E402

TICKET = """---
title: ticket {i}   # a comment, as people write them
status: Backlog
labels: [bug]
---
Something in module_{i}.py is wrong.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    args = parser.parse_args()
    reads = 0
    real_read = local.TicketFile.read

    def counting_read(path: Path) -> str:
        nonlocal reads
        reads += 1
        return real_read(path)

    local.TicketFile.read = staticmethod(counting_read)  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory(prefix="tb-bench-local-") as tmp:
        folder = Path(tmp)
        an_hour_ago = time.time_ns() - 3600 * 1_000_000_000
        for i in range(args.tickets):
            path = folder / f"BENCH-{i}.md"
            path.write_text(TICKET.format(i=i), encoding="utf-8")
            os.utime(path, ns=(an_hour_ago, an_hour_ago))
        tracker = local.LocalTracker("bench", folder, Trigger("agent-ready", "Agent"))

        def timed_poll(cursor: str | None, label: str) -> str | None:
            nonlocal reads
            reads = 0
            start = time.perf_counter()
            result = tracker.poll(cursor)
            elapsed = time.perf_counter() - start
            print(f"{label:<34} files read: {reads:>6}   {elapsed * 1000:9.1f} ms   triggered: {len(result.tickets)}")
            return result.cursor

        print(f"local tracker, board of {args.tickets} ticket files")
        cursor = timed_poll(None, "first poll (from scratch)")
        cursor = timed_poll(cursor, "next poll, nothing changed")
        changed = folder / "BENCH-4242.md"
        changed.write_text(TICKET.format(i=4242).replace("labels: [bug]", "labels: [agent-ready]"), encoding="utf-8")
        cursor = timed_poll(cursor, "next poll, one file changed")


if __name__ == "__main__":
    main()
