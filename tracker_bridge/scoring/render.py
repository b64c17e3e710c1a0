"""A Score as a compact Markdown block for the ticket's status comment."""

from __future__ import annotations

from tracker_bridge.models import Score


def _cell(text: str) -> str:
    # A pipe or a newline would break the table row.
    return text.replace("|", "\\|").replace("\n", " ").strip()


def render_score_markdown(score: Score) -> str:
    """Score and decision, a factor table (value, weight, why), and for a declined ticket what to add."""
    decision = "accepted for the agent" if score.accepted else "declined: needs refinement"
    mark = "✅" if score.accepted else "✋"
    lines = [f"{mark} **Suitability {score.value:.2f}** (threshold {score.threshold:.2f}): {decision}", ""]
    factor_reasons = {f"{f.name}: {f.reason}" for f in score.factors}
    notes = [r for r in score.reasons if r not in factor_reasons]
    for note in notes:
        lines.append(f"> {_cell(note)}")
    if notes:
        lines.append("")
    if score.factors:
        lines += ["| Factor | Value | Weight | Why |", "|---|---:|---:|---|"]
        lines += [f"| {f.name} | {f.value:.2f} | {f.weight:.2f} | {_cell(f.reason)} |" for f in score.factors]
    if not score.accepted and score.suggestions:
        lines += ["", "**What to add so the agent can take it:**"]
        lines += [f"- {_cell(s)}" for s in score.suggestions]
    return "\n".join(lines).rstrip() + "\n"
