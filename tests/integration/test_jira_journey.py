"""The whole journey on Jira: the daemon (`run --once`, real `jira` package) against the Jira simulator.

A well-scoped ticket labelled by an allowed person goes In Progress -> In Review with the pull request linked ->
Done after the merge; a vague one goes to Needs Refinement with the reasons; a label added by someone not in
`allowed_actors` is ignored and the status comment says so. Each ticket has exactly one status comment throughout.
The code host is local git: the agent's branch is the pull request, `git merge` into main is the merge.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.journey_helpers import (
    demo_ticket_parts,
    merge_the_agent_branch,
    run_once,
    sample_repo_and_agent,
    write_service_config,
)
from tests.sims.jira import JiraSim, User
from tracker_bridge.cli import app
from tracker_bridge.demo import GOOD_TICKET, VAGUE_TICKET

TOKEN_ENV = "TB_JOURNEY_JIRA_TOKEN"


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[JiraSim]:
    monkeypatch.setenv(TOKEN_ENV, "s3cret")
    with JiraSim() as s:
        s.add_project("PAY")
        s.add_status("Backlog")
        yield s
        assert s.rejected == [], s.rejected


def write_config(tmp_path: Path, sim: JiraSim, state_url: str = "sqlite:///state.db") -> tuple[Path, Path]:
    """(the sample repository, the config) of a journey on `sim`, with the demo's stand-in agent."""
    repo, agent = sample_repo_and_agent(tmp_path)
    tracker = f"""
[[trackers]]
name = "pay"
kind = "jira"
url = "{sim.url}"
user = "bot@acme.test"
token_env = "{TOKEN_ENV}"
query = "project = PAY"
repo = "textkit"
"""
    return repo, write_service_config(
        tmp_path, tracker, repo=repo, agent=agent, allowed_actors=["alice@acme.test"], state_url=state_url
    )


def status_history(sim: JiraSim, key: str) -> list[str]:
    return [item["toString"] for h in sim.issues[key].changelog for item in h["items"] if item["field"] == "status"]


def one_status_comment(sim: JiraSim, key: str) -> str:
    comments = sim.status_comments(key)
    assert len(comments) == 1, [sim.comment_text(c) for c in comments]
    assert sim.bot_comments(key) == comments  # and nothing else from the bot
    return sim.comment_text(comments[0])


@pytest.mark.slow
def test_the_whole_journey_on_jira(tmp_path: Path, sim: JiraSim, state_url: str) -> None:
    # Once with the state in SQLite, once in PostgreSQL (the `state_url` fixture).
    repo, config = write_config(tmp_path, sim, state_url)
    alice = sim.add_user("alice", "alice@acme.test", "Alice Lead")
    mallory: User = sim.add_user("mallory", "mallory@acme.test", "Mallory")

    title, description = demo_ticket_parts(GOOD_TICKET)
    good = sim.create_issue("PAY", title, description, status="Backlog").key
    sim.add_label(good, "agent-ready", by=alice)
    vague_title, vague_description = demo_ticket_parts(VAGUE_TICKET)
    vague = sim.create_issue("PAY", vague_title, vague_description, status="Backlog").key
    sim.add_label(vague, "agent-ready", by=alice)
    sneaky = sim.create_issue("PAY", title + " (again)", description, status="Backlog").key
    sim.add_label(sneaky, "agent-ready", by=mallory)

    doctor = CliRunner().invoke(app, ["doctor", "-c", str(config)])
    assert doctor.exit_code == 0, doctor.output
    run_once(config)

    # The good ticket: taken, run, pull request opened and linked, card In Review.
    assert sim.status_name(good) == "In Review"
    assert status_history(sim, good) == ["Agent", "In Progress", "In Review"]  # queued, running, review
    [link] = sim.issues[good].remote_links
    assert "agent/PAY-1-" in link["object"]["url"]
    text = one_status_comment(sim, good)
    assert "pull request open for review" in text and link["object"]["url"] in text
    assert sim.status_comments(good)[0].body["content"][0]["type"] == "heading"  # ADF, rendered by Jira

    # The vague ticket: declined with the score's reasons.
    assert sim.status_name(vague) == "Needs Refinement"
    text = one_status_comment(sim, vague)
    assert "declined" in text and "below the threshold" in text
    assert "acceptance criteria" in text.lower()  # the reasons, and what to add

    # The label from someone not allowed: ignored, and said so; the card does not move.
    assert sim.status_name(sneaky) == "Backlog"
    text = one_status_comment(sim, sneaky)
    assert "ignored" in text and "allowed_actors" in text

    # An idle cycle changes nothing and adds no comment.
    run_once(config)
    assert sim.status_name(good) == "In Review" and len(sim.issues[good].remote_links) == 1
    for key in (good, vague, sneaky):
        one_status_comment(sim, key)

    # The merge: the agent's branch into main in the local repository.
    merge_the_agent_branch(repo)
    run_once(config)

    assert sim.status_name(good) == "Done"
    assert status_history(sim, good) == ["Agent", "In Progress", "In Review", "Done"]
    assert "done" in one_status_comment(sim, good).lower()
    assert len(sim.issues[good].remote_links) == 1
    assert sim.status_name(vague) == "Needs Refinement" and sim.status_name(sneaky) == "Backlog"


def test_a_label_spelt_with_other_capitals_is_taken(tmp_path: Path, sim: JiraSim) -> None:
    _, config = write_config(tmp_path, sim)
    alice = sim.add_user("alice", "alice@acme.test", "Alice Lead")
    title, description = demo_ticket_parts(GOOD_TICKET)
    key = sim.create_issue("PAY", title, description, status="Backlog").key
    sim.add_label(key, "Agent-Ready", by=alice)  # [trigger] label = "agent-ready"
    run_once(config)
    assert status_history(sim, key)[-1] == "In Review"
