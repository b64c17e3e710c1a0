"""Learning from outcomes, replayed: each ticket is scored with the weights learnt from the outcomes before it.

    python bench/triage_online.py --data bench/data/triage-dev.jsonl [--every 10] [--threshold 0.6]

The rows are taken in file order as if they were tickets finishing one by one: a ticket is scored first, then its
outcome becomes known (success = resolved_fraction >= 0.5, the majority of 24 agent runs resolved it), and every
--every outcomes the weights are refitted the way `tracker-bridge calibrate` does (from the shipped table, shrunk
toward it). The figures are those of the scores given before each outcome was known, next to the shipped weights'
figures on the same rows; the last line is

    online: spearman=<r> auc=<a> selected_fraction=<f> selected_mean_resolved=<m> outcomes=<n>
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from triage_eval import figures, load_rows, ticket_from_statement

from tracker_bridge.config import ScoringConfig
from tracker_bridge.scoring import score_ticket
from tracker_bridge.scoring.calibrate import Outcome, refit
from tracker_bridge.scoring.model import load_weights


def main(argv: list[str] | None = None) -> int:
    default_threshold = ScoringConfig().threshold
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, required=True, help="JSON Lines with problem_statement, resolved_fraction")
    parser.add_argument("--every", type=int, default=10, help="refit after this many new outcomes")
    parser.add_argument("--threshold", type=float, default=default_threshold)
    args = parser.parse_args(argv)

    rows = load_rows(args.data)
    config = ScoringConfig(threshold=args.threshold, repo_analysis=False, llm=False)
    shipped = load_weights()
    weights = shipped
    outcomes: list[Outcome] = []
    online: list[float] = []
    static: list[float] = []
    resolved: list[float] = []
    for i, row in enumerate(rows):
        ticket = ticket_from_statement(str(row["problem_statement"]), f"row-{i}")
        given = score_ticket(ticket, config, weights=weights)
        online.append(given.value)
        static.append(score_ticket(ticket, config, weights=shipped).value)
        y = float(str(row["resolved_fraction"]))
        resolved.append(y)
        outcomes.append(Outcome(ticket.ref, {f.name: f.value for f in given.factors}, y >= 0.5))
        if len(outcomes) % args.every == 0:
            weights = refit(shipped, outcomes)
    print(
        f"rows={len(rows)} refits={len(rows) // args.every} final blend: "
        + ", ".join(f"{k} {v:.2f}" for k, v in weights.blend.items())
    )
    print("shipped weights: " + figures(static, resolved, args.threshold))
    print(f"online: {figures(online, resolved, args.threshold)} outcomes={len(outcomes)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
