"""How well the text-only scorer ranks real issues by how often autonomous agents solved them.

    python bench/triage_eval.py --data bench/data/triage-dev.jsonl [--threshold 0.6] [--clarity-share S]
                                [--split-seed N] [--llm]

Each row's problem_statement becomes a Ticket (title = first line, description = the rest) scored with
repository analysis and the LLM judge off. The last line printed is exactly

    spearman=<r> auc=<a> selected_fraction=<f> selected_mean_resolved=<m>

Spearman (average ranks for ties) is between score and resolved_fraction; AUC is the ROC AUC of the score for
"resolved_fraction >= 0.5"; selected are the tickets with score >= threshold. With --split-seed the rows are also
shuffled and halved, and the same figures are printed for each half (before the last line), to check that a change
is signal rather than a fit to these rows. Plain Python, no scipy: it must run anywhere the daemon runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tracker_bridge.config import ScoringConfig
from tracker_bridge.models import Score, Ticket
from tracker_bridge.scoring import score_ticket


def ranks(xs: list[float]) -> list[float]:
    """1-based ranks, ties sharing the average of the ranks they span."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    out = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        avg = (i + j) / 2 + 1
        for k in range(i, j + 1):
            out[order[k]] = avg
        i = j + 1
    return out


def pearson(a: list[float], b: list[float]) -> float:
    n = len(a)
    if n < 2:
        return 0.0
    ma, mb = sum(a) / n, sum(b) / n
    va = sum((x - ma) ** 2 for x in a)
    vb = sum((y - mb) ** 2 for y in b)
    if va == 0 or vb == 0:
        return 0.0
    return sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True)) / math.sqrt(va * vb)


def spearman(a: list[float], b: list[float]) -> float:
    return pearson(ranks(a), ranks(b))


def roc_auc(scores: list[float], positive: list[bool]) -> float:
    """Probability that a random positive outscores a random negative (ties count half): Mann-Whitney U."""
    n_pos = sum(positive)
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return 0.5
    r = ranks(scores)
    rank_sum = sum(rk for rk, p in zip(r, positive, strict=True) if p)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def ticket_from_statement(statement: str, ref: str) -> Ticket:
    title, _, rest = statement.strip().partition("\n")
    return Ticket(ref=ref, tracker="triage-eval", title=title.strip(), description=rest)


def selection(scores: list[float], resolved: list[float], threshold: float) -> tuple[float, float]:
    """(share of tickets with score >= threshold, their mean resolved_fraction; 0 when none is selected)."""
    selected = [y for s, y in zip(scores, resolved, strict=True) if s >= threshold]
    frac = len(selected) / len(scores) if scores else 0.0
    sel_mean = sum(selected) / len(selected) if selected else 0.0
    return frac, sel_mean


def figures(scores: list[float], resolved: list[float], threshold: float) -> str:
    frac, sel_mean = selection(scores, resolved, threshold)
    return (
        f"spearman={spearman(scores, resolved):.3f} auc={roc_auc(scores, [y >= 0.5 for y in resolved]):.3f} "
        f"selected_fraction={frac:.3f} selected_mean_resolved={sel_mean:.3f}"
    )


def llm_available(wanted: bool) -> bool:
    """Whether to run the LLM judge: asked for and its key present; says so when it is skipped."""
    if not wanted:
        return False
    env = ScoringConfig().api_key_env
    if not os.environ.get(env):
        print(f"llm judge: skipped ({env} is not set); offline factors only")
        return False
    print(f"llm judge: on ({ScoringConfig().llm_model}); answers not cached and costs not recorded outside a daemon")
    return True


def load_rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def score_rows(rows: list[dict[str, object]], config: ScoringConfig) -> list[Score]:
    """Text-only scores of the rows' problem statements, in order."""
    return [
        score_ticket(ticket_from_statement(str(r["problem_statement"]), f"row-{i}"), config) for i, r in enumerate(rows)
    ]


def main(argv: list[str] | None = None) -> int:
    default_threshold = ScoringConfig().threshold
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, required=True, help="JSON Lines with problem_statement, resolved_fraction")
    parser.add_argument("--threshold", type=float, default=default_threshold, help=f"default {default_threshold}")
    parser.add_argument(
        "--llm", action="store_true", help="blend in the LLM judge when its API key is set (says so when skipped)"
    )
    parser.add_argument("--split-seed", type=int, default=None, help="also report a random 50/50 split")
    parser.add_argument(
        "--clarity-share", type=float, default=None, help="[scoring] clarity_share (default: the weights table's)"
    )
    args = parser.parse_args(argv)

    rows = load_rows(args.data)
    config = ScoringConfig(
        threshold=args.threshold, repo_analysis=False, llm=llm_available(args.llm), clarity_share=args.clarity_share
    )
    scores = [s.value for s in score_rows(rows, config)]
    resolved = [float(str(r["resolved_fraction"])) for r in rows]
    print(f"rows={len(rows)} mean_resolved={sum(resolved) / len(resolved):.3f} threshold={args.threshold}")
    if args.split_seed is not None:
        order = list(range(len(rows)))
        random.Random(args.split_seed).shuffle(order)
        half = len(order) // 2
        for name, part in (("half A", order[:half]), ("half B", order[half:])):
            ys = [resolved[i] for i in part]
            print(
                f"{name}: mean_resolved={sum(ys) / len(ys):.3f} "
                + figures([scores[i] for i in part], ys, args.threshold)
            )
    print(figures(scores, resolved, args.threshold))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
