"""Follow-up comments: on the GitHub and GitLab simulators, a comment on the agent's pull request that mentions
`[trigger] mention` (default `@tracker-bridge`) by an allowed person starts exactly one iteration on the same
branch, with the comment in the agent's feedback; the same comment never triggers twice, and a mention by someone
not in `allowed_actors`, or the daemon's own comment, starts none."""

# ruff: noqa: F811 (fixtures imported from the journey tests are parameters of the tests)
from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_github_iteration import AGENT, FIRST_ATTEMPT, feedback_seen
from tests.integration.test_github_journey import Daemon, World, board_tracker, world, write_config  # noqa: F401
from tests.integration.test_gitlab_journey import Daemon as GitLabDaemon
from tests.integration.test_gitlab_journey import calc_in_review, daemon, gitlab, list_of  # noqa: F401 (fixtures)
from tests.journey_helpers import CALC_TICKET, CALC_TITLE, use_agent_script
from tracker_bridge.gitutil import git


def test_github_a_mention_by_an_allowed_person_starts_exactly_one_iteration(
    tmp_path: Path, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_agent_script(tmp_path, monkeypatch, AGENT, "feedback_agent.py")
    extra = '[trigger]\nallowed_actors = ["alice"]\n'
    daemon = Daemon(world, write_config(tmp_path, world, board_tracker(world), extra=extra))
    gh = world.gh
    issue = gh.create_issue(world.repo, CALC_TITLE, CALC_TICKET, by="alice")
    gh.add_to_project(world.project, issue, status="Agent", by="alice")
    daemon.cycle()
    pr = world.pr_for(issue)
    first_head = pr.head_sha
    assert gh.column(issue) == "In Review" and feedback_seen(world, pr) == FIRST_ATTEMPT

    # Someone not allowed mentions the daemon, and a plain comment without the mention: nothing happens.
    gh.pr_comment(pr, "@tracker-bridge delete the tests please", by="eve")
    gh.pr_comment(pr, "Looks fine to me.", by="alice")
    daemon.cycle()
    assert pr.head_sha == first_head and gh.column(issue) == "In Review"

    gh.pr_comment(pr, "@tracker-bridge please also add a test for negative numbers", by="alice")
    daemon.cycle()
    assert pr.head_sha != first_head and list(world.repo.pulls) == [pr.number]  # the same pull request
    assert world.history(issue)[-3:] == ["In Review", "In Progress", "In Review"]
    seen = feedback_seen(world, pr)
    assert "alice commented on the pull request: @tracker-bridge please also add a test" in seen
    assert "delete the tests" not in seen

    # The same comment never triggers twice; the daemon's own status comment never does.
    second_head = pr.head_sha
    daemon.cycle()
    daemon.cycle()
    assert pr.head_sha == second_head and gh.column(issue) == "In Review"

    # A mention on the issue (the ticket) works the same way: exactly one more iteration on the same branch.
    gh.comment(issue, "@tracker-bridge the issue says: round halves up", by="eve")
    gh.comment(issue, "@tracker-bridge the ticket asks for rounding halves up", by="alice")
    daemon.cycle()
    assert pr.head_sha != second_head and list(world.repo.pulls) == [pr.number]
    seen = feedback_seen(world, pr)
    assert "alice commented on the ticket: @tracker-bridge the ticket asks for rounding" in seen
    assert "round halves up" not in seen
    third_head = pr.head_sha
    daemon.cycle()
    assert pr.head_sha == third_head and gh.column(issue) == "In Review"


def test_gitlab_a_mention_by_an_allowed_person_starts_exactly_one_iteration(
    tmp_path: Path, daemon: GitLabDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = daemon.world
    sim, p = world.sim, world.project
    use_agent_script(tmp_path, monkeypatch, AGENT, "feedback_agent.py")
    text = daemon.config.read_text().replace("[agent]", '[trigger]\nallowed_actors = ["alice"]\n\n[agent]', 1)
    daemon.config.write_text(text)
    issue, mr = calc_in_review(daemon)
    first_sha = sim.branch_sha(p, mr.source_branch)
    # The person who labelled the issue is asked to review (reviewer_ids, looked up by username).
    assert [u.username for u in mr.reviewers] == [world.alice.username]

    sim.mr_comment(p, mr.iid, "@tracker-bridge drop the tests", by=world.guest)
    daemon.cycle()
    assert sim.branch_sha(p, mr.source_branch) == first_sha

    sim.mr_comment(p, mr.iid, "@Tracker-Bridge please handle negative numbers too", by=world.alice)
    daemon.cycle()
    assert sim.branch_sha(p, mr.source_branch) != first_sha and len(p.mrs) == 1
    assert list_of(issue) == "workflow::In Review"
    seen = git(daemon.git.repo_path("acme/shop"), "show", f"{mr.source_branch}:FEEDBACK_SEEN.txt")
    assert "please handle negative numbers too" in seen and "drop the tests" not in seen

    second_sha = sim.branch_sha(p, mr.source_branch)
    daemon.cycle()
    assert sim.branch_sha(p, mr.source_branch) == second_sha and list_of(issue) == "workflow::In Review"
