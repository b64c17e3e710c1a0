"""The Markdown block the status comment embeds."""

from __future__ import annotations

from tracker_bridge.config import ScoringConfig
from tracker_bridge.models import Factor, Score, Ticket
from tracker_bridge.scoring import render_score_markdown, score_ticket


def test_declined_ticket_shows_score_decision_table_and_what_to_add() -> None:
    ticket = Ticket(ref="PAY-9", tracker="jira", title="Improve billing", description="Maybe make it nicer?")
    score = score_ticket(ticket, ScoringConfig())
    md = render_score_markdown(score)

    assert f"**Suitability {score.value:.2f}** (threshold 0.60)" in md
    assert "declined" in md
    assert "| Factor | Value | Weight | Why |" in md
    for f in score.factors:
        assert f"| {f.name} | {f.value:.2f} | {f.weight:.2f} |" in md
    assert "**What to add so the agent can take it:**" in md
    for s in score.suggestions:
        assert f"- {s}" in md


def test_accepted_ticket_has_no_what_to_add_section() -> None:
    score = Score(
        value=0.8,
        threshold=0.6,
        factors=[Factor(name="scope", value=0.9, weight=0.3, reason="Focused scope.")],
        reasons=["scope: Focused scope."],
    )
    md = render_score_markdown(score)

    assert "accepted" in md
    assert "What to add" not in md


def test_pipes_and_newlines_in_reasons_do_not_break_the_table() -> None:
    score = Score(
        value=0.2,
        threshold=0.6,
        factors=[Factor(name="clarity", value=0.2, weight=0.3, reason="names `a | b`\nand more")],
        reasons=["LLM judge failed (APIConnectionError); offline factors only.", "clarity: names `a | b`\nand more"],
        suggestions=["Add acceptance criteria."],
    )
    md = render_score_markdown(score)
    row = next(line for line in md.splitlines() if line.startswith("| clarity"))

    assert row.count(" | ") == 3  # four cells: the escaped pipe is not a separator
    assert "a \\| b" in row
    # Notes that are not a factor's reason (here the judge's fallback) are shown above the table.
    assert "> LLM judge failed (APIConnectionError); offline factors only." in md
