"""The whole journey on the embedded default: local Markdown tickets, local git, the `command` agent backend."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.journey_helpers import Journey, make_journey
from tracker_bridge.demo import GOOD_TICKET


@pytest.fixture
def journey(tmp_path: Path, state_url: str) -> Journey:
    """The demo's journey, once with the state in SQLite and once in PostgreSQL (the `state_url` fixture)."""
    return make_journey(tmp_path, state_url=state_url)


def test_good_ticket_reaches_review_with_a_passing_branch_and_vague_one_is_declined(journey: Journey) -> None:
    journey.run_once()

    assert journey.column("DEMO-1") == "In Review"
    assert journey.column("DEMO-2") == "Needs Refinement"
    # One pushed agent branch, and its tests pass on a fresh clone.
    branches = journey.agent_branches()
    assert branches == ["agent/DEMO-1-slugify-keeps-upper-case-and-repeated"]
    check = journey.root / "check"
    subprocess.run(["git", "clone", "-q", "-b", branches[0], str(journey.repo), str(check)], check=True)
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=check)
    assert tests.returncode == 0
    # The base branch still fails: the fix is only on the agent's branch, waiting for review.
    base = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=journey.repo)
    assert base.returncode != 0
    # One status comment per ticket, saying what happened.
    assert journey.comment_count("DEMO-1") == 1
    assert journey.comment_count("DEMO-2") == 1
    good = journey.ticket("DEMO-1")
    assert good.comment is not None and "pull request open for review" in good.comment
    assert good.meta["pull_request"].endswith(branches[0])
    vague = journey.ticket("DEMO-2")
    assert vague.comment is not None and "declined" in vague.comment
    assert "acceptance criteria" in vague.comment.lower()


def test_merge_moves_to_done_and_another_cycle_changes_nothing(journey: Journey) -> None:
    journey.run_once()
    [branch] = journey.agent_branches()
    journey.merge(branch)

    journey.run_once()
    assert journey.column("DEMO-1") == "Done"
    assert "merged" in (journey.ticket("DEMO-1").comment or "")

    before = journey.snapshot()
    status_before = journey.status()
    journey.run_once()
    assert journey.snapshot() == before
    assert [(s["ref"], s["stage"]) for s in journey.status()] == [(s["ref"], s["stage"]) for s in status_before]
    assert journey.comment_count("DEMO-1") == 1


def test_branch_deleted_unmerged_is_a_closed_pull_request(journey: Journey) -> None:
    journey.run_once()
    [branch] = journey.agent_branches()
    subprocess.run(["git", "-C", str(journey.repo), "branch", "-q", "-D", branch], check=True)
    journey.run_once()
    assert journey.column("DEMO-1") == "Needs Human"
    assert "closed without merging" in (journey.ticket("DEMO-1").comment or "")


def test_status_json_prints_the_contract_fields(journey: Journey) -> None:
    journey.run_once()
    rows = {r["ref"]: r for r in journey.status()}
    assert set(rows) == {"DEMO-1", "DEMO-2"}
    for row in rows.values():
        assert {"ref", "tracker", "stage", "column", "score", "pr_url", "cost_usd", "updated_at"} <= set(row)
    assert rows["DEMO-1"]["stage"] == "review" and rows["DEMO-1"]["column"] == "In Review"
    assert rows["DEMO-1"]["pr_url"].endswith("agent/DEMO-1-slugify-keeps-upper-case-and-repeated")
    assert rows["DEMO-2"]["stage"] == "declined" and rows["DEMO-2"]["pr_url"] is None
    assert 0.0 <= rows["DEMO-2"]["score"] < 0.6 <= rows["DEMO-1"]["score"]


def test_agent_that_changes_nothing_fails_the_ticket_with_the_reason(tmp_path: Path, state_url: str) -> None:
    journey = make_journey(tmp_path, state_url=state_url, tickets={"DEMO-1": GOOD_TICKET}, agent_command="true")
    journey.run_once()
    assert journey.column("DEMO-1") == "Needs Human"
    assert "without changing anything" in (journey.ticket("DEMO-1").comment or "")
    assert journey.agent_branches() == []


def test_change_that_fails_the_tests_is_not_proposed(tmp_path: Path, state_url: str) -> None:
    journey = make_journey(
        tmp_path,
        state_url=state_url,
        tickets={"DEMO-1": GOOD_TICKET},
        agent_command="echo '# touched' >> textkit/slug.py",
    )
    journey.run_once()
    assert journey.column("DEMO-1") == "Needs Human"
    comment = journey.ticket("DEMO-1").comment or ""
    assert "failed after the agent's change" in comment
    assert "test_slugify_lowercases_and_collapses" in comment  # the failing test output is shown
    assert journey.agent_branches() == [] and journey.pull_requests() == []


def test_removing_the_label_from_a_queued_ticket_cancels_it(tmp_path: Path, state_url: str) -> None:
    # max_concurrent_runs = 1 and two good tickets: the second waits in the queue.
    second = GOOD_TICKET.replace("title: slugify() keeps upper case", "title: slugify() also keeps upper case")
    journey = make_journey(tmp_path, state_url=state_url, tickets={"DEMO-1": GOOD_TICKET, "DEMO-3": second})
    text = journey.config.read_text().replace("max_concurrent_runs = 2", "max_concurrent_runs = 1")
    journey.config.write_text(text)
    # A slow agent keeps DEMO-1 running while the cycle ends with DEMO-3 still queued.
    from tracker_bridge.config import load_settings
    from tracker_bridge.engine import build_engine
    from tracker_bridge.store import Store

    settings = load_settings(journey.config)
    store = Store(settings.state_url)
    engine = build_engine(settings, store)
    engine.cycle()
    queued = [r.ref for r in store.tickets() if r.stage == "queued"]
    assert len(queued) == 1
    waiting = queued[0]
    assert journey.column(waiting) == "Agent"
    path = journey.tickets / f"{waiting}.md"
    text = path.read_text()
    assert "labels: [agent-ready]" in text  # the rewrite kept the ticket's own style
    path.write_text(text.replace("labels: [agent-ready]", "labels: []"))
    engine.wait()
    engine.cycle()
    engine.wait()
    row = store.ticket("demo", waiting)
    assert row is not None and row.stage == "cancelled"
    assert "trigger was removed" in (journey.ticket(waiting).comment or "")
    engine.shutdown()
    store.close()


def test_a_rejected_push_is_tried_again_without_running_the_agent_again(journey: Journey) -> None:
    hook = journey.repo / ".git" / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'push refused: repository is read-only for maintenance' >&2\nexit 1\n")
    hook.chmod(0o755)
    journey.run_once()
    assert journey.column("DEMO-1") == "In Progress"
    comment = journey.ticket("DEMO-1").comment or ""
    assert "publishing it failed" in comment and "read-only for maintenance" in comment
    assert journey.agent_branches() == []

    hook.unlink()
    journey.run_once()
    assert journey.column("DEMO-1") == "In Review"
    assert len(journey.agent_branches()) == 1 and len(journey.pull_requests()) == 1
    status = {r["ref"]: r for r in journey.status()}
    assert status["DEMO-1"]["stage"] == "review"
    from tracker_bridge.config import load_settings
    from tracker_bridge.store import Store

    store = Store(load_settings(journey.config).state_url)
    row = store.ticket("demo", "DEMO-1")
    assert row is not None and len(store.runs(row.id)) == 1  # the agent ran once; only the publish was repeated


def test_a_push_refused_every_time_fails_the_ticket_after_three_tries(tmp_path: Path) -> None:
    # Publishing is retried with backoff over a long window by default; three quick tries make the test short.
    journey = make_journey(tmp_path)
    text = journey.config.read_text()
    quick = "max_concurrent_runs = 2\nretry_attempts = 3\nretry_backoff = 0"
    journey.config.write_text(text.replace("max_concurrent_runs = 2", quick))
    hook = journey.repo / ".git" / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'push refused by policy' >&2\nexit 1\n")
    hook.chmod(0o755)
    for _ in range(3):
        journey.run_once()
    assert journey.column("DEMO-1") == "Needs Human"
    assert "could not be pushed or proposed" in (journey.ticket("DEMO-1").comment or "")
    assert journey.comment_count("DEMO-1") == 1


def test_a_label_spelt_with_other_capitals_and_spaces_is_taken(tmp_path: Path) -> None:
    ticket = GOOD_TICKET.replace("labels: [agent-ready]", 'labels: [" Agent-Ready "]')
    assert '" Agent-Ready "' in ticket
    journey = make_journey(tmp_path, tickets={"DEMO-1": ticket})
    journey.run_once()
    assert journey.column("DEMO-1") == "In Review"
