"""Repository routing on a GitHub Project: one organisation-wide board holding issues from two configured
repositories (`repo = ["shop", "web"]`) gets each pull request in its issue's own repository, closing the issue
there. Daemon (`run --once`) against the GitHub simulator, git pushed over smart HTTP."""

# ruff: noqa: F811 (`world` is the journey test's fixture, imported; tests take it as a parameter)
from __future__ import annotations

from pathlib import Path

from tests.agent_fixtures import TEST_COMMAND, make_repo
from tests.integration.test_github_journey import (
    Daemon,
    World,
    world,  # noqa: F401 (a fixture)
    write_config,
)
from tests.journey_helpers import CALC_TICKET, CALC_TITLE


def test_a_project_with_issues_from_two_repositories_opens_each_pull_request_in_its_own(
    tmp_path: Path, world: World
) -> None:
    gh, shop, project = world.gh, world.repo, world.project
    web = gh.create_repo("acme/web", seed=make_repo(tmp_path / "web-seed"), collaborators={"alice": "write"})
    tracker = f"""
[[trackers]]
name = "board"
kind = "github"
url = "{gh.url}"
token_env = "GITHUB_TOKEN"
query = "acme/1"
repo = ["shop", "web"]

[[repos]]
name = "web"
host = "github"
url = "{gh.clone_url("acme/web")}"
api_url = "{gh.url}"
token_env = "GITHUB_TOKEN"
base_branch = "main"
test_command = '{TEST_COMMAND}'
"""
    daemon = Daemon(world, write_config(tmp_path, world, tracker))
    in_shop = gh.create_issue(shop, CALC_TITLE, CALC_TICKET, by="alice")
    gh.add_to_project(project, in_shop, status="Agent", by="alice")
    in_web = gh.create_issue(web, CALC_TITLE + " on the web", CALC_TICKET, by="alice")
    gh.add_to_project(project, in_web, status="Agent", by="alice")

    daemon.cycle()

    assert gh.column(in_shop) == "In Review" and gh.column(in_web) == "In Review"
    [shop_pr] = shop.pulls.values()
    [web_pr] = web.pulls.values()
    assert "acme-shop-" in shop_pr.head and "acme-web-" in web_pr.head
    assert f"Closes #{in_web.number}" in web_pr.body  # in its own repository: the merge closes the issue
    assert web_pr.head_sha == web.branch_sha(web_pr.head)
    assert "a + b" in web.git("show", f"{web_pr.head}:calc.py")
