"""The iteration loop on GitHub, end to end through the daemon (`tracker-bridge run --once`): a failing check run or
a review requesting changes on the agent's open pull request sends the ticket back to `running`; the agent runs
again on the same branch with that feedback in its prompt, the daemon pushes a new commit to the same pull request
and the card returns to In Review. When the iterations are used up, the ticket goes to Needs Human instead.

The agent is a script run by the `command` backend. It can only write in its workspace, so it shows what it was told
by committing the <feedback> section of its prompt as FEEDBACK_SEEN.txt; the test reads it from the branch the
daemon pushed to the simulator's bare repository.
"""

# ruff: noqa: F811 (`world` is the journey test's fixture, imported; tests take it as a parameter)
from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_github_journey import (  # the simulated GitHub world of the journey test
    Daemon,
    World,
    board_tracker,
    world,  # noqa: F401 (a fixture)
    write_config,
)
from tests.journey_helpers import CALC_TICKET, CALC_TITLE, use_agent_script
from tests.sims.github.world import Issue, Pull

# Fixes calc.add (a no-op once the branch has the fix) and commits the feedback its prompt carried.
AGENT = """import os, pathlib
calc = pathlib.Path("calc.py")
calc.write_text(calc.read_text().replace("a - b", "a + b"))
prompt = pathlib.Path(os.environ["TRACKER_BRIDGE_PROMPT_FILE"]).read_text(encoding="utf-8")
feedback = prompt.split("<feedback>", 1)[1].split("</feedback>", 1)[0].strip()
pathlib.Path("FEEDBACK_SEEN.txt").write_text(feedback + "\\n", encoding="utf-8")
"""
FIRST_ATTEMPT = "(none: this is the first attempt)"


def start(tmp_path: Path, world: World, monkeypatch: pytest.MonkeyPatch, max_iterations: int = 2) -> Daemon:
    """The journey's config with AGENT as the agent and `max_iterations`, through the documented env overrides."""
    use_agent_script(tmp_path, monkeypatch, AGENT, "feedback_agent.py")
    monkeypatch.setenv("TRACKER_BRIDGE__AGENT__MAX_ITERATIONS", str(max_iterations))
    return Daemon(world, write_config(tmp_path, world, board_tracker(world)))


def in_review(world: World, daemon: Daemon) -> tuple[Issue, Pull, str]:
    """A calc ticket dragged to Agent, taken by the agent and in review with its pull request open."""
    gh = world.gh
    issue = gh.create_issue(world.repo, CALC_TITLE, CALC_TICKET, by="alice")
    gh.add_to_project(world.project, issue, status="Agent", by="alice")
    daemon.cycle()
    assert gh.column(issue) == "In Review"
    pr = world.pr_for(issue)
    assert pr.state == "open" and pr.head_sha is not None
    assert feedback_seen(world, pr) == FIRST_ATTEMPT
    return issue, pr, pr.head_sha


def feedback_seen(world: World, pr: Pull) -> str:
    """The feedback the agent got on its last run, as committed on the pull request's branch."""
    return world.repo.git("show", f"{pr.head}:FEEDBACK_SEEN.txt").strip()


def writes(world: World) -> int:
    gh = world.gh
    rest = sum(1 for r in gh.server.log if r.method in ("POST", "PATCH", "PUT", "DELETE") and r.path != "/graphql")
    return rest + sum(1 for d in gh.graphql_documents() if d.lstrip().startswith("mutation"))


def assert_iterated(world: World, issue: Issue, pr: Pull, old_head: str) -> str:
    """The agent ran again on the same branch and the daemon pushed to the same pull request; the new head."""
    gh, repo = world.gh, world.repo
    assert gh.column(issue) == "In Review"
    assert world.history(issue)[-3:] == ["In Review", "In Progress", "In Review"]
    assert list(repo.pulls) == [pr.number] and pr.state == "open"  # no second pull request
    new_head = pr.head_sha
    assert new_head is not None and new_head != old_head
    assert repo.git("rev-parse", f"{new_head}^") == old_head  # a commit on top of the first: the same branch
    assert "a + b" in repo.git("show", f"{pr.head}:calc.py")  # the first run's fix is still there
    return new_head


def test_a_failing_check_sends_the_ticket_back_to_the_agent_on_the_same_pull_request(
    tmp_path: Path,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    daemon = start(tmp_path, world, monkeypatch)
    issue, pr, head = in_review(world, daemon)

    world.gh.add_check_run(head, "unit tests", conclusion="failure", title="unit tests: test_add failed")
    daemon.cycle()

    new_head = assert_iterated(world, issue, pr, head)
    assert "check unit tests failed: unit tests: test_add failed" in feedback_seen(world, pr)
    [comment] = world.comments(issue)
    assert f"/acme/shop/pull/{pr.number}" in comment
    assert "iteration 1 of 2" in comment and "pushed to the same pull request" in comment and "attempt 2" in comment

    # Nothing new on the new head: another cycle changes nothing (no run, no push, no move, no comment edit).
    before = writes(world)
    daemon.cycle()
    assert writes(world) == before
    assert pr.head_sha == new_head and world.gh.column(issue) == "In Review"
    assert len(world.comments(issue)) == 1


def test_when_the_iterations_are_used_up_a_person_takes_over(
    tmp_path: Path,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    daemon = start(tmp_path, world, monkeypatch, max_iterations=1)
    issue, pr, head = in_review(world, daemon)
    world.gh.add_check_run(head, "unit tests", conclusion="failure", title="unit tests: test_add failed")
    daemon.cycle()
    new_head = assert_iterated(world, issue, pr, head)

    world.gh.add_check_run(new_head, "lint", conclusion="failure", title="lint: line too long")
    daemon.cycle()

    assert world.gh.column(issue) == "Needs Human"
    assert pr.head_sha == new_head  # the agent did not run again
    assert list(world.repo.pulls) == [pr.number] and pr.state == "open"
    [comment] = world.comments(issue)
    assert "used its 1 iteration(s)" in comment and "a person should take over" in comment

    # The open pull request of a failed ticket is still followed, without iterating or writing anything.
    before = writes(world)
    daemon.cycle()
    assert writes(world) == before and world.gh.column(issue) == "Needs Human"


def test_a_review_requesting_changes_reaches_the_agent_as_feedback(
    tmp_path: Path,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    daemon = start(tmp_path, world, monkeypatch)
    issue, pr, head = in_review(world, daemon)

    world.gh.review(
        pr,
        "alice",
        "CHANGES_REQUESTED",
        body="Please add a test for negative numbers.",
        comments=(("test_calc.py", 5, "add(-2, -3) should be -5"),),
    )
    daemon.cycle()

    new_head = assert_iterated(world, issue, pr, head)
    seen = feedback_seen(world, pr)
    assert "alice: Please add a test for negative numbers." in seen
    assert "test_calc.py:5: add(-2, -3) should be -5" in seen
    [comment] = world.comments(issue)
    assert "iteration 1 of 2" in comment

    # The review was answered by the new push: until the reviewer looks again, the ticket waits in review.
    daemon.cycle()
    assert world.gh.column(issue) == "In Review" and pr.head_sha == new_head
    assert len(world.comments(issue)) == 1

    # The reviewer asks for more: that is new feedback, and another iteration.
    world.gh.review(pr, "alice", "CHANGES_REQUESTED", body="Also handle floats.")
    daemon.cycle()
    assert_iterated(world, issue, pr, new_head)
    assert "alice: Also handle floats." in feedback_seen(world, pr)
    [comment] = world.comments(issue)
    assert "iteration 2 of 2" in comment
