"""The text factors and the decision on small hand-written tickets, as a product owner would read them."""

from __future__ import annotations

import pytest

from tracker_bridge.config import ScoringConfig
from tracker_bridge.models import Score, Ticket
from tracker_bridge.scoring import score_ticket
from tracker_bridge.scoring.blend import calibrate
from tracker_bridge.scoring.model import load_weights

VAGUE_EPIC = Ticket(
    ref="PAY-1",
    tracker="jira",
    title="Epic: rethink the billing experience",
    description=(
        "We should explore how billing could work better. Maybe investigate a new invoicing flow, think about "
        "discounts, and perhaps redesign the settings page.\n\n"
        "- [ ] invoices\n- [ ] discounts\n- [ ] settings page\n- [ ] e-mails\n"
    ),
)

PRECISE_BUG = Ticket(
    ref="PAY-2",
    tracker="jira",
    title="`invoice_total()` raises ZeroDivisionError for zero-quantity lines",
    description=(
        "Steps to reproduce:\n\n"
        "```python\nfrom billing.invoice import invoice_total\n"
        "invoice_total([Line(qty=0, price=5)], discount=0.1)\n```\n\n"
        "Traceback (most recent call last):\n"
        '  File "billing/invoice.py", line 12, in invoice_total\n'
        "ZeroDivisionError: division by zero\n\n"
        "Expected: returns 0. Actual: raises ZeroDivisionError.\n"
        "The failing test is tests/test_invoice.py::test_zero_quantity.\n\n"
        "Acceptance criteria: `invoice_total` returns 0 for zero-quantity lines and tests/test_invoice.py passes."
    ),
)

MIGRATION = Ticket(
    ref="PAY-3",
    tracker="jira",
    title="Add a currency column to `Invoice`",
    description=(
        "Add a `currency` field to `Invoice` with a schema migration in "
        "billing/migrations/0007_invoice_currency.py, default 'EUR'.\n\n"
        "Acceptance criteria: existing invoices read back with currency 'EUR'."
    ),
)


def factor(score: Score, name: str) -> tuple[float, str]:
    f = next(f for f in score.factors if f.name == name)
    return f.value, f.reason


def test_vague_epic_is_declined_and_told_to_add_acceptance_criteria() -> None:
    score = score_ticket(VAGUE_EPIC, ScoringConfig())

    assert not score.accepted
    assert any("acceptance criteria" in s.lower() for s in score.suggestions)
    assert any("split" in s.lower() for s in score.suggestions)
    kind, kind_reason = factor(score, "kind")
    assert kind < 0.5
    assert "epic" in kind_reason.lower()
    clarity, clarity_reason = factor(score, "clarity")
    assert clarity < factor(score_ticket(PRECISE_BUG, ScoringConfig()), "clarity")[0]
    assert "hedging wording" in clarity_reason
    assert any("Replace the open wording" in s for s in score.suggestions)


def test_precise_bug_with_failing_test_is_accepted_with_nothing_to_add() -> None:
    score = score_ticket(PRECISE_BUG, ScoringConfig())

    assert score.accepted
    assert score.suggestions == []
    clarity, reason = factor(score, "clarity")
    assert clarity >= 0.7
    assert "reproduction steps or code" in reason
    scope, scope_reason = factor(score, "scope")
    assert scope >= 0.55
    assert "the title names the code" in scope_reason


def test_migration_ticket_risk_names_the_migration_path() -> None:
    score = score_ticket(MIGRATION, ScoringConfig())

    risk, reason = factor(score, "risk")
    assert risk < 1.0
    assert "billing/migrations/0007_invoice_currency.py" in reason
    assert "migration" in reason.lower()
    # Same ticket without the migration scores higher: the risk is what costs it.
    plain = MIGRATION.model_copy(
        update={"description": "Add a `currency` field to `Invoice`, default 'EUR'.\n\nAcceptance criteria: as above."}
    )
    assert score_ticket(plain, ScoringConfig()).value > score.value


@pytest.mark.parametrize(
    ("title", "marker"),
    [
        ("Spike: evaluate message queues for notifications", "spike"),
        ("Investigate why exports are slow", "spike"),
        ("RFC: should we split the API into services?", "design question"),
    ],
)
def test_spikes_and_design_questions_are_not_for_the_agent(title: str, marker: str) -> None:
    score = score_ticket(Ticket(ref="X-1", tracker="t", title=title, description="See title."), ScoringConfig())

    kind, reason = factor(score, "kind")
    assert kind < 0.5
    assert marker in reason
    assert not score.accepted


def test_hedging_and_open_questions_lower_clarity_and_are_named() -> None:
    decided = Ticket(
        ref="X-2", tracker="t", title="`export_csv()` writes dates as US format", description="Use ISO 8601 dates."
    )
    hedged = decided.model_copy(update={"description": "Maybe use ISO 8601 dates, not sure."})
    asking = decided.model_copy(update={"description": "Use ISO 8601 dates? Or the user's locale?"})
    strict = ScoringConfig(threshold=1.0)  # declined, so the suggestions are listed
    d, h, q = score_ticket(decided, strict), score_ticket(hedged, strict), score_ticket(asking, strict)

    assert factor(h, "clarity")[0] < factor(d, "clarity")[0]
    assert factor(q, "clarity")[0] < factor(d, "clarity")[0]
    assert any("Replace the open wording ('maybe', 'not sure')" in s for s in h.suggestions)
    assert any("Answer the 2 open questions" in s for s in q.suggestions)
    assert not any("open question" in s or "open wording" in s for s in d.suggestions)


def test_an_epic_or_spike_is_capped_however_precise_its_text() -> None:
    spike = PRECISE_BUG.model_copy(update={"title": "Spike: " + PRECISE_BUG.title})
    score = score_ticket(spike, ScoringConfig())

    assert score_ticket(PRECISE_BUG, ScoringConfig()).accepted
    assert score.value <= 0.3
    assert not score.accepted
    assert score.reasons[0].startswith("Score capped at 0.30")


def test_many_asks_and_many_names_narrow_the_scope() -> None:
    one = Ticket(ref="X-3", tracker="t", title="`parse_amount()` rejects '1,5'", description="Accept a decimal comma.")
    many_names = ", ".join(f"`Module{i}.handler{i}()`" for i in range(20))
    many = Ticket(
        ref="X-4",
        tracker="t",
        title="Rework amounts everywhere",
        description=f"Change {many_names}. Also update the reports. Additionally fix the exports. Also the API.",
    )
    s_one, s_many = score_ticket(one, ScoringConfig()), score_ticket(many, ScoringConfig(threshold=1.0))

    assert factor(s_many, "scope")[0] < factor(s_one, "scope")[0] - 0.15
    assert "many functions and files named" in factor(s_many, "scope")[1]
    assert "several asks in one ticket" in factor(s_many, "clarity")[1]
    assert any(s.startswith("Split the ticket") for s in s_many.suggestions)
    assert any(s.startswith("Narrow the change") for s in s_many.suggestions)


def test_unnamed_change_is_told_to_name_the_function() -> None:
    vague = Ticket(ref="X-5", tracker="t", title="Totals are wrong sometimes", description="Please fix the totals.")
    score = score_ticket(vague, ScoringConfig())

    assert not score.accepted
    assert any("Name the function" in s for s in score.suggestions)


def test_threshold_comes_from_configuration_and_decides() -> None:
    strict, lenient = ScoringConfig(threshold=0.95), ScoringConfig(threshold=0.1)
    s_strict, s_lenient = score_ticket(PRECISE_BUG, strict), score_ticket(PRECISE_BUG, lenient)

    assert s_strict.threshold == 0.95 and s_lenient.threshold == 0.1
    assert s_strict.value == s_lenient.value
    assert not s_strict.accepted and s_strict.suggestions
    assert s_lenient.accepted


def test_scoring_is_deterministic_and_in_range() -> None:
    tickets = [VAGUE_EPIC, PRECISE_BUG, MIGRATION, Ticket(ref="E", tracker="t", title="", description="")]
    for ticket in tickets:
        a, b = score_ticket(ticket, ScoringConfig()), score_ticket(ticket, ScoringConfig())
        assert a == b
        assert 0.0 <= a.value <= 1.0
        assert all(0.0 <= f.value <= 1.0 for f in a.factors)
        assert a.reasons


def test_issue_template_comments_are_not_read_as_the_ticket() -> None:
    template = "<!-- Do not paste secrets, passwords or API keys. Maybe add a traceback? -->\n"
    plain = Ticket(ref="T-1", tracker="t", title="`slugify()` drops digits", description="`slugify('a1')` gives 'a'.")
    templated = plain.model_copy(update={"description": template + plain.description})

    assert score_ticket(templated, ScoringConfig()).value == score_ticket(plain, ScoringConfig()).value


def test_calibration_puts_the_default_threshold_at_the_knot_and_keeps_order() -> None:
    points = [i / 20 for i in range(21)]
    mapped = [calibrate(p) for p in points]

    assert mapped == sorted(mapped)
    assert calibrate(0.0) == 0.0 and calibrate(1.0) == 1.0
    assert calibrate(load_weights().knot, load_weights().knot) == pytest.approx(ScoringConfig().threshold)
