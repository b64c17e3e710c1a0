"""The readable text features the fitted scorer weighs: each a number in [0, 1] a person can check in the ticket.

Why a fixed, short list: the weights are fitted on a few hundred real issues (bench/fit_scorer.py), and only a
handful of features with a plain meaning carries over to tickets the fit never saw; a bag of words did not
(docs/scoring.md). Each feature has a sentence for the status comment (`LABELS`) and, where a person can add it,
what to add (`ADVICE`), so a declined ticket names the specific things missing.
"""

from __future__ import annotations

import math
import re

from tracker_bridge.scoring.text import TicketText

# "expected ... instead": the expected-versus-actual pair of a good report, in its common spellings.
_INSTEAD = re.compile(r"\binstead\b|\bbut (?:it |this |that )?(?:returns|raises|gives|shows|prints|fails)\b")
# A version number or an environment section: the reporter says where it happens.
_VERSION = re.compile(r"\b(?:version|v?\d+\.\d+\.\d+|python \d\.\d+)\b")
# The reporter explains why it is wrong, or links where it is discussed or where the code is.
_EXPLAINS = re.compile(r"\b(?:because|due to|the reason|the cause|caused by)\b")
_LINK = re.compile(r"https?://")
# An issue template's sections: a report that answered the template is rarely vague.
_TEMPLATE = re.compile(
    r"(describe the bug|expected (?:behaviou?r|result|outcome)|actual (?:behaviou?r|result|outcome)|"
    r"steps to reproduce|to reproduce|environment|operating system)"
)
# The reporter proposes or suggests a change, or asks others to decide, instead of reporting what happens: the
# commonest mark of the issues experts rated vague, and no worse for an agent's chance (docs/scoring.md).
_PROPOSES = re.compile(
    r"\b(?:propos\w*|suggest\w*|would be (?:nice|great|useful|good|better)|it would be|could we|can we|we could|"
    r"we should|why not|how about|what about)\b"
)
_PROPOSES_WORDS = ("propos", "suggest", "would be", "could we", "can we", "we could", "we should", "why not", "about")
# A ticket this short (title and body, in words) rarely says where, what was done and what was expected.
SHORT_WORDS = 60
# The reporter says they are unsure what is happening or what they want.
_UNSURE = re.compile(r"\b(?:not sure|don't know|do not know|unclear|not clear|confus\w*|i wonder|wondering|no idea)\b")

# Feature name -> what it means, as the factor reason says it.
LABELS: dict[str, str] = {
    "expected": "says what should happen instead (expected versus actual)",
    "repro": "reproduction steps or code",
    "traceback": "a traceback",
    "named": "names the function, class or file",
    "title_symbol": "the title names the code",
    "fix": "a proposed fix or patch",
    "missing_case": "one case an existing feature does not handle",
    "version": "the version or environment",
    "explains": "explains why it is wrong",
    "link": "links to the code or a discussion",
    "template": "answers an issue template",
    "prose": "a detailed explanation",
    "unsure": "the reporter is unsure",
    "proposes": "proposes or suggests rather than reports",
    "short": "very short",
    "acceptance": "acceptance criteria",
    "size": "a long text",
    "breadth": "many functions and files named",
    "code": "long pasted code",
    "asks": "several asks in one ticket",
    "questions": "open questions",
    "hedges": "hedging wording",
    "feature": "feature-request wording",
    "ticket_refs": "context in other tickets",
    "docs": "documentation work too",
}

# Feature name -> what to add (for features whose presence helps) or change (for those that hurt).
ADVICE: dict[str, str] = {
    "expected": "Say what should happen instead: expected versus actual behaviour.",
    "repro": "Add reproduction steps or a short code snippet that shows the problem.",
    "named": "Name the function, class or file to change (e.g. `billing.invoice.total()`).",
    "acceptance": "Add acceptance criteria: the observable result that means the ticket is done.",
    "version": "Say which version or environment shows the problem.",
    "questions": "Answer the {questions} in the ticket, or drop them.",
    "hedges": "Replace the open wording ({hedges}) with the decision: what exactly should change.",
    "asks": "Split the ticket: it asks for {asks} separate things; keep one change per ticket.",
    "breadth": "Narrow the change: it names {named} functions and files; say which one or two must change.",
    "ticket_refs": "Copy what matters from {ticket_refs} into this ticket: the agent reads only this one.",
    "proposes": "State the decision instead of the proposal: what exactly should change, and how to tell it works.",
    "short": "Add detail ({words} words now): where it happens, what you did, what you expected and what happened.",
    "size": "Cut it down to the essentials ({words} words now): the problem, where it is, and the expected result.",
}


def advice_details(t: TicketText) -> dict[str, str]:
    """What the advice quotes back from this ticket, so a decline names the specific things to change."""
    return {
        "questions": "open question" if t.questions == 1 else f"{t.questions} open questions",
        "hedges": ", ".join(repr(h) for h in t.hedges[:3]) or "'maybe', 'not sure'",
        "asks": str(t.asks),
        "named": str(len(t.symbols) + len(t.paths)),
        "ticket_refs": ", ".join(t.ticket_refs[:3]) or "the referenced tickets",
        "words": str(t.words),
    }


def _clip(x: float) -> float:
    return 0.0 if x < 0.0 else 1.0 if x > 1.0 else x


def _any(low: str, *words: str) -> bool:
    """A cheap substring test before a regular expression: most tickets contain none of the words."""
    for w in words:  # noqa: SIM110 (a loop: the generator of any() costs more than the tests)
        if w in low:
            return True
    return False


def text_features(t: TicketText) -> dict[str, float]:
    """The features of one ticket, by name (all in [0, 1])."""
    low = t.prose.lower()
    named = len(t.symbols) + len(t.paths)
    return {
        "expected": float(t.has_expected or (_any(low, "instead", "but ") and bool(_INSTEAD.search(low)))),
        "repro": float(t.has_repro),
        "traceback": float(t.has_traceback),
        "named": float(bool(t.symbols or t.paths or t.snake_names)),
        "title_symbol": float(t.title_names_symbol),
        "fix": float(t.offers_patch or t.proposes_fix),
        "missing_case": float(t.missing_case),
        "version": float(t.names_regression or bool(_VERSION.search(low))),
        "acceptance": float(t.has_acceptance),
        "explains": float(_any(low, "because", "due to", "reason", "cause") and bool(_EXPLAINS.search(low))),
        "link": float("http" in low and bool(_LINK.search(t.prose))),
        "template": float(
            _any(low, "describe", "expected", "actual", "reproduce", "environment", "operating")
            and bool(_TEMPLATE.search(low))
        ),
        # Words of prose (not code): about 20 -> 0, about 400 -> 1.
        "prose": _clip((math.log(max(t.prose_words, 1)) - math.log(20)) / (math.log(400) - math.log(20))),
        "unsure": float(
            _any(low, "not sure", "know", "unclear", "not clear", "confus", "wonder", "no idea")
            and bool(_UNSURE.search(low))
        ),
        "proposes": float(_any(low, *_PROPOSES_WORDS) and bool(_PROPOSES.search(low))),
        "short": float(t.words < SHORT_WORDS),
        "size": t.size,
        # A few names pin the place; dozens mean the change spreads: log scale, 2 names -> 0, 25 -> 1.
        "breadth": _clip((math.log1p(named) - math.log1p(2)) / (math.log1p(25) - math.log1p(2))),
        "code": _clip(math.log1p(t.code_lines) / math.log1p(80)),
        "asks": _clip((t.asks - 1) / 3),
        "questions": _clip(t.questions / 3),
        "hedges": _clip(len(t.hedges) / 3),
        "feature": float(t.feature_wording and not t.bug_wording),
        "ticket_refs": float(bool(t.ticket_refs)),
        "docs": float(t.docs_wording),
    }


FEATURES: tuple[str, ...] = tuple(LABELS)

# The direction each feature may push a factor: +1 it may only help, -1 it may only hurt. The fit drops a feature
# whose fitted weight comes out the other way (on a few hundred issues that is noise, not a finding, and a comment
# saying "naming the function lowered the score" would mislead the reporter).
DIRECTION: dict[str, int] = {
    "expected": 1,
    "repro": 1,
    "traceback": 1,
    "named": 1,
    "title_symbol": 1,
    "fix": 1,
    "missing_case": 1,
    "version": 1,
    "acceptance": 1,
    "explains": 1,
    "link": 1,
    "template": 1,
    "prose": 1,
    "size": -1,
    "breadth": -1,
    "code": -1,
    "asks": -1,
    "questions": -1,
    "hedges": -1,
    "feature": -1,
    "ticket_refs": -1,
    "docs": -1,
    "unsure": -1,
    "proposes": -1,
    "short": -1,
}
# Features the development data cannot fit (no issue there has acceptance criteria) get a set weight on the
# clarity factor, the size of the fitted weight of "expected versus actual", its nearest relative.
UNFITTED_CLARITY: tuple[str, ...] = ("acceptance",)

# Which features each fitted factor weighs. Scope (will an agent resolve it) keeps to the size and pin-point signs
# that carried over between halves of the data; clarity (would a person know what is asked) to the signs of a
# report that pins the problem down or leaves it open. Fewer features per model generalised better (docs/scoring.md).
SCOPE_FEATURES: tuple[str, ...] = (
    "size",
    "breadth",
    "fix",
    "missing_case",
    "title_symbol",
    "hedges",
    "ticket_refs",
    "docs",
)
CLARITY_FEATURES: tuple[str, ...] = (
    "expected",
    "repro",
    "traceback",
    "named",
    "version",
    "explains",
    "link",
    "template",
    "prose",
    "unsure",
    "questions",
    "hedges",
    "feature",
    "fix",
    "acceptance",
    "asks",
    "code",
    "proposes",
    "short",
)
