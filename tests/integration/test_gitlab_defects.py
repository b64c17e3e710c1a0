"""Regression tests for the GitLab defects of issue 14, each against the GitLab simulator through the real CLI.

- a merge request whose `Closes #N` closed the issue must not leave the issue's list label behind (reopening it
  would put the card back in In Review);
- a token self-check GitLab refuses (project tokens, old GitLab) is a warning, never a crash of `run`;
- an idle `run --once` costs at most 6 requests (start-up reads the project once).
"""

# ruff: noqa: F811  (the journey's fixtures are imported and used by name)
from __future__ import annotations

from tests.integration.test_gitlab_journey import Daemon, calc_in_review, daemon, gitlab, list_of  # noqa: F401
from tests.journey_helpers import CALC_TICKET, CALC_TITLE
from tracker_bridge_connectors.gitlab.client import forget_projects

API = "/api/v4"


def test_a_merged_merge_request_leaves_the_closed_issue_without_a_list_label(daemon: Daemon) -> None:
    world = daemon.world
    sim, p = world.sim, world.project
    issue, mr = calc_in_review(daemon)

    sim.merge(p, mr.iid, by=world.alice)  # "Closes #N" closes the issue, labels untouched
    assert issue.state == "closed" and "workflow::In Review" in issue.labels
    daemon.cycle()

    assert issue.state == "closed"
    assert not [x for x in issue.labels if x.startswith("workflow::") or x in ("Agent", "Needs Human")], issue.labels
    # Reopened by a person, the card lands in GitLab's Open list, not back in In Review.
    sim.set_state(p, issue, "opened")
    assert list_of(issue) == "Open"


def test_a_refused_token_self_check_is_a_warning_not_a_crash(daemon: Daemon) -> None:
    world = daemon.world
    sim = world.sim
    # GitLab answers 404 for project and group access tokens (and before 15.5) on /personal_access_tokens/self.
    sim.server.inject(404, count=50, method="GET", path_prefix=f"{API}/personal_access_tokens/self")
    issue = world.issue(CALC_TITLE, CALC_TICKET)
    sim.label(world.project, issue.iid, "agent-ready", by=world.alice)
    output = daemon.cycle()
    assert list_of(issue) == "workflow::In Review"
    assert "cannot verify the token's scopes" in output and "api scope" in output


def test_an_idle_run_once_makes_at_most_six_requests(daemon: Daemon) -> None:
    sim = daemon.world.sim
    daemon.cycle()  # nothing labelled: the board is read, nothing acted on
    daemon.cycle()
    forget_projects()  # a new process: nothing shared from the runs before
    sim.server.reset_log()
    daemon.cycle()
    requests = [f"{r.method} {r.path}" for r in sim.server.log if r.path.startswith(API)]
    assert len(requests) <= 6, requests
    assert sum(1 for r in requests if r == f"GET {API}/projects/acme%2Fshop") == 1, requests
