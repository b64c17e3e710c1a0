"""The text factors: scope, clarity, kind and risk, each a value in [0, 1] with a reason and what to add.

Values are built from the facts `text.py` extracts, with fixed, round coefficients. They were checked against real
agent outcomes (bench/triage_eval.py on bench/data/triage-dev.jsonl, see docs/scoring.md): tickets that name many
symbols, run long, pile up asks, refer to other tickets or hedge did worse; tickets that pin the problem (a
traceback, the version where it broke, a patch, "X does not support Y", a title naming the function) did better.
The coefficients are deliberately not fitted to the rows, so that they carry over to other trackers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tracker_bridge.models import Factor
from tracker_bridge.scoring.text import TicketText

# Relative weights of the factors in the blend (the LLM judge, when on, takes `[scoring] llm_weight`).
WEIGHTS: dict[str, float] = {"scope": 0.30, "clarity": 0.30, "kind": 0.15, "risk": 0.10, "coverage": 0.15}

# The coefficients below are round numbers chosen by hand for each feature's direction and rough strength on the
# development data, not fitted: fitted coefficients did worse on held-out halves (docs/scoring.md, "Robustness").

# Penalties taken off a scope of 1.0 (a one-line fix) for each sign of a bigger change.
SCOPE: dict[str, float] = {
    "length": 0.15,  # times log-length in [0, 1]; small because breadth and code already grow with length
    "breadth": 0.25,  # times log-count of named symbols and paths in [0, 1]
    "code": 0.05,  # times log-count of code lines in [0, 1]
    "ask": 0.03,  # per ask beyond the first
    "asks_max": 0.09,
    "docs": 0.15,
    "long_title": 0.10,  # times (title words - 6) / 10 in [0, 1]: a long title describes several things
    "ticket_refs": 0.08,  # refers to other tickets: part of the context lives elsewhere
    "feature": 0.04,
    "refactor": 0.03,
}

# Clarity starts from a plain report and moves with what pins the problem down or leaves it open.
CLARITY: dict[str, float] = {
    "base": 0.45,
    "patch": 0.25,  # a patch or pull request is offered or linked
    "regression": 0.20,  # the version where it broke
    "missing_case": 0.15,  # "X does not support Y": one missing case of an existing feature
    "title_symbol": 0.15,  # the title names the function or class
    "traceback": 0.20,
    "proposed_fix": 0.10,
    "test_named": 0.0,  # measured neutral: named tests mostly come with long pasted test cases, priced under scope
    "expected": 0.03,
    "acceptance": 0.10,
    "vague": 0.25,  # neither code, reproduction nor traceback, and nothing named
    "unnamed": 0.10,
    "hedge": 0.08,
    "hedges_max": 0.24,
    "question": 0.05,
    "questions_max": 0.15,
}


@dataclass(frozen=True)
class Assessment:
    """One factor, plus the concrete things to add to the ticket that would raise it."""

    factor: Factor
    suggestions: tuple[str, ...] = field(default=())


def _clip(x: float) -> float:
    return max(0.0, min(1.0, x))


def _names(items: tuple[str, ...], limit: int = 3) -> str:
    shown = ", ".join(f"`{i}`" for i in items[:limit])
    more = len(items) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def scope_factor(t: TicketText) -> Assessment:
    """How much change the ticket asks for: size of the text, how many things it names, how many asks."""
    named = len(t.symbols) + len(t.paths)
    # Naming a few symbols pins the place; naming dozens means the change spreads (measured: more names, fewer
    # successes). The log keeps 1 -> 3 names cheap and 10 -> 30 names expensive.
    breadth = _clip((math.log1p(named) - math.log1p(2)) / (math.log1p(25) - math.log1p(2)))
    # Long pasted programs mean a problem that needs a whole program to show; a few lines are a precise repro.
    code = _clip(math.log1p(t.code_lines) / math.log1p(80))
    long_title = _clip((t.title_words - 6) / 10)
    extra_asks = max(0, t.asks - 1)
    feature = t.feature_wording and not t.bug_wording
    penalties = {
        "length": SCOPE["length"] * t.size,
        "breadth": SCOPE["breadth"] * breadth,
        "code": SCOPE["code"] * code,
        "asks": min(SCOPE["asks_max"], SCOPE["ask"] * extra_asks),
        "docs": SCOPE["docs"] if t.docs_wording else 0.0,
        "long_title": SCOPE["long_title"] * long_title,
        "ticket_refs": SCOPE["ticket_refs"] if t.ticket_refs else 0.0,
        "feature": SCOPE["feature"] if feature else 0.0,
        "refactor": SCOPE["refactor"] if t.refactor_wording else 0.0,
    }
    value = _clip(1.0 - sum(penalties.values()))
    if t.refactor_wording:
        wording = "a refactoring"
    elif feature:
        wording = "a feature request"
    elif t.bug_wording:
        wording = "a bug report"
    else:
        wording = "a change request"
    parts = [f"{wording} of {_plural(t.words, 'word')}"]
    if named:
        parts.append(f"naming {_plural(named, 'symbol')}" if not t.paths else f"naming {named} symbols and paths")
    if t.code_lines:
        parts.append(f"{_plural(t.code_lines, 'line')} of code")
    if extra_asks:
        parts.append(f"{t.asks} separate asks")
    if t.docs_wording:
        parts.append("documentation too")
    if t.ticket_refs:
        parts.append(f"context in other tickets ({', '.join(t.ticket_refs[:3])})")
    verdict = "focused" if value >= 0.7 else "moderate" if value >= 0.45 else "broad"
    reason = f"{verdict.capitalize()} scope: " + ", ".join(parts) + "."
    suggestions: list[str] = []
    if extra_asks >= 2:
        suggestions.append(f"Split the ticket: it asks for {t.asks} separate things; keep one change per ticket.")
    if breadth >= 0.5:
        suggestions.append(f"Narrow the change: it names {named} symbols and paths; say which one or two must change.")
    if t.ticket_refs:
        suggestions.append(
            f"Copy what matters from {', '.join(t.ticket_refs[:3])} into this ticket: the agent reads only this one."
        )
    if t.size >= 0.8:
        suggestions.append(
            f"Cut it down to the essentials ({t.words} words now): the problem, where it is, and the expected result."
        )
    factor = Factor(name="scope", value=round(value, 3), weight=WEIGHTS["scope"], reason=reason)
    return Assessment(factor, tuple(suggestions))


def clarity_factor(t: TicketText) -> Assessment:
    """Whether the ticket pins the problem down and says what done looks like."""
    concrete = t.has_repro or t.has_traceback or t.code_lines > 0
    named = bool(t.symbols or t.paths or t.snake_names)
    value = (
        CLARITY["base"]
        + (CLARITY["proposed_fix"] if t.proposes_fix else 0.0)
        + (CLARITY["patch"] if t.offers_patch else 0.0)
        + (CLARITY["title_symbol"] if t.title_names_symbol else 0.0)
        + (CLARITY["regression"] if t.names_regression else 0.0)
        + (CLARITY["missing_case"] if t.missing_case else 0.0)
        + (CLARITY["traceback"] if t.has_traceback else 0.0)
        + (CLARITY["test_named"] if t.tests_named else 0.0)
        + (CLARITY["expected"] if t.has_expected else 0.0)
        + (CLARITY["acceptance"] if t.has_acceptance else 0.0)
        - (CLARITY["vague"] if not concrete and not named else 0.0)
        - (CLARITY["unnamed"] if not named else 0.0)
        - min(CLARITY["hedges_max"], CLARITY["hedge"] * len(t.hedges))
        - min(CLARITY["questions_max"], CLARITY["question"] * t.questions)
    )
    value = _clip(value)
    pinned = t.proposes_fix or t.offers_patch or bool(t.tests_named)
    has: list[str] = []
    lacks: list[str] = []
    suggestions: list[str] = []
    if t.has_traceback:
        has.append("a traceback")
    elif concrete:
        has.append("code or reproduction steps")
    elif t.bug_wording:
        lacks.append("no reproduction or code")
        suggestions.append("Add reproduction steps, a code snippet or the traceback that shows the problem.")
    else:
        lacks.append("no example")
        suggestions.append("Add an example of the intended use: the call, command or input and what it should give.")
    if named:
        has.append(f"names {_names(tuple(dict.fromkeys(t.symbols + t.paths + t.snake_names)))}")
    else:
        lacks.append("no function, class or file named")
        suggestions.append("Name the function, class or file to change (e.g. `billing.invoice.total()`).")
    if t.tests_named:
        has.append(f"a test to run ({_names(t.tests_named, 2)})")
    if t.proposes_fix:
        has.append("a proposed fix")
    if t.offers_patch:
        has.append("a patch or pull request")
    if t.names_regression:
        has.append("the version where it broke")
    if t.missing_case:
        has.append("the one case that is not handled")
    if t.has_expected:
        has.append("the expected behaviour")
    elif not pinned:
        lacks.append("no expected behaviour")
        suggestions.append("Say what should happen instead: expected versus actual behaviour.")
    if t.has_acceptance:
        has.append("acceptance criteria")
    elif not pinned:
        lacks.append("no acceptance criteria")
        suggestions.append("Add acceptance criteria: the observable result that means the ticket is done.")
    if t.hedges:
        quoted = ", ".join(repr(h) for h in t.hedges[:3])
        lacks.append(f"hedging ({quoted})")
        suggestions.append(f"Replace the open wording ({quoted}) with the decision: what exactly should change.")
    if t.questions:
        lacks.append(_plural(t.questions, "open question"))
        suggestions.append(
            "Answer the open question in the ticket, or drop it."
            if t.questions == 1
            else f"Answer the {t.questions} open questions in the ticket, or drop them."
        )
    reason = "Has " + ", ".join(has) if has else "Nothing pins the problem down"
    if lacks:
        reason += ("; " if has else ": ") + ", ".join(lacks)
    factor = Factor(name="clarity", value=round(value, 3), weight=WEIGHTS["clarity"], reason=reason + ".")
    return Assessment(factor, tuple(suggestions))


def kind_factor(t: TicketText) -> Assessment:
    """Epics, spikes, design questions and tickets with sub-tasks are not one change an agent can finish."""
    markers = list(t.kind_markers)
    if t.checkboxes >= 3:
        markers.append(("sub-tasks", f"{t.checkboxes} checklist items"))
    if markers:
        kinds = sorted({k for k, _ in markers})
        evidence = ", ".join(f"'{m}'" for _, m in markers[:3])
        reason = f"Reads like {' / '.join(kinds)} ({evidence}), not a single change."
        suggestions = (
            "Split it into tickets that each ask for one concrete change, and label those `agent-ready` instead.",
            "Add acceptance criteria to each resulting ticket so the agent knows when it is done.",
        )
        return Assessment(Factor(name="kind", value=0.1, weight=WEIGHTS["kind"], reason=reason), suggestions)
    return Assessment(
        Factor(
            name="kind",
            value=1.0,
            weight=WEIGHTS["kind"],
            reason="A single change, not an epic, spike or design question.",
        )
    )


_RISK_PHRASE = {"migration": "a schema migration"}


def risk_factor(t: TicketText, extra: tuple[tuple[str, str], ...] = ()) -> Assessment:
    """Migrations, CI configuration, authentication and secrets, generated or vendored code.

    `extra` holds (category, path) pairs found by repository analysis, so a ticket that names a symbol living in a
    migration is caught even when the text does not say "migration".
    """
    hits: dict[str, list[str]] = {}
    for category, evidence in (*t.risk_mentions, *extra):
        if evidence not in hits.setdefault(category, []):
            hits[category].append(evidence)
    if not hits:
        return Assessment(
            Factor(
                name="risk",
                value=1.0,
                weight=WEIGHTS["risk"],
                reason="No migrations, CI configuration, secrets or generated code involved.",
            )
        )
    value = _clip(1.0 - 0.35 * len(hits))
    described = "; ".join(f"{cat}: {', '.join(f'`{e}`' for e in ev[:3])}" for cat, ev in hits.items())
    suggestions = tuple(
        f"It touches {_RISK_PHRASE.get(cat, cat)} ({', '.join(f'`{e}`' for e in ev[:2])}): say what may change "
        "there and how it is reviewed, "
        "or move that part to a separate ticket for a person."
        for cat, ev in hits.items()
    )
    return Assessment(
        Factor(
            name="risk", value=round(max(value, 0.1), 3), weight=WEIGHTS["risk"], reason=f"Risky area - {described}."
        ),
        suggestions,
    )
