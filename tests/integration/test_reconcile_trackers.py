"""Issue 13 on the tracker simulators: the engine's cycle against GitLab (REST) and Linear (GraphQL) with a real
`command` agent that works for two minutes. A person closes the issue, removes the trigger label or moves the card to
Done while it works: the next cycle kills the agent's process, nothing is pushed or proposed, and the card stays
where the person put it. The cycle is driven in-process (as `run` does every poll interval), so "within one poll
interval" is "by the next cycle"."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.agent_fixtures import make_repo
from tests.integration.test_daemon_signals import SLOW_AGENT, alive
from tests.journey_helpers import (
    CALC_TICKET,
    CALC_TITLE,
    demo_ticket_parts,
    sample_repo_and_agent,
    write_hosted_config,
    write_service_config,
)
from tests.processes import until
from tests.sims.git_http import GitHttpServer
from tests.sims.gitlab import BOT_TOKEN, GitLabSim, Issue, World, make_world
from tests.sims.linear import LinearSim, Workspace, seed
from tracker_bridge.config import load_settings
from tracker_bridge.demo import GOOD_TICKET
from tracker_bridge.engine import Engine, build_engine
from tracker_bridge.gitutil import git
from tracker_bridge.protocols import STATUS_MARKER
from tracker_bridge.store import Store

LINEAR_KEY = "TB_RECONCILE_LINEAR_KEY"


def slow_agent(tmp: Path) -> str:
    agent = tmp / "slow_agent.py"
    agent.write_text(SLOW_AGENT)
    return f"{sys.executable} {agent} {tmp / 'agent.pid'}"


def engine_for(config: Path) -> tuple[Engine, Store]:
    settings = load_settings(config)
    store = Store(settings.state_url)
    return build_engine(settings, store), store


def started_agent(engine: Engine, tmp: Path) -> int:
    engine.cycle()
    pid_file = tmp / "agent.pid"
    until(lambda: pid_file.exists() and pid_file.read_text() != "", 60, "the agent to start")
    return int(pid_file.read_text())


def stop_on_next_cycle(engine: Engine, store: Store, agent: int, ref: str) -> str:
    """Run the next cycle; the agent must be gone and the ticket cancelled. Returns the ticket's reason."""
    engine.cycle()
    until(lambda: not alive(agent), 10, "the agent's process to be killed")
    engine.wait()
    row = store.find_ticket(ref)
    assert row is not None and row.stage.value == "cancelled", row
    assert "nothing was pushed or proposed" in row.reason
    engine.cycle()  # and another cycle changes nothing
    engine.wait()
    return row.reason


# --- GitLab (REST) ----------------------------------------------------------------------------------------------------


@pytest.fixture
def gitlab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[World, GitHttpServer, Path]]:
    monkeypatch.setenv("GITLAB_TOKEN", BOT_TOKEN)
    with GitHttpServer(tmp_path / "git", token=BOT_TOKEN) as server, GitLabSim(server) as sim:
        world = make_world(sim)
        server.create_repo("acme/shop", seed=make_repo(tmp_path / "seed"))
        tracker = f"""
[[trackers]]
name = "shop"
kind = "gitlab"
url = "{sim.url}"
token_env = "GITLAB_TOKEN"
query = "acme/shop"
repo = "shop"
"""
        config = write_hosted_config(tmp_path, tracker, host="gitlab", url=server.repo_url("acme/shop"),
                                     api_url=sim.url, token_env="GITLAB_TOKEN")  # fmt: skip
        text = config.read_text().replace(
            'command = "', f'command = "{slow_agent(tmp_path)}"\n# was: "', 1
        )
        config.write_text(text)
        yield world, server, config
        assert sim.validation_errors == []


def _gitlab_case(tmp_path: Path, gitlab: tuple[World, GitHttpServer, Path], act: Callable[[World, Issue], None],
                 words: str) -> Issue:  # fmt: skip
    world, _, config = gitlab
    issue = world.issue(CALC_TITLE, CALC_TICKET)
    world.sim.label(world.project, issue.iid, "agent-ready", by=world.alice)
    engine, store = engine_for(config)
    try:
        agent = started_agent(engine, tmp_path)
        assert "workflow::In Progress" in issue.labels
        act(world, issue)
        reason = stop_on_next_cycle(engine, store, agent, f"acme/shop#{issue.iid}")
        assert words in reason
        row = store.find_ticket(f"acme/shop#{issue.iid}")
        assert row is not None and row.branch
        branch = row.branch
    finally:
        engine.shutdown()
        store.close()
    assert world.project.mrs == {}, "a merge request was opened for a stopped run"
    assert world.sim.branch_sha(world.project, branch) is None, "the stopped run's branch was pushed"
    notes = [n.body for n in issue.notes if n.author == world.bot and STATUS_MARKER in n.body]
    assert len(notes) == 1 and words in notes[0]
    return issue


def test_gitlab_a_closed_issue_stops_the_agent(tmp_path: Path, gitlab: tuple[World, GitHttpServer, Path]) -> None:
    issue = _gitlab_case(tmp_path, gitlab, lambda w, i: w.sim.set_state(w.project, i, "closed"),
                         "a person closed the ticket")  # fmt: skip
    assert issue.state == "closed"  # not reopened


def test_gitlab_a_removed_label_stops_the_agent(tmp_path: Path, gitlab: tuple[World, GitHttpServer, Path]) -> None:
    issue = _gitlab_case(tmp_path, gitlab,
                         lambda w, i: w.sim.unlabel(w.project, i.iid, "agent-ready", by=w.alice),
                         "a person removed the label 'agent-ready'")  # fmt: skip
    assert issue.state == "opened" and "agent-ready" not in issue.labels
    assert "workflow::In Progress" in issue.labels  # the card stays in its list


# --- Linear (GraphQL) -------------------------------------------------------------------------------------------------


@pytest.fixture
def linear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Workspace, Path]]:
    monkeypatch.setenv(LINEAR_KEY, "lin_api_bot")
    with LinearSim() as sim:
        ws = seed(sim)
        repo, _ = sample_repo_and_agent(tmp_path)
        tracker = f"""
[[trackers]]
name = "eng"
kind = "linear"
url = "{sim.url}"
token_env = "{LINEAR_KEY}"
query = "ENG"
repo = "textkit"
"""
        agent = tmp_path / "slow_agent.py"
        agent.write_text(SLOW_AGENT)
        config = write_service_config(tmp_path, tracker, repo=repo, agent=agent, allowed_actors=["alice@acme.dev"])
        text = config.read_text().replace(f"{agent.as_posix()}\"", f"{agent.as_posix()} {tmp_path / 'agent.pid'}\"")
        config.write_text(text.replace("timeout = 120", 'timeout = 120\nsandbox = "none"\nallow_unsandboxed = true'))
        yield ws, config


def test_linear_a_card_moved_to_done_stops_the_agent(tmp_path: Path, linear: tuple[Workspace, Path]) -> None:
    ws, config = linear
    title, description = demo_ticket_parts(GOOD_TICKET)
    issue = ws.issue(title, description, state="Backlog")
    ws.sim.label(issue, "agent-ready", ws.alice)
    engine, store = engine_for(config)
    try:
        agent = started_agent(engine, tmp_path)
        assert issue.state.name == "In Progress"
        ws.sim.move(issue, "Done", ws.alice)
        reason = stop_on_next_cycle(engine, store, agent, issue.identifier)
        assert "a person moved the card to 'Done'" in reason
    finally:
        engine.shutdown()
        store.close()
    assert issue.state.name == "Done", "the card was moved away from where the person put it"
    assert issue.attachment_list == [], "a pull request was attached for a stopped run"
    ours = [c.body for c in issue.comment_list if c.user is ws.sim.bot]
    assert len(ours) == 1 and "a person moved the card to 'Done'" in ours[0]
    repo = tmp_path / "textkit"
    assert git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/agent/") == ""
