"""How well the scorer tells issues experts rated clear from vague ones, and what the decline policy does to each.

    python bench/clarity_eval.py --data bench/data/clarity-dev.jsonl [--threshold T] [--clarity-share S] [--llm]

Each row's problem_statement is scored text-only (title = first line). "Vague" is underspecified >= 2. The last line
printed is exactly

    clarity: auc_score=<a> auc_clarity=<b> declined_vague=<x> declined_clear=<y> n=<n>

auc_score and auc_clarity are the ROC AUCs for "vague" of (1 - score) and (1 - the clarity factor); declined_* are
the fractions of vague and of clear issues whose score is below the threshold. The decline policy of issue 15 asks
declined_clear <= 0.20 and declined_vague >= 1.8 x declined_clear.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from triage_eval import llm_available, load_rows, roc_auc, score_rows

from tracker_bridge.config import ScoringConfig


def main(argv: list[str] | None = None) -> int:
    default_threshold = ScoringConfig().threshold
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, required=True, help="JSON Lines with problem_statement, underspecified")
    parser.add_argument("--threshold", type=float, default=default_threshold, help=f"default {default_threshold}")
    parser.add_argument(
        "--llm", action="store_true", help="blend in the LLM judge when its API key is set (says so when skipped)"
    )
    parser.add_argument(
        "--clarity-share", type=float, default=None, help="[scoring] clarity_share (default: the weights table's)"
    )
    args = parser.parse_args(argv)

    rows = load_rows(args.data)
    config = ScoringConfig(
        threshold=args.threshold, repo_analysis=False, llm=llm_available(args.llm), clarity_share=args.clarity_share
    )
    scores = score_rows(rows, config)
    vague = [float(str(r["underspecified"])) >= 2 for r in rows]
    values = [s.value for s in scores]
    clarity = [next((f.value for f in s.factors if f.name == "clarity"), 0.0) for s in scores]
    declined = [v < args.threshold for v in values]
    n_vague = sum(vague)
    n_clear = len(rows) - n_vague
    declined_vague = sum(d for d, v in zip(declined, vague, strict=True) if v) / max(n_vague, 1)
    declined_clear = sum(d for d, v in zip(declined, vague, strict=True) if not v) / max(n_clear, 1)
    print(f"rows={len(rows)} vague={n_vague} clear={n_clear} threshold={args.threshold}")
    print(
        f"clarity: auc_score={roc_auc([1 - v for v in values], vague):.3f} "
        f"auc_clarity={roc_auc([1 - c for c in clarity], vague):.3f} "
        f"declined_vague={declined_vague:.3f} declined_clear={declined_clear:.3f} n={len(rows)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
