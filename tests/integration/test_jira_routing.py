"""Repository routing on Jira: one board, two repositories (`repo = ["textkit", "web"]`). A ticket labelled
`repo:web` gets its branch in web, an unlabelled one in the tracker's first repository, and one naming a repository
that is not configured is declined (Needs Refinement) with the choices listed. Daemon against the Jira simulator,
code hosts are local git repositories."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.journey_helpers import (
    demo_ticket_parts,
    run_once,
    sample_repo_and_agent,
    write_service_config,
)
from tests.sims.jira import JiraSim
from tracker_bridge.demo import GOOD_TICKET, make_sample_repo
from tracker_bridge.gitutil import git

TOKEN_ENV = "TB_ROUTING_JIRA_TOKEN"


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[JiraSim]:
    monkeypatch.setenv(TOKEN_ENV, "s3cret")
    with JiraSim() as s:
        s.add_project("PAY")
        s.add_status("Backlog")
        yield s
        assert s.rejected == [], s.rejected


def agent_branches(repo: Path) -> list[str]:
    return git(repo, "branch", "--list", "agent/*", "--format=%(refname:short)").split()


def test_a_jira_ticket_labelled_repo_web_gets_its_branch_in_web(tmp_path: Path, sim: JiraSim) -> None:
    textkit, agent = sample_repo_and_agent(tmp_path)
    web = make_sample_repo(tmp_path / "web")
    tracker = f"""
[[trackers]]
name = "pay"
kind = "jira"
url = "{sim.url}"
user = "bot@acme.test"
token_env = "{TOKEN_ENV}"
query = "project = PAY"
repo = ["textkit", "web"]
"""
    config = write_service_config(tmp_path, tracker, repo=textkit, agent=agent, allowed_actors=[])
    text = config.read_text()
    test_line = next(line for line in text.splitlines() if line.startswith("test_command = "))
    web_repo = f'[[repos]]\nname = "web"\nhost = "local"\nurl = "{web.as_posix()}"\nbase_branch = "main"\n{test_line}\n'
    config.write_text(text + "\n" + web_repo)
    alice = sim.add_user("alice", "alice@acme.test", "Alice Lead")
    title, description = demo_ticket_parts(GOOD_TICKET)
    for_web = sim.create_issue("PAY", title, description, status="Backlog").key
    sim.add_label(for_web, "repo:web", by=alice)
    sim.add_label(for_web, "agent-ready", by=alice)
    default = sim.create_issue("PAY", title + " (textkit)", description, status="Backlog").key
    sim.add_label(default, "agent-ready", by=alice)
    unknown = sim.create_issue("PAY", title + " (mobile)", description, status="Backlog").key
    sim.add_label(unknown, "repo:mobile", by=alice)
    sim.add_label(unknown, "agent-ready", by=alice)

    run_once(config)

    assert sim.status_name(for_web) == "In Review" and sim.status_name(default) == "In Review"
    [web_branch] = agent_branches(web)
    assert web_branch.startswith(f"agent/{for_web}-")
    [textkit_branch] = agent_branches(textkit)
    assert textkit_branch.startswith(f"agent/{default}-")
    assert sim.status_name(unknown) == "Needs Refinement"
    [comment] = sim.status_comments(unknown)
    text = sim.comment_text(comment)
    assert "'mobile'" in text and "Choices: textkit, web" in text
