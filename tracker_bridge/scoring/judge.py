"""The optional LLM judge: one Messages API call that rates the ticket on the scorer's own rubric, blended in as one
more factor.

Off by default (`[scoring] llm = false`). It uses the `anthropic` SDK with `[scoring] base_url` and the key from the
environment variable named by `api_key_env`. The model answers the same factors the offline scorer weighs (scope,
clarity, kind, risk, each 0-1) plus what is missing, as JSON; the factor is their mean weighted like the offline
blend. Answers are cached by ticket content (a re-scored, unchanged ticket costs nothing) in the state folder, and
what each call cost is written to a ledger there that the daily budget counts (`spent_on`). Whatever goes wrong (no
key, network, an answer that is not the JSON asked for) it returns a note instead of a factor, and the score stands
on the offline factors alone.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

from tracker_bridge import secrets
from tracker_bridge.config import ScoringConfig
from tracker_bridge.models import Factor, Ticket
from tracker_bridge.scoring.factors import Assessment

TIMEOUT = 30.0  # seconds; a judge that hangs must not hold up the poll loop
MAX_TICKET_CHARS = 12_000

RUBRIC = ("scope", "clarity", "kind", "risk")
SYSTEM = (
    "You triage tickets for an autonomous coding agent that works alone in the repository, runs the tests and "
    "opens a pull request. Rate the ticket on four factors, each a number from 0 to 1: "
    "scope (1: one small, focused change; 0: many changes or a large area), "
    "clarity (1: the problem, where it is and the expected result are pinned down, e.g. reproduction, expected vs "
    "actual, a named function or file, acceptance criteria; 0: vague, open questions, undecided), "
    "kind (1: a single change; 0: an epic, spike or design question), "
    "risk (1: no migrations, CI configuration, secrets or generated code; 0: mostly those). "
    'Answer with JSON only: {"scope": <0..1>, "clarity": <0..1>, "kind": <0..1>, "risk": <0..1>, '
    '"reason": "<one sentence>", "missing": ["<a specific thing to add to the ticket>", ...]}'
)
CACHE_DIR = "llm-judge-cache"
LEDGER = "llm-judge-spend.jsonl"

_JSON_OBJECT = re.compile(r"\{.*\}", re.S)


class JudgeError(Exception):
    pass


def _prompt(ticket: Ticket) -> str:
    body = ticket.description[:MAX_TICKET_CHARS]
    comments = "\n\n".join(ticket.comments)[:2000]
    return f"Ticket {ticket.ref}: {ticket.title}\n\n{body}" + (f"\n\nComments:\n{comments}" if comments else "")


def _unit(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        raise JudgeError(f"the answer's {name} {value!r} is not a number between 0 and 1")
    return float(value)


def parse_verdict(text: str, weights: dict[str, float] | None = None) -> tuple[float, str, list[str]]:
    """(score, reason, missing) from the model's answer; raises JudgeError when it is not what was asked.

    The score is the rubric's factors averaged with `weights` (the offline blend's); an answer with a single
    "score" is taken as it is.
    """
    match = _JSON_OBJECT.search(text)
    if not match:
        raise JudgeError("the answer held no JSON object")
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError as exc:
        raise JudgeError(f"the answer was not valid JSON ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise JudgeError("the answer was not a JSON object")
    if "score" in data or not any(k in data for k in RUBRIC):
        score = _unit(data.get("score"), "score")
    else:
        parts = {k: _unit(data.get(k), k) for k in RUBRIC}
        w = {k: (weights or {}).get(k, 1.0) for k in RUBRIC}
        total = sum(w.values()) or 1.0
        score = sum(w[k] * parts[k] for k in RUBRIC) / total
    reason = str(data.get("reason") or "no reason given").strip()
    missing = [str(m).strip() for m in data.get("missing") or [] if str(m).strip()]
    return float(score), reason, missing


def cache_key(ticket: Ticket, model: str) -> str:
    """The ticket's content as the judge sees it, with the model and rubric: an unchanged ticket is not re-asked."""
    return hashlib.sha256(f"{model}\n{SYSTEM}\n{_prompt(ticket)}".encode()).hexdigest()


def _cached(folder: Path | None, key: str) -> str | None:
    if folder is None:
        return None
    try:
        return str(json.loads((folder / CACHE_DIR / f"{key}.json").read_text(encoding="utf-8"))["text"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _store(folder: Path | None, key: str, text: str, cost: float) -> None:
    if folder is None:
        return
    try:
        target = folder / CACHE_DIR / f"{key}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps({"text": text, "cost_usd": cost}), encoding="utf-8")
        tmp.replace(target)
    except OSError:
        pass  # a cache that cannot be written costs a repeat call, never a score


def _charge(folder: Path | None, cost: float) -> None:
    """Every answered call is paid for, usable or not: the ledger the daily budget reads."""
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / LEDGER).open("a", encoding="utf-8") as ledger:
            ledger.write(json.dumps({"day": datetime.now(UTC).date().isoformat(), "cost_usd": cost}) + "\n")
    except OSError:
        pass


def call_cost(model: str, input_tokens: int, output_tokens: int) -> float:
    """US dollars at the list price of `model` (the dearest known price when the model is unknown: over-count)."""
    from tracker_bridge.config import _default_prices

    prices = _default_prices()
    price = prices.get(model) or max(prices.values(), key=lambda p: p.output)
    return (input_tokens * price.input + output_tokens * price.output) / 1_000_000


def spent_on(folder: Path | None, day: date) -> float:
    """What the judge cost on `day` (UTC), from the ledger in the state folder; the daily budget adds it."""
    if folder is None:
        return 0.0
    total = 0.0
    try:
        lines = (folder / LEDGER).read_text(encoding="utf-8").splitlines()
    except OSError:
        return 0.0
    for line in lines:
        try:
            entry = json.loads(line)
            if entry.get("day") == day.isoformat():
                total += float(entry.get("cost_usd", 0.0))
        except (ValueError, AttributeError, TypeError):
            continue
    return total


def judge(ticket: Ticket, config: ScoringConfig, weights: dict[str, float] | None = None) -> Assessment | str:
    """The judge's factor, or a note saying why the score fell back to the offline factors."""
    folder = config.weights_dir
    key = cache_key(ticket, config.llm_model)
    text = _cached(folder, key) if config.llm_cache else None
    if text is not None:
        try:
            return _assessment(config, *parse_verdict(text, weights))
        except JudgeError:
            pass  # a bad cached answer is asked again
    # Imported here: the SDK takes seconds to import, and text-only scoring (the default) never needs it.
    import anthropic

    api_key = secrets.get(config.api_key_env)
    if not api_key:
        return f"LLM judge skipped: the environment variable {config.api_key_env} is not set; offline factors only."
    try:
        client = anthropic.Anthropic(api_key=api_key, base_url=config.base_url, timeout=TIMEOUT, max_retries=1)
        message = client.messages.create(
            model=config.llm_model,
            max_tokens=400,
            system=SYSTEM,
            messages=[{"role": "user", "content": _prompt(ticket)}],
        )
        text = "".join(block.text for block in message.content if block.type == "text")
        cost = call_cost(config.llm_model, message.usage.input_tokens, message.usage.output_tokens)
        _charge(folder, cost)
        score, reason, missing = parse_verdict(text, weights)
        if config.llm_cache:
            _store(folder, key, text, cost)
    except anthropic.APIError as exc:
        return f"LLM judge failed ({exc.__class__.__name__}: {str(exc)[:160]}); offline factors only."
    except JudgeError as exc:
        return f"LLM judge gave an unusable answer ({exc}); offline factors only."
    except Exception as exc:
        return f"LLM judge failed unexpectedly ({exc.__class__.__name__}); offline factors only."
    return _assessment(config, score, reason, missing)


def _assessment(config: ScoringConfig, score: float, reason: str, missing: list[str]) -> Assessment:
    factor = Factor(name="llm", value=round(score, 3), weight=config.llm_weight, reason=f"LLM judge: {reason}")
    return Assessment(factor, tuple(f"{m.rstrip('.')} (LLM judge)." for m in missing[:3]))
