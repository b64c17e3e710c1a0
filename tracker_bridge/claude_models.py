"""Which Claude model to use by default, what each current model costs, and when a model reaches end of life.

Why a table shipped with the code: the dollar caps (`max_cost_usd`, `daily_budget_usd`) are counted from tokens, so
a run on a model without a price would be counted as free; and Anthropic retires models on fixed dates, after which
every run fails. Both facts change over time, so each table says where it came from and when it was read.
`[agent.prices.<model>]` in the configuration overrides a price; a newer anthropic SDK's own deprecation table
(`anthropic._data.DEPRECATED_MODELS`) is read at run time and adds to ours.

This module imports nothing of the daemon's, so `tracker_bridge.config` can take its defaults from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

# The default for `[agent] model` and `[scoring] llm_model`: Anthropic's current Sonnet on 2026-11-30 (the SDK lists
# it first among the Sonnets, its overview page marks it "Latest", and it has no retirement date announced).
DEFAULT_MODEL = "claude-sonnet-5-5"

# Warn this many days before a model's end of life (and, of course, after it).
EOL_WARNING_DAYS = 30

PRICES_SOURCE = (
    "Anthropic's pricing page https://platform.claude.com/docs/en/about-claude/pricing and the model overview pages "
    "(platform.claude.com/docs/en/models/<model>/overview), read 2026-11-30; USD per million tokens, 5-minute cache "
    "writes. Haiku 5.5 is tiered by prompt size: the table holds the dearer tier (prompts over 100,000 tokens) so a "
    "cap is never under-counted."
)
PRICES_DATE = date(2026, 11, 30)


@dataclass(frozen=True)
class Price:
    """USD per million tokens; `cache_read` None means "priced as input" (the dearer guess)."""

    input: float
    output: float
    cache_write: float | None
    cache_read: float | None


# model id -> price. Dated ids (claude-haiku-4-5-20251001) fall back to their undated entry (caps.price_of).
PRICES: dict[str, Price] = {
    "claude-fable-5-2": Price(10.0, 50.0, 12.50, 0.25),
    "claude-fable-5-1": Price(10.0, 50.0, 12.50, 0.25),
    "claude-fable-5": Price(10.0, 50.0, 12.50, 1.00),
    "claude-mythos-5-1": Price(10.0, 50.0, 12.50, 0.25),
    "claude-mythos-5": Price(10.0, 50.0, 12.50, 1.00),
    "claude-opus-5-5": Price(4.0, 20.0, 5.00, 0.20),
    "claude-opus-5": Price(5.0, 25.0, 6.25, 0.50),
    "claude-opus-4-8": Price(5.0, 25.0, 6.25, 0.50),
    "claude-opus-4-7": Price(5.0, 25.0, 6.25, 0.50),
    "claude-opus-4-6": Price(5.0, 25.0, 6.25, 0.50),
    "claude-opus-4-5": Price(5.0, 25.0, 6.25, 0.50),
    "claude-opus-4-1": Price(15.0, 75.0, 18.75, 1.50),
    "claude-sonnet-5-5": Price(2.0, 10.0, 2.50, 0.20),
    "claude-sonnet-5": Price(2.0, 10.0, 2.50, 0.20),
    "claude-sonnet-4-6": Price(3.0, 15.0, 3.75, 0.30),
    "claude-sonnet-4-5": Price(3.0, 15.0, 3.75, 0.30),
    "claude-haiku-5-5": Price(0.50, 2.50, 0.625, None),
    "claude-haiku-4-5": Price(1.0, 5.0, 1.25, 0.10),
}

EOL_SOURCE = (
    "the anthropic Python SDK 2.14.0, anthropic/_data/deprecated_models.py (DEPRECATED_MODELS), read 2026-11-30; "
    "Anthropic's model deprecations page https://docs.anthropic.com/en/docs/resources/model-deprecations"
)

# model id -> the day it stops answering (end of life, "retirement").
END_OF_LIFE: dict[str, date] = {
    "claude-mythos-preview": date(2026, 6, 30),
    "claude-opus-4-5": date(2027, 1, 22),
    "claude-opus-4-5-20251101": date(2027, 1, 22),
    "claude-sonnet-4-5": date(2026, 11, 30),
    "claude-sonnet-4-5-20250929": date(2026, 11, 30),
}

_SDK_DATE = re.compile(r"^(?P<month>[A-Za-z]+)\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,\s*(?P<year>\d{4})$")


def _parse_sdk_date(text: str) -> date | None:
    """`November 30th, 2026` (the SDK's wording) -> date(2026, 11, 30); None for anything else."""
    m = _SDK_DATE.match(text.strip())
    if not m:
        return None
    try:
        return datetime.strptime(f"{m['month']} {m['day']} {m['year']}", "%B %d %Y").date()
    except ValueError:
        return None


def end_of_life_table() -> dict[str, date]:
    """Our table, plus whatever the installed anthropic SDK announces (a newer SDK knows of newer retirements)."""
    table = dict(END_OF_LIFE)
    try:
        from anthropic._data import DEPRECATED_MODELS  # a private module: read it if it is there, never rely on it
    except ImportError:  # pragma: no cover - older or newer SDK layouts
        return table
    for model, text in dict(DEPRECATED_MODELS).items():
        when = _parse_sdk_date(str(text))
        if when is not None:
            table.setdefault(model, when)
    return table


def end_of_life(model: str) -> date | None:
    table = end_of_life_table()
    if model in table:
        return table[model]
    # A dated id shares its family's date (claude-sonnet-4-5-20250929 -> claude-sonnet-4-5) and vice versa.
    return next((d for name, d in table.items() if model.startswith(name + "-") or name.startswith(model + "-")), None)


def model_warning(model: str, today: date, *, key: str = "[agent] model") -> str | None:
    """A sentence for `doctor` and start-up when `model` is past or within EOL_WARNING_DAYS of its end of life."""
    eol = end_of_life(model)
    if eol is None:
        return None
    days = (eol - today).days
    fix = f'set {key} = "{DEFAULT_MODEL}" (or another current model, docs/agents.md)'
    if days <= 0:
        when = "today" if days == 0 else f"on {eol.isoformat()}"
        return f"{key} = {model!r} reached its end of life {when}: Anthropic no longer serves it. Fix: {fix}"
    if days <= EOL_WARNING_DAYS:
        return f"{key} = {model!r} reaches its end of life on {eol.isoformat()} (in {days} days). Fix: {fix}"
    return None
