"""How fast scoring is: tickets per second text-only, and the time per ticket with repository analysis.

    python bench/score_speed.py [--data bench/data/triage-dev.jsonl] [--repo .] [--seconds 3]

Text-only scoring runs over the data set's problem statements until --seconds have passed. Repository analysis runs
tickets against --repo, a git checkout (by default this repository itself, with tickets naming its own code; for
another repository, the data set's problem statements): the first ticket at a head builds the per-head index
(file listing, definitions), every later ticket at the same head reuses it (issue 12). Printed: the first ticket's
time, then the mean and slowest of the later ones.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracker_bridge.config import ScoringConfig  # noqa: E402
from tracker_bridge.models import Ticket  # noqa: E402
from tracker_bridge.scoring import score_ticket  # noqa: E402

REPO_TICKETS = (
    Ticket(
        ref="SELF-1",
        tracker="bench",
        title="`score_ticket()` ignores `repo_analysis = false`",
        description="In tracker_bridge/scoring/__init__.py the coverage factor is added anyway. Expected: no factor.",
    ),
    Ticket(
        ref="SELF-2",
        tracker="bench",
        title="`load_settings()` crashes on an empty file",
        description="Traceback (most recent call last):\n  File \"tracker_bridge/config.py\", line 1\nKeyError: 'x'",
    ),
    Ticket(
        ref="SELF-3",
        tracker="bench",
        title="`Ticket.slug` keeps a trailing dash",
        description="`Ticket(ref='A-1', tracker='t', title='a -').slug()` gives 'a-'. Expected 'a'.",
    ),
    Ticket(
        ref="SELF-4",
        tracker="bench",
        title="Rework scoring and the engine",
        description="Change `blend`, `calibrate`, `analyse_repo`, `coverage_factor`, `render_score_markdown`, docs/.",
    ),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "data" / "triage-dev.jsonl")
    parser.add_argument("--repo", type=Path, default=ROOT)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repo-tickets", type=int, default=30, help="tickets scored against another --repo")
    args = parser.parse_args(argv)

    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    tickets = []
    for i, row in enumerate(rows):
        title, _, rest = row["problem_statement"].strip().partition("\n")
        tickets.append(Ticket(ref=f"row-{i}", tracker="bench", title=title, description=rest))

    text_only = ScoringConfig(repo_analysis=False)
    scored = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    while time.perf_counter() - start < args.seconds:
        for ticket in tickets:
            score_ticket(ticket, text_only)
        scored += len(tickets)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    # Tickets per CPU-second too: on a shared machine the wall-clock rate mostly measures the other processes.
    print(
        f"text-only: {scored / elapsed:.0f} tickets/s ({scored} tickets, {elapsed:.2f} s; "
        f"{scored / cpu:.0f} tickets per CPU-second)"
    )

    with_repo = ScoringConfig(repo_analysis=True)
    own = args.repo.resolve() == ROOT.resolve()
    repo_tickets = list(REPO_TICKETS) if own else tickets[: args.repo_tickets]
    times = []
    for ticket in repo_tickets:
        t0 = time.perf_counter()
        score = score_ticket(ticket, with_repo, args.repo)
        times.append(time.perf_counter() - t0)
        coverage = next((f.reason for f in score.factors if f.name == "coverage"), "no coverage factor")
        if len(times) <= 5:
            print(f"  {ticket.ref}: {times[-1] * 1000:.0f} ms, score {score.value:.2f}; {coverage[:100]}")
    later = times[1:] or times
    print(
        f"with repository analysis on {args.repo}: first ticket at this head {times[0] * 1000:.0f} ms; "
        f"{len(later)} later tickets median {sorted(later)[len(later) // 2] * 1000:.1f} ms, "
        f"mean {sum(later) / len(later) * 1000:.1f} ms, slowest {max(later) * 1000:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
