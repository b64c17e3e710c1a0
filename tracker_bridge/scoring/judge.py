"""The optional LLM judge: one Messages API call that rates the ticket, blended in as one more factor.

Off by default (`[scoring] llm = false`). It uses the `anthropic` SDK with `[scoring] base_url` and the key from the
environment variable named by `api_key_env`. Whatever goes wrong (no key, network, an answer that is not the JSON
asked for) it returns a note instead of a factor, and the score stands on the offline factors alone.
"""

from __future__ import annotations

import json
import re

from tracker_bridge import secrets
from tracker_bridge.config import ScoringConfig
from tracker_bridge.models import Factor, Ticket
from tracker_bridge.scoring.factors import Assessment

TIMEOUT = 30.0  # seconds; a judge that hangs must not hold up the poll loop
MAX_TICKET_CHARS = 12_000

SYSTEM = (
    "You triage tickets for an autonomous coding agent that works alone in the repository, runs the tests and "
    "opens a pull request. Judge how likely the agent is to finish this ticket correctly without asking anyone. "
    "Small, precise, testable changes score high; vague, broad, risky or design work scores low. "
    'Answer with JSON only: {"score": <number 0..1>, "reason": "<one sentence>", '
    '"missing": ["<what to add to the ticket>", ...]}'
)

_JSON_OBJECT = re.compile(r"\{.*\}", re.S)


class JudgeError(Exception):
    pass


def _prompt(ticket: Ticket) -> str:
    body = ticket.description[:MAX_TICKET_CHARS]
    comments = "\n\n".join(ticket.comments)[:2000]
    return f"Ticket {ticket.ref}: {ticket.title}\n\n{body}" + (f"\n\nComments:\n{comments}" if comments else "")


def parse_verdict(text: str) -> tuple[float, str, list[str]]:
    """(score, reason, missing) from the model's answer; raises JudgeError when it is not what was asked."""
    match = _JSON_OBJECT.search(text)
    if not match:
        raise JudgeError("the answer held no JSON object")
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError as exc:
        raise JudgeError(f"the answer was not valid JSON ({exc.msg})") from exc
    score = data.get("score") if isinstance(data, dict) else None
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0.0 <= float(score) <= 1.0:
        raise JudgeError(f"the answer's score {score!r} is not a number between 0 and 1")
    reason = str(data.get("reason") or "no reason given").strip()
    missing = [str(m).strip() for m in data.get("missing") or [] if str(m).strip()]
    return float(score), reason, missing


def judge(ticket: Ticket, config: ScoringConfig) -> Assessment | str:
    """The judge's factor, or a note saying why the score fell back to the offline factors."""
    # Imported here: the SDK takes seconds to import, and text-only scoring (the default) never needs it.
    import anthropic

    key = secrets.get(config.api_key_env)
    if not key:
        return f"LLM judge skipped: the environment variable {config.api_key_env} is not set; offline factors only."
    try:
        client = anthropic.Anthropic(api_key=key, base_url=config.base_url, timeout=TIMEOUT, max_retries=1)
        message = client.messages.create(
            model=config.llm_model,
            max_tokens=400,
            system=SYSTEM,
            messages=[{"role": "user", "content": _prompt(ticket)}],
        )
        text = "".join(block.text for block in message.content if block.type == "text")
        score, reason, missing = parse_verdict(text)
    except anthropic.APIError as exc:
        return f"LLM judge failed ({exc.__class__.__name__}: {str(exc)[:160]}); offline factors only."
    except JudgeError as exc:
        return f"LLM judge gave an unusable answer ({exc}); offline factors only."
    except Exception as exc:
        return f"LLM judge failed unexpectedly ({exc.__class__.__name__}); offline factors only."
    factor = Factor(name="llm", value=round(score, 3), weight=config.llm_weight, reason=f"LLM judge: {reason}")
    return Assessment(factor, tuple(f"{m.rstrip('.')} (LLM judge)." for m in missing[:3]))
