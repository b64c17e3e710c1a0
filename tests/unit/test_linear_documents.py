"""Every GraphQL document the Linear connector sends is valid against Linear's official schema, and cheap."""

from __future__ import annotations

import graphql
import pytest

from tests.sims.graphql_exec import estimate_complexity
from tests.sims.linear import schema
from tracker_bridge_connectors.linear import documents
from tracker_bridge_connectors.linear.cursor import PollCursor
from tracker_bridge_connectors.linear.tracker import LinearTracker

ALL = documents.all_documents()


def test_the_package_keeps_its_documents_in_one_place() -> None:
    assert len(ALL) >= 14
    assert {"PollIssues", "MoveIssue", "AddLabel", "RemoveLabel", "CreateComment", "UpdateComment",
            "FindStatusComment", "AttachPullRequest", "IssueHistory", "TeamByKey"} <= set(ALL)


@pytest.mark.parametrize("name", sorted(ALL))
def test_document_validates_against_the_official_schema(name: str) -> None:
    doc = ALL[name]
    ast = graphql.parse(doc.text)
    assert graphql.validate(schema(), ast) == []
    ops = [d for d in ast.definitions if isinstance(d, graphql.OperationDefinitionNode)]
    assert len(ops) == 1 and ops[0].name is not None and ops[0].name.value == doc.name


@pytest.mark.parametrize("name", sorted(ALL))
def test_document_stays_far_below_linears_single_query_limit(name: str) -> None:
    # Linear refuses a query above 10,000 points; the hourly budget is 250,000, so every query is kept small.
    cost = estimate_complexity(schema(), graphql.parse(ALL[name].text), {"first": 10})  # the default page size
    assert cost < 1000, f"{name} costs {cost} points"


def test_the_largest_poll_page_allowed_is_still_accepted_by_linear() -> None:
    cost = estimate_complexity(schema(), graphql.parse(documents.POLL_ISSUES.text), {"first": 100})
    assert cost < 10_000


@pytest.mark.parametrize("cursor", [
    None,
    PollCursor("2026-01-02T03:04:05.678Z"),
    PollCursor("2026-01-02T03:04:05.678Z", {"3f1c6a0e-0000-4000-8000-000000000001": "2026-01-02T03:04:05.678Z"}),
])
def test_the_poll_filter_is_a_valid_issue_filter(cursor: PollCursor | None) -> None:
    tracker = LinearTracker.__new__(LinearTracker)
    tracker.team_key = "ENG"
    from tracker_bridge.protocols import Trigger

    tracker.trigger = Trigger("agent-ready", "Agent")
    tracker.poll_overlap = 10.0
    # Executing with no resolvers still coerces the variables against the schema's input types first.
    result = graphql.execute_sync(
        schema(),
        graphql.parse(documents.POLL_ISSUES.text),
        variable_values={"filter": tracker.poll_filter(cursor), "first": 10, "after": None},
    )
    bad_variables = [e.message for e in result.errors or () if e.message.startswith("Variable")]
    assert bad_variables == []


def test_a_wrong_filter_is_caught_by_the_same_check() -> None:
    result = graphql.execute_sync(
        schema(),
        graphql.parse(documents.POLL_ISSUES.text),
        variable_values={"filter": {"team": {"keys": {"eq": "ENG"}}}, "first": 10},
    )
    assert any(e.message.startswith("Variable") for e in result.errors or ())


def test_no_module_of_the_package_carries_graphql_outside_documents_py() -> None:
    import re
    from pathlib import Path

    package = Path(documents.__file__).parent
    operation = re.compile(r"^\s*(query|mutation|subscription|fragment)\s+\w+", re.M)
    stray = [p.name for p in package.glob("*.py") if p.name != "documents.py" and operation.search(p.read_text())]
    assert stray == []
