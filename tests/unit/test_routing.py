"""Repository routing rules (tracker_bridge/routing.py) as a table: one ticket, one tracker, the repository chosen."""

from __future__ import annotations

import pytest

from tracker_bridge import lifecycle
from tracker_bridge.config import RepoConfig, TrackerConfig
from tracker_bridge.models import Stage, Ticket
from tracker_bridge.routing import issue_project, project_path, route

REPOS = [
    RepoConfig(name="api", host="github", url="https://github.com/acme/api.git"),
    RepoConfig(name="web", host="github", url="git@github.com:acme/web.git"),
    RepoConfig(name="infra", host="gitlab", url="https://gitlab.example/ops/platform/infra.git"),
    RepoConfig(name="mono", host="gitlab", url="https://gitlab.example/x/y.git", options={"project": "ops/mono"}),
]


def tracker(kind: str = "jira", repo: str | list[str] | tuple[str, ...] | None = ("api", "web")) -> TrackerConfig:
    value = list(repo) if isinstance(repo, tuple) else repo
    return TrackerConfig(name="t", kind=kind, url="https://x", repo=value)  # type: ignore[arg-type]


def ticket(ref: str = "PAY-1", labels: tuple[str, ...] = (), description: str = "", repo: str | None = None) -> Ticket:
    return Ticket(ref=ref, tracker="t", title="Fix it", labels=labels, description=description, repo=repo)


@pytest.mark.parametrize(
    ("t", "cfg", "expected"),
    [
        # Jira: a label chooses, else the tracker's first repository.
        (ticket(labels=("bug", "repo:web")), tracker(), "web"),
        (ticket(labels=("Repo:WEB",)), tracker(), "web"),
        (ticket(description="Please fix.\n[repo=web]"), tracker(), "web"),
        (ticket(labels=("repo:api",), description="[repo=web]"), tracker(), "api"),  # the label wins over the tag
        (ticket(), tracker(), "api"),
        (ticket(), tracker(repo="web"), "web"),  # `repo = "name"` (a string) still works
        # a label may name any configured repository, not only the tracker's list
        (ticket(labels=("repo:infra",)), tracker(repo="api"), "infra"),
        # GitHub Projects: the issue's own repository when configured, else the first
        (ticket(ref="acme/web#12"), tracker("github"), "web"),
        (ticket(ref="ACME/Api#3"), tracker("github", repo="web"), "api"),
        (ticket(ref="acme/other#3"), tracker("github"), "api"),
        (ticket(ref="acme/web#12", labels=("repo:api",)), tracker("github"), "api"),  # a person's choice wins
        # GitLab issues: group/subgroup/project, or the host's `project` option
        (ticket(ref="ops/platform/infra#7"), tracker("gitlab", repo=["mono", "infra"]), "infra"),
        (ticket(ref="ops/mono#7"), tracker("gitlab", repo=["infra", "mono"]), "mono"),
        # a GitLab issue does not route to a GitHub repository of the same path
        (ticket(ref="acme/web#1"), tracker("gitlab", repo="infra"), "infra"),
        # a Jira key is not a repository path
        (ticket(ref="WEB-12"), tracker(), "api"),
        # the ticket's own `repo` (local tracker front matter) is kept as before
        (ticket(repo="web"), tracker(), "web"),
    ],
)
def test_route_picks_the_repository(t: Ticket, cfg: TrackerConfig, expected: str) -> None:
    assert route(t, cfg, REPOS).repo == expected


def test_an_unknown_repository_label_is_not_guessed() -> None:
    routed = route(ticket(labels=("repo:mobile",)), tracker(), REPOS)
    assert routed.repo is None
    assert "'mobile'" in routed.problem and "label" in routed.problem
    assert routed.choices == ("api", "web", "infra", "mono")


def test_a_tracker_without_repositories_routes_nothing() -> None:
    routed = route(ticket(), tracker(repo=None), REPOS)
    assert routed.repo is None and routed.choices


def test_unrouted_declines_listing_the_choices() -> None:
    routed = route(ticket(description="[repo=mobile]"), tracker(), REPOS)
    decision = lifecycle.unrouted(routed.problem, routed.choices)
    assert decision.stage is Stage.DECLINED
    assert "Choices: api, web, infra, mono" in decision.reason
    assert "repo:api" in decision.reason


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("https://github.com/acme/api.git", "acme/api"),
        ("git@github.com:Acme/Api.git", "acme/api"),
        ("https://gitlab.example/a/b/c", "a/b/c"),
    ],
)
def test_project_path(url: str, path: str) -> None:
    assert project_path(url) == path


def test_issue_project() -> None:
    assert issue_project("acme/api#12") == "acme/api"
    assert issue_project("PAY-12") is None
    assert issue_project("DEMO-1") is None
