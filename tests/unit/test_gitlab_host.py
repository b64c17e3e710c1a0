"""GitLabHost against the GitLab simulator and a real `git http-backend`: clone, push, merge requests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.sims.git_http import GitHttpServer
from tests.sims.gitlab import BOT_TOKEN, GitLabSim, World, make_world
from tracker_bridge.config import ConfigError, RepoConfig, Settings
from tracker_bridge.gitutil import git
from tracker_bridge.models import ChecksState, PullRequestState, ReviewState
from tracker_bridge.protocols import CodeHost, CodeHostError
from tracker_bridge_connectors.gitlab import GitLabHost
from tracker_bridge_connectors.gitlab.host import closing_line


@dataclass
class Env:
    world: World
    git: GitHttpServer
    host: GitLabHost
    tmp: Path


def seed_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("shop\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "initial")
    return path


def make_host(world: World, server: GitHttpServer, **options: object) -> GitLabHost:
    cfg = RepoConfig(
        name="shop",
        host="gitlab",
        url=server.repo_url("acme/shop"),
        api_url=world.sim.url,
        token_env="GITLAB_TOKEN",
        options=dict(options),
    )
    return GitLabHost.from_config(cfg, Settings(base_dir=Path.cwd()))


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("GITLAB_TOKEN", BOT_TOKEN)
    with GitHttpServer(tmp_path / "git", token=BOT_TOKEN) as server, GitLabSim(server) as sim:
        world = make_world(sim)
        server.create_repo("acme/shop", seed=seed_repo(tmp_path / "seed"))
        yield Env(world, server, make_host(world, server), tmp_path)
        assert sim.validation_errors == []


def agent_commit(env: Env, branch: str) -> Path:
    ws = env.tmp / "ws"
    env.host.clone(ws)
    git(ws, "checkout", "-q", "-b", branch)
    (ws / "fix.py").write_text("print('fixed')\n")
    git(ws, "add", ".")
    git(ws, "commit", "-q", "-m", "fix")
    return ws


def test_it_is_a_code_host(env: Env) -> None:
    assert isinstance(env.host, CodeHost)


def test_clone_and_push_leave_no_credentials_in_the_clone(env: Env) -> None:
    branch = "agent/acme-shop-1-fix-rounding"
    ws = agent_commit(env, branch)
    config = (ws / ".git" / "config").read_text()
    assert BOT_TOKEN not in config and "extraheader" not in config.lower()
    assert not env.host.branch_exists(branch)
    env.host.push(ws, branch)
    assert env.host.branch_exists(branch)
    assert all(r.user is not None for r in env.git.log)  # every git request carried the token
    again = env.tmp / "again"
    env.host.clone(again, branch)
    assert git(again, "rev-parse", "--abbrev-ref", "HEAD") == branch
    assert (again / "fix.py").exists()
    fresh = env.tmp / "fresh"
    env.host.clone(fresh, "agent/does-not-exist")
    assert git(fresh, "rev-parse", "--abbrev-ref", "HEAD") == "main"


def test_a_wrong_token_fails_clearly(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITLAB_TOKEN", "glpat-wrong")
    host = make_host(env.world, env.git)
    with pytest.raises(CodeHostError, match="git clone"):
        host.clone(env.tmp / "nope")


def test_open_merge_request_closes_the_linked_issue_and_is_found_again(env: Env) -> None:
    sim, p = env.world.sim, env.world.project
    env.world.issue("Fix rounding", labels=["agent-ready"])
    branch = "agent/acme-shop-1-fix-rounding"
    env.host.push(agent_commit(env, branch), branch)
    assert env.host.find_pull_request(branch) is None
    body = f"Resolves [acme/shop#1]({sim.url}/acme/shop/-/issues/1).\n\nFixed the rounding."
    pr = env.host.open_pull_request(branch, "acme/shop#1: Fix rounding", body)
    assert pr.id == "1" and pr.state is PullRequestState.OPEN and pr.base == "main"
    assert pr.url == f"{sim.url}/acme/shop/-/merge_requests/1"
    assert p.mrs[1].description.endswith("Closes #1")
    assert any("mentioned in merge request !1" in n.body for n in p.issues[1].notes if n.system)

    found = env.host.find_pull_request(branch)
    assert found is not None and found.id == "1"
    # Opening again (a restart that lost its state) answers with the existing merge request, not a second one.
    again = env.host.open_pull_request(branch, "acme/shop#1: Fix rounding", body)
    assert again.id == "1" and len(p.mrs) == 1

    sim.merge(p, 1, by=env.world.alice)
    merged = env.host.get_pull_request("1")
    assert merged.state is PullRequestState.MERGED and merged.merged
    assert p.issues[1].state == "closed"  # "Closes #1" did its work on merge


def test_merge_request_state_follows_draft_pipeline_approvals_and_threads(env: Env) -> None:
    sim, p, alice = env.world.sim, env.world.project, env.world.alice
    branch = "agent/x"
    env.host.push(agent_commit(env, branch), branch)
    pr = env.host.open_pull_request(branch, "Draft: x", "body")
    assert pr.draft and pr.checks is ChecksState.NONE and pr.review is ReviewState.NONE
    assert pr.head_sha == sim.branch_sha(p, branch)

    sim.set_pipeline(p, 1, "running")
    assert env.host.get_pull_request("1").checks is ChecksState.PENDING
    sim.set_pipeline(p, 1, "failed", jobs={"lint": "success", "pytest": "failed"})
    failing = env.host.get_pull_request("1")
    assert failing.checks is ChecksState.FAILING
    assert len(failing.feedback) == 1 and "CI job 'pytest' failed" in failing.feedback[0]
    sim.set_pipeline(p, 1, "success")
    assert env.host.get_pull_request("1").checks is ChecksState.PASSING

    p.mrs[1].reviewers.append(alice)
    assert env.host.get_pull_request("1").review is ReviewState.REVIEW_REQUESTED
    sim.approve(p, 1, by=alice)
    assert env.host.get_pull_request("1").review is ReviewState.APPROVED
    note = sim.review_comment(p, 1, "Please handle negative totals too", by=alice)
    reviewed = env.host.get_pull_request("1")
    assert reviewed.review is ReviewState.CHANGES_REQUESTED
    assert reviewed.feedback == ["Please handle negative totals too"]
    note.resolved = True
    assert env.host.get_pull_request("1").review is ReviewState.APPROVED

    sim.close_mr(p, 1)
    assert env.host.get_pull_request("1").state is PullRequestState.CLOSED
    # A closed merge request is still found for its branch (so no second one is opened blindly).
    closed = env.host.find_pull_request(branch)
    assert closed is not None and closed.state is PullRequestState.CLOSED


def test_rate_limit_and_server_errors_on_open_do_not_open_twice(env: Env) -> None:
    branch = "agent/y"
    env.host.push(agent_commit(env, branch), branch)
    env.world.sim.server.inject(429, count=1, headers={"Retry-After": "0"}, method="POST")
    env.world.sim.server.inject(502, count=2, headers={"Retry-After": "0"}, method="POST")
    pr = env.host.open_pull_request(branch, "y", "body")
    assert pr.id == "1" and len(env.world.project.mrs) == 1


def test_check_reports_a_missing_base_branch(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    assert env.host.check() == []
    cfg = RepoConfig(
        name="shop",
        host="gitlab",
        url=env.git.repo_url("acme/shop"),
        api_url=env.world.sim.url,
        token_env="GITLAB_TOKEN",
        base_branch="develop",
    )
    problems = GitLabHost.from_config(cfg, Settings(base_dir=Path.cwd())).check()
    assert [p.key for p in problems] == ["repos.shop.base_branch"]


def test_ssh_urls_are_refused_with_a_fix() -> None:
    cfg = RepoConfig(name="shop", host="gitlab", url="git@gitlab.com:acme/shop.git", token_env="GITLAB_TOKEN")
    with pytest.raises(ConfigError, match="HTTPS clone URL"):
        GitLabHost.from_config(cfg, Settings(base_dir=Path.cwd()))


def test_closing_line_only_adds_what_is_missing() -> None:
    base = "https://gitlab.example.com"
    body = f"Resolves [acme/shop#3]({base}/acme/shop/-/issues/3) and {base}/acme/api/-/issues/9"
    assert closing_line(body, base, "acme/shop") == "Closes #3\nCloses acme/api#9"
    assert closing_line(body + "\n\nCloses #3", base, "acme/shop") == "Closes acme/api#9"
    assert closing_line(body + "\n\nCloses shop#3", base, "acme/shop") == "Closes acme/api#9"
    assert closing_line(body + "\n\nFixes acme/shop#3", base, "acme/shop") == "Closes acme/api#9"
    assert closing_line("no links", base, "acme/shop") == ""


def test_a_merge_request_whose_target_moved_reports_conflicts_and_takes_a_reviewer(env: Env) -> None:
    # Issue 14: `has_conflicts` / `merge_status` / `detailed_merge_status` as GitLab computes them (the simulator:
    # a real test merge in its bare repository); reviewers set by username through `reviewer_ids`.
    branch = "agent/acme-shop-1-fix-rounding"
    ws = agent_commit(env, branch)
    env.host.push(ws, branch)
    pr = env.host.open_pull_request(branch, "acme/shop#1: Fix rounding", "Fixed.")
    assert not pr.conflicts
    env.host.request_review(pr.id, "alice")
    assert [u.username for u in env.world.project.mrs[1].reviewers] == ["alice"]
    with pytest.raises(CodeHostError, match="no user named 'mallory'"):
        env.host.request_review(pr.id, "mallory")

    person = env.tmp / "person"
    env.host.clone(person)
    (person / "fix.py").write_text("print('fixed upstream')\n")  # the same new file, other content: a conflict
    git(person, "add", ".")
    git(person, "commit", "-q", "-m", "upstream")
    env.host.push(person, "main")
    assert env.host.get_pull_request(pr.id).conflicts
