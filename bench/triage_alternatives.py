"""Other ways to combine clarity and scope, measured the same honest way: do any meet both of issue 15's targets?

    python bench/triage_alternatives.py [--repeats 3] [--folds 5] [--seed 1] [--lam 3]

bench/fit_scorer.py ships a weighted mean of the two fitted factors and prints the trade-off as the clarity share
moves. This script checks the alternatives docs/scoring.md lists, each fitted only inside the training folds of
repeated 5-fold cross-validation (folds by instance; the penalty held at --lam; the threshold at the score below
which 15% of the training fold's clear issues fall, from inner out-of-fold scores):

- lin a / rank a / geo a: the weighted mean, the mean of ranks, and clarity^a x scope^(1-a);
- gate q: decline the lowest q of clarity, rank the rest by scope;
- hinge q b: scope, minus b x how far clarity falls below its q-quantile (only the least clear tickets lose);
- cues/...: the clarity factor fitted only on the cues whose direction agrees with resolution (CUES: questions,
  hedging, "not sure", proposals; a fix, a missing case; reproduction, expected versus actual), weighted mean;
- joint w: one model fitted to both targets at once (shared weights, the resolution rows counted w times);
- ease/...: the scope factor fitted on the experts' difficulty rating of all 444 issues (1 for "<15 min fix" down
  to 0 for ">4 hours") instead of the 252 resolution fractions, with the scope features or with all of them.

Printed per variant: the mean ± spread over the held-out folds of each figure. None of them is shipped; the point
is that none meets Spearman >= 0.18 and AUC >= 0.65 together. Kind and risk are left out (text factors only).
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import random
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from triage_eval import roc_auc, spearman, ticket_from_statement  # noqa: E402

from tracker_bridge.scoring.features import (  # noqa: E402
    CLARITY_FEATURES,
    DIRECTION,
    FEATURES,
    SCOPE_FEATURES,
    UNFITTED_CLARITY,
    text_features,
)
from tracker_bridge.scoring.fit import fit_logistic  # noqa: E402
from tracker_bridge.scoring.text import analyse_text  # noqa: E402

EASE = {"<15 min fix": 1.0, "15 min - 1 hour": 2 / 3, "1-4 hours": 1 / 3, ">4 hours": 0.0}
ALL = tuple(n for n in FEATURES if n not in UNFITTED_CLARITY)
# Clarity cues that do not rank resolution the other way (Spearman with the resolved fraction >= about -0.1, and the
# vague-side cues not positive): a clarity factor that could cost the ranking by success less.
CUES = ("unsure", "questions", "hedges", "proposes", "fix", "missing_case", "repro", "expected")
Row = dict[str, object]
Model = tuple[float, dict[str, float]]
Combine = Callable[[list[float], list[float]], Callable[[float, float], float]]


def load(name: str) -> list[Row]:
    text = (ROOT / "bench" / "data" / name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def rows() -> list[Row]:
    triage = {str(r["instance_id"]): r for r in load("triage-dev.jsonl")}
    out: list[Row] = []
    for r in load("clarity-dev.jsonl"):
        iid = str(r["instance_id"])
        t = analyse_text(ticket_from_statement(str(r["problem_statement"]), iid))
        res = triage.get(iid)
        out.append(
            {
                "iid": iid,
                "f": text_features(t),
                "clear": float(float(str(r["underspecified"])) < 2),
                "ease": EASE[str(r["difficulty"])],
                "res": None if res is None else float(str(res["resolved_fraction"])),
            }
        )
    return out


def feats(r: Row) -> dict[str, float]:
    f = r["f"]
    assert isinstance(f, dict)
    return f


def target(r: Row, name: str) -> float | None:
    v = r[name]
    return None if v is None else float(str(v))


def fit_one(train: Sequence[Row], names: Sequence[str], name: str, lam: float) -> Model:
    """A penalised logistic model; features whose weight comes out against their direction are dropped."""
    rs = [r for r in train if target(r, name) is not None]
    keep = list(names)
    while True:
        b, w = fit_logistic([[feats(r)[n] for n in keep] for r in rs], [target(r, name) or 0.0 for r in rs], lam)
        wrong = {n for n, c in zip(keep, w, strict=True) if c * DIRECTION[n] < 0}
        if not wrong:
            return b, dict(zip(keep, w, strict=True))
        keep = [n for n in keep if n not in wrong]


def fit_joint(train: Sequence[Row], lam: float, weight: int) -> Model:
    """One set of weights for both targets: clarity rows and (weight times) resolution rows, own intercepts."""
    data = [([1.0, *[feats(r)[n] for n in ALL]], target(r, "clear") or 0.0) for r in train]
    data += [([0.0, *[feats(r)[n] for n in ALL]], target(r, "res") or 0.0) for r in train if r["res"] is not None]
    data += [d for d in data if d[0][0] == 0.0] * (weight - 1)
    keep = list(range(len(ALL)))
    while True:
        _, w = fit_logistic([[x[0]] + [x[1 + j] for j in keep] for x, _ in data], [y for _, y in data], lam)
        wrong = {j for j, c in zip(keep, w[1:], strict=True) if c * DIRECTION[ALL[j]] < 0}
        if not wrong:
            return 0.0, {ALL[j]: c for j, c in zip(keep, w[1:], strict=True)}
        keep = [j for j in keep if j not in wrong]


def value(m: Model, r: Row) -> float:
    z = m[0] + sum(c * feats(r)[n] for n, c in m[1].items())
    return 1 / (1 + math.exp(-z))


def ranker(xs: list[float]) -> Callable[[float], float]:
    s = sorted(xs)
    return lambda x: bisect.bisect_left(s, x) / len(s)


def lin(a: float) -> Combine:
    return lambda cs, ss: lambda c, s: a * c + (1 - a) * s


def rank(a: float) -> Combine:
    def make(cs: list[float], ss: list[float]) -> Callable[[float, float], float]:
        rc, rs = ranker(cs), ranker(ss)
        return lambda c, s: a * rc(c) + (1 - a) * rs(s)

    return make


def geo(a: float) -> Combine:
    return lambda cs, ss: lambda c, s: c**a * s ** (1 - a)


def hinge(q: float, b: float) -> Combine:
    def make(cs: list[float], ss: list[float]) -> Callable[[float, float], float]:
        knee = sorted(cs)[int(q * len(cs))]
        return lambda c, s: s - b * max(0.0, knee - c)

    return make


def gate(q: float) -> Combine:
    def make(cs: list[float], ss: list[float]) -> Callable[[float, float], float]:
        cut = sorted(cs)[int(q * len(cs))]
        rc, rs = ranker(cs), ranker(ss)
        return lambda c, s: 1 + rs(s) if c >= cut else rc(c)

    return make


def figures(score: dict[str, float], test: Sequence[Row], cut: float) -> dict[str, float]:
    tr = [r for r in test if r["res"] is not None]
    res = [target(r, "res") or 0.0 for r in tr]
    sel = [y for r, y in zip(tr, res, strict=True) if score[str(r["iid"])] >= cut]
    clear = [r for r in test if r["clear"] == 1.0]
    vague = [r for r in test if r["clear"] == 0.0]
    return {
        "spearman": spearman([score[str(r["iid"])] for r in tr], res),
        "selected_fraction": len(sel) / len(tr),
        "selected_gain": (sum(sel) / len(sel) if sel else 0.0) - sum(res) / len(res),
        "auc_score": roc_auc([1 - score[str(r["iid"])] for r in test], [r["clear"] == 0.0 for r in test]),
        "declined_clear": sum(score[str(r["iid"])] < cut for r in clear) / len(clear),
        "declined_vague": sum(score[str(r["iid"])] < cut for r in vague) / len(vague),
    }


def folds(items: Sequence[Row], k: int, rng: random.Random) -> list[list[Row]]:
    order = list(items)
    rng.shuffle(order)
    return [order[i::k] for i in range(k)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lam", type=float, default=3.0)
    args = parser.parse_args(argv)
    data = rows()
    combos: dict[str, Combine] = {f"lin {a}": lin(a) for a in (0.0, 0.2, 0.35, 0.5, 0.8, 1.0)}
    combos |= {f"rank {a}": rank(a) for a in (0.2, 0.35, 0.5)}
    combos |= {f"geo {a}": geo(a) for a in (0.2, 0.35, 0.5)}
    combos |= {f"gate {q}": gate(q) for q in (0.1, 0.15, 0.2)}
    combos |= {f"hinge {q} {b}": hinge(q, b) for q, b in ((0.15, 1.0), (0.3, 1.0), (0.3, 4.0))}
    # label -> (scope features, scope target, clarity features)
    scopes: dict[str, tuple[Sequence[str], str, Sequence[str]]] = {
        "": (SCOPE_FEATURES, "res", CLARITY_FEATURES),
        "ease/scope features, ": (SCOPE_FEATURES, "ease", CLARITY_FEATURES),
        "ease/all features, ": (ALL, "ease", CLARITY_FEATURES),
        "cues/": (SCOPE_FEATURES, "res", CUES),
    }
    out: dict[str, list[dict[str, float]]] = {}
    rng = random.Random(args.seed)
    for _ in range(args.repeats):
        for i, test in enumerate(fs := folds(data, args.folds, rng)):
            train = [r for j, f in enumerate(fs) if j != i for r in f]
            inner = folds(train, 3, rng)
            for label, (names, tgt, cnames) in scopes.items():
                # Inner out-of-fold factor values: the combinations' ranks and the threshold come from these.
                oc: dict[str, float] = {}
                os_: dict[str, float] = {}
                for m, part in enumerate(inner):
                    rest = [r for n, f in enumerate(inner) if n != m for r in f]
                    mc, ms = fit_one(rest, cnames, "clear", args.lam), fit_one(rest, names, tgt, args.lam)
                    for r in part:
                        oc[str(r["iid"])], os_[str(r["iid"])] = value(mc, r), value(ms, r)
                mc, ms = fit_one(train, cnames, "clear", args.lam), fit_one(train, names, tgt, args.lam)
                for name, combine in combos.items():
                    if label and not name.startswith("lin"):
                        continue
                    f = combine([oc[str(r["iid"])] for r in train], [os_[str(r["iid"])] for r in train])
                    clear = sorted(f(oc[str(r["iid"])], os_[str(r["iid"])]) for r in train if r["clear"] == 1.0)
                    cut = clear[int(0.15 * len(clear))]
                    score = {str(r["iid"]): f(value(mc, r), value(ms, r)) for r in test}
                    out.setdefault(label + name, []).append(figures(score, test, cut))
            for w in (1, 2, 3):
                inner_joint = [
                    fit_joint([r for n, f in enumerate(inner) if n != m for r in f], args.lam, w) for m in range(3)
                ]
                oj = {str(r["iid"]): value(inner_joint[m], r) for m, part in enumerate(inner) for r in part}
                mj = fit_joint(train, args.lam, w)
                clear = sorted(oj[str(r["iid"])] for r in train if r["clear"] == 1.0)
                score = {str(r["iid"]): value(mj, r) for r in test}
                out.setdefault(f"joint {w}", []).append(figures(score, test, clear[int(0.15 * len(clear))]))
    for name, runs in out.items():
        figs = " ".join(
            f"{k}={statistics.mean(r[k] for r in runs):.3f}±{statistics.pstdev(r[k] for r in runs):.3f}"
            for k in runs[0]
        )
        print(f"{name:28s} {figs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
