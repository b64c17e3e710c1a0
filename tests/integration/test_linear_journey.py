"""The whole journey on Linear: the daemon (`run --once`) against the Linear simulator executing the real schema.

A well-scoped issue labelled by an allowed person goes In Progress -> In Review with the pull request attached ->
Done after the merge; a vague one goes to Needs Refinement with the reasons; a label added by someone not in
`allowed_actors` is ignored and the status comment says so; an issue moved to the "Agent" state is taken like a
labelled one. Each issue has exactly one status comment throughout, and every GraphQL document the daemon sent is
one of the connector's named documents. The code host is local git: `git merge` of the agent's branch is the merge.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.journey_helpers import (
    demo_ticket_parts,
    merge_the_agent_branch,
    run_once,
    sample_repo_and_agent,
    write_service_config,
)
from tests.sims.linear import Issue, LinearSim, Workspace, seed
from tracker_bridge.demo import GOOD_TICKET, VAGUE_TICKET
from tracker_bridge_connectors.linear.documents import all_documents
from tracker_bridge_connectors.linear.marker import MARKER_URL

TOKEN_ENV = "TB_JOURNEY_LINEAR_KEY"


@pytest.fixture
def ws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    monkeypatch.setenv(TOKEN_ENV, "lin_api_bot")
    with LinearSim() as sim:
        yield seed(sim)
        refused = [c for c in sim.calls if c.status != 200 or c.error_codes]
        assert refused == [], refused
        sent = {c.query for c in sim.calls}
        assert sent <= {d.text for d in all_documents().values()}


def write_config(tmp_path: Path, sim: LinearSim) -> tuple[Path, Path]:
    """(the sample repository, the config) of a journey on `sim`, with the demo's stand-in agent."""
    repo, agent = sample_repo_and_agent(tmp_path)
    tracker = f"""
[[trackers]]
name = "eng"
kind = "linear"
url = "{sim.url}"
token_env = "{TOKEN_ENV}"
query = "ENG"
repo = "textkit"
"""
    return repo, write_service_config(tmp_path, tracker, repo=repo, agent=agent, allowed_actors=["alice@acme.dev"])


def moves(issue: Issue) -> list[str]:
    return [h.toState.name for h in issue.history_list if h.toState is not None]


def one_status_comment(ws: Workspace, issue: Issue) -> str:
    ours = [c for c in issue.comment_list if c.user is ws.sim.bot]
    assert len(ours) == 1, [c.body for c in ours]
    assert MARKER_URL in ours[0].body
    return ours[0].body


@pytest.mark.slow
def test_the_whole_journey_on_linear(tmp_path: Path, ws: Workspace) -> None:
    sim = ws.sim
    repo, config = write_config(tmp_path, sim)

    title, description = demo_ticket_parts(GOOD_TICKET)
    good = ws.issue(title, description, state="Backlog", labels=("bug",))
    sim.label(good, "agent-ready", ws.alice)
    vague_title, vague_description = demo_ticket_parts(VAGUE_TICKET)
    vague = ws.issue(vague_title, vague_description, state="Backlog")
    sim.label(vague, "agent-ready", ws.alice)
    sneaky = ws.issue(title + " (again)", description, state="Backlog")
    sim.label(sneaky, "agent-ready", ws.mallory)

    run_once(config)

    # The good issue: taken, run, pull request opened and attached, In Review; its other labels untouched.
    assert good.state.name == "In Review"
    # (queued = "Agent" may come first: the labelled issue waits in the Agent state for a free run slot)
    assert moves(good) in (["In Progress", "In Review"], ["Agent", "In Progress", "In Review"])
    assert len(good.attachment_list) == 1 and "agent/" in good.attachment_list[0].url + good.attachment_list[0].title
    assert "review" in one_status_comment(ws, good).lower()
    assert "bug" in [sim.label_by_id(i).name for i in good.label_ids]

    # The vague issue: declined with the score's reasons.
    assert vague.state.name == "Needs Refinement"
    text = one_status_comment(ws, vague)
    assert "declined" in text.lower() and "0." in text

    # The label from someone not allowed: ignored, and said so; the issue does not move.
    assert sneaky.state.name == "Backlog" and moves(sneaky) == []
    assert "allowed" in one_status_comment(ws, sneaky).lower()

    # An idle cycle changes nothing and adds no comment.
    run_once(config)
    assert good.state.name == "In Review" and len(good.attachment_list) == 1
    for issue in (good, vague, sneaky):
        one_status_comment(ws, issue)

    # The merge: the agent's branch into main in the local repository.
    merge_the_agent_branch(repo)
    run_once(config)

    assert good.state.name == "Done"
    assert moves(good)[-3:] == ["In Progress", "In Review", "Done"] and len(moves(good)) <= 4
    assert "done" in one_status_comment(ws, good).lower()
    assert len(good.attachment_list) == 1
    assert vague.state.name == "Needs Refinement" and sneaky.state.name == "Backlog"


@pytest.mark.slow
def test_an_issue_moved_to_the_agent_state_is_taken(tmp_path: Path, ws: Workspace) -> None:
    sim = ws.sim
    _, config = write_config(tmp_path, sim)
    issue = ws.issue(*demo_ticket_parts(VAGUE_TICKET), state="Backlog")
    sim.move(issue, "Agent", ws.alice)

    run_once(config)

    assert issue.state.name == "Needs Refinement"
    assert moves(issue) == ["Agent", "Needs Refinement"]
    assert "declined" in one_status_comment(ws, issue).lower()


def test_an_idle_daemon_cycle_is_one_request(tmp_path: Path, ws: Workspace) -> None:
    from tracker_bridge.config import load_settings
    from tracker_bridge.engine import build_engine
    from tracker_bridge.store import Store

    _, config = write_config(tmp_path, ws.sim)
    settings = load_settings(config)
    ws.sim.label(ws.issue(*demo_ticket_parts(VAGUE_TICKET), state="Backlog"), "agent-ready", ws.alice)
    store = Store(settings.state_url)
    engine = build_engine(settings, store)
    try:
        for _ in range(2):  # the decline, then the poll that sees the daemon's own changes once
            engine.cycle()
            engine.wait()
        ws.sim.reset_calls()
        engine.cycle()
        engine.wait()
        assert ws.sim.operations == ["PollIssues"]
        assert ws.sim.calls[0].complexity < 400
    finally:
        engine.shutdown()
        store.close()


def test_a_label_spelt_with_other_capitals_is_taken(tmp_path: Path, ws: Workspace) -> None:
    _, config = write_config(tmp_path, ws.sim)
    title, description = demo_ticket_parts(GOOD_TICKET)
    issue = ws.issue(title, description, state="Backlog")
    try:
        ws.sim.label_named("agent-ready").name = "Agent-Ready"  # the team spells it so; [trigger] label = "agent-ready"
    except KeyError:
        ws.sim.add_label_def("Agent-Ready")
    ws.sim.label(issue, "Agent-Ready", ws.alice)
    run_once(config)
    assert issue.state.name == "In Review"
