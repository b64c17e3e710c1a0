"""The GitHub code host against the simulator: real git over smart HTTP, pull requests, reviews and checks."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sims.github import GitHubSim
from tests.sims.github.scenario import Board, acme_board, git_env
from tracker_bridge.config import ConfigError, RepoConfig, Settings
from tracker_bridge.models import ChecksState, PullRequestState, ReviewState
from tracker_bridge.protocols import CodeHostError
from tracker_bridge_connectors.github import GitHubHost
from tracker_bridge_connectors.github.client import GitHubClient
from tracker_bridge_connectors.retry import RetryPolicy

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)
BRANCH = "agent/acme-widgets-1-fix-parse-amount"


@pytest.fixture
def board(tmp_path: Path) -> Iterator[Board]:
    with GitHubSim(tmp_path / "gh") as gh:
        yield acme_board(gh, tmp_path)


def host_for(board: Board, token: str | None = None) -> GitHubHost:
    gh = board.gh
    token = token or gh.token
    client = GitHubClient(gh.url, token, policy=FAST)
    return GitHubHost("widgets", gh.clone_url("acme/widgets"), token, client=client)


def agent_commit(ws: Path, branch: str = BRANCH) -> None:
    subprocess.run(["git", "checkout", "-q", "-b", branch], cwd=ws, check=True, env=git_env())
    (ws / "src" / "amounts.py").write_text(
        "def parse_amount(text: str) -> float:\n    return float(text.replace(',', '.'))\n"
    )
    subprocess.run(["git", "commit", "-q", "-am", "Handle decimal comma"], cwd=ws, check=True, env=git_env())


def test_clone_leaves_no_credentials_and_push_opens_one_pull_request(board: Board, tmp_path: Path) -> None:
    gh, host = board.gh, host_for(board)
    ws = tmp_path / "ws"
    host.clone(ws)
    config = (ws / ".git" / "config").read_text()
    assert gh.token not in config and "extraheader" not in config.lower()
    assert (ws / "src" / "amounts.py").exists()
    agent_commit(ws)
    host.push(ws, BRANCH)
    assert host.branch_exists(BRANCH)
    assert host.find_pull_request(BRANCH) is None

    pr = host.open_pull_request(BRANCH, "acme/widgets#1: Fix parse_amount", "Resolves acme/widgets#1.\n\nFixed.")
    again = host.open_pull_request(BRANCH, "acme/widgets#1: Fix parse_amount", "Resolves acme/widgets#1.")

    assert again.id == pr.id and len(board.repo.pulls) == 1
    sim_pr = board.repo.pulls[int(pr.id)]
    assert sim_pr.head == BRANCH and sim_pr.base == "main"
    assert "Closes #1" in sim_pr.body and sim_pr.body.count("Closes #1") == 1
    assert pr.state is PullRequestState.OPEN and pr.head_sha == board.repo.branch_sha(BRANCH)
    assert host.find_pull_request(BRANCH) == pr

    # a rerun clones at the agent's branch
    ws2 = tmp_path / "ws2"
    host.clone(ws2, BRANCH)
    assert "'.'" in (ws2 / "src" / "amounts.py").read_text()


def test_pull_request_state_follows_reviews_checks_merge_and_close(board: Board, tmp_path: Path) -> None:
    gh, host = board.gh, host_for(board)
    ws = tmp_path / "ws"
    host.clone(ws)
    agent_commit(ws)
    host.push(ws, BRANCH)
    pr = host.open_pull_request(BRANCH, "t", "b")
    sim_pr = board.repo.pulls[int(pr.id)]
    sha = sim_pr.head_sha
    assert sha is not None

    gh.request_review(sim_pr, "bob")
    gh.add_check_run(sha, "tests", status="in_progress", conclusion=None)
    got = host.get_pull_request(pr.id)
    assert (got.review, got.checks) == (ReviewState.REVIEW_REQUESTED, ChecksState.PENDING)

    gh.add_check_run(sha, "lint", conclusion="failure", title="ruff found 2 problems")
    gh.review(
        sim_pr, "bob", "CHANGES_REQUESTED", "Handle '1.000,50' too", comments=(("src/amounts.py", 2, "thousands?"),)
    )
    got = host.get_pull_request(pr.id)
    assert got.review is ReviewState.CHANGES_REQUESTED and got.checks is ChecksState.FAILING
    assert got.feedback == [
        "bob: Handle '1.000,50' too",
        "src/amounts.py:2: thousands?",
        "check lint failed: ruff found 2 problems",
    ]

    gh.world.check_runs.clear()
    gh.add_check_run(sha, "tests")
    gh.add_status(sha, "ci/legacy", "success")
    gh.review(sim_pr, "bob", "APPROVED")
    got = host.get_pull_request(pr.id)
    assert (got.review, got.checks, got.feedback) == (ReviewState.APPROVED, ChecksState.PASSING, [])

    before = board.repo.branch_sha("main")
    gh.merge_pull(sim_pr)
    merged = host.get_pull_request(pr.id)
    assert merged.state is PullRequestState.MERGED and merged.merged
    main_log = board.repo.git("log", "--format=%s", "main")
    assert "Handle decimal comma" in main_log and board.repo.branch_sha("main") != before


def test_draft_and_closed_unmerged(board: Board, tmp_path: Path) -> None:
    gh, host = board.gh, host_for(board)
    host.draft = True
    ws = tmp_path / "ws"
    host.clone(ws)
    agent_commit(ws)
    host.push(ws, BRANCH)
    pr = host.open_pull_request(BRANCH, "t", "b")
    assert pr.draft
    gh.close_pull(board.repo.pulls[int(pr.id)])
    closed = host.find_pull_request(BRANCH)
    assert closed is not None and closed.state is PullRequestState.CLOSED


def test_wrong_token_is_a_clear_error_and_never_leaks(board: Board, tmp_path: Path) -> None:
    host = host_for(board, token="ghp_wrong_token")
    with pytest.raises(CodeHostError) as err:
        host.clone(tmp_path / "ws")
    assert "ghp_wrong_token" not in str(err.value)
    assert host.check() and "401" in host.check()[0].message


def test_check_reports_missing_push_permission_and_base_branch(board: Board) -> None:
    gh = board.gh
    assert host_for(board).check() == []
    gh.add_token("ghp_reader", "eve", scopes="read:org")
    problems = host_for(board, token="ghp_reader").check()
    messages = " | ".join(p.message for p in problems)
    assert "cannot push" in messages and "lack 'repo'" in messages
    host = host_for(board)
    host.base_branch = "develop"
    assert any("develop" in p.message for p in host.check())


def test_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GH_T", "tok")
    cfg = RepoConfig(name="w", host="github", url="https://github.com/acme/widgets.git", token_env="GH_T")
    host = GitHubHost.from_config(cfg, Settings())
    assert (host.owner, host.repo, host.client.api_url) == ("acme", "widgets", "https://api.github.com")
    ghes = RepoConfig(
        name="w",
        host="github",
        url="https://ghe.acme.com/acme/widgets",
        api_url="https://ghe.acme.com/api/v3",
        token_env="GH_T",
    )
    assert GitHubHost.from_config(ghes, Settings()).client.graphql_url == "https://ghe.acme.com/api/graphql"
    monkeypatch.delenv("GH_T")
    with pytest.raises(ConfigError, match="GH_T"):
        GitHubHost.from_config(cfg, Settings())


def test_server_errors_and_rate_limits_are_retried_by_pygithub(board: Board, tmp_path: Path) -> None:
    gh, host = board.gh, host_for(board)
    ws = tmp_path / "ws"
    host.clone(ws)
    agent_commit(ws)
    host.push(ws, BRANCH)
    for status in (502, 429):
        gh.server.inject(status, count=1, method="POST", path_prefix="/repos/acme/widgets/pulls",
                         headers={"Retry-After": "0"})  # fmt: skip
    pr = host.open_pull_request(BRANCH, "t", "b")
    assert len(board.repo.pulls) == 1 and pr.state is PullRequestState.OPEN
    gh.server.inject(503, count=2, method="GET", path_prefix=f"/repos/acme/widgets/pulls/{pr.id}")
    assert host.get_pull_request(pr.id).id == pr.id
    gh.server.inject(500, count=10, method="GET", path_prefix=f"/repos/acme/widgets/pulls/{pr.id}")
    with pytest.raises(CodeHostError, match="500"):
        host.get_pull_request(pr.id)
