"""Merge conflicts on the GitHub simulator, end to end (`tracker-bridge run --once`): a person pushes to `main` a
change to the line the agent's pull request changed; the simulator's test merge (real git in its bare repository)
makes the pull request `mergeable: false`, `mergeable_state: "dirty"`; the daemon names the conflicting file, merges
`main` into the branch, the agent resolves the markers, the tests run again and a merge commit is pushed to the same
pull request, which merges again. The same journey shows the review request sent when the pull request opened.

The same on the GitLab simulator (its `has_conflicts` / `detailed_merge_status: "conflict"` come from a real test
merge in its bare repository): with no iteration left the card goes to Needs Human and the status note names the
conflicting file; with one, the merge request gets a merge commit that resolves the conflict."""

# ruff: noqa: F811 (`world` is the journey test's fixture, imported; tests take it as a parameter)
from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_github_iteration import feedback_seen, in_review
from tests.integration.test_github_journey import Daemon, World, board_tracker, world, write_config  # noqa: F401
from tests.integration.test_gitlab_journey import Daemon as GitLabDaemon
from tests.integration.test_gitlab_journey import calc_in_review, daemon, gitlab, list_of, status_notes  # noqa: F401
from tests.journey_helpers import use_agent_script
from tests.sims.gitlab import Issue as GitLabIssue
from tests.sims.gitlab import MergeRequest
from tracker_bridge.gitutil import git

# Fixes calc.add; where a merge left conflict markers, keeps the base's side (ours = the branch, theirs = base);
# commits the feedback its prompt carried.
AGENT = r"""import os, pathlib, re
calc = pathlib.Path("calc.py")
text = calc.read_text()
text = re.sub(r"<<<<<<< [^\n]*\n.*?\n=======\n(.*?)>>>>>>> [^\n]*\n", r"\1", text, flags=re.S)
calc.write_text(text.replace("a - b", "a + b"))
prompt = pathlib.Path(os.environ["TRACKER_BRIDGE_PROMPT_FILE"]).read_text(encoding="utf-8")
feedback = prompt.split("<feedback>", 1)[1].split("</feedback>", 1)[0].strip()
pathlib.Path("FEEDBACK_SEEN.txt").write_text(feedback + "\n", encoding="utf-8")
"""


def push_to_main(tmp_path: Path, bare: Path, files: dict[str, str]) -> str:
    """A person's push to `main` (a clone of the bare repository behind the simulator, a commit, a push)."""
    clone = tmp_path / "person"
    git(tmp_path, "clone", "-q", str(bare), str(clone))
    for name, text in files.items():
        (clone / name).write_text(text)
    git(clone, "commit", "-q", "-am", "upstream change")
    git(clone, "push", "-q", "origin", "main")
    return git(clone, "rev-parse", "HEAD")


def test_a_pull_request_whose_base_moved_is_merged_and_resolved_by_an_iteration(
    tmp_path: Path, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_agent_script(tmp_path, monkeypatch, AGENT, "conflict_agent.py")
    daemon = Daemon(world, write_config(tmp_path, world, board_tracker(world)))
    issue, pr, head = in_review(world, daemon)
    assert world.gh.render.pull(pr)["mergeable"] is True
    # Review requests (issue 14): alice moved the card, so alice is asked to review the new pull request (the
    # simulator checks the request against GitHub's description and its collaborator rule).
    assert pr.requested_reviewers == ["alice"]

    base = push_to_main(tmp_path, world.repo.bare, {"calc.py": "def add(a, b):\n    return b + a  # fixed upstream\n"})
    assert world.gh.render.pull(pr)["mergeable_state"] == "dirty"
    daemon.cycle()

    assert world.gh.column(issue) == "In Review"
    assert world.history(issue)[-3:] == ["In Review", "In Progress", "In Review"]
    assert list(world.repo.pulls) == [pr.number] and pr.state == "open"
    seen = feedback_seen(world, pr)
    assert "merge conflict" in seen and "`calc.py`" in seen
    parents = world.repo.git("rev-list", "--parents", "-n", "1", pr.head_sha or "").split()[1:]
    assert parents == [head, base]  # a merge commit on top of the reviewed head: a fast-forward push
    merged = world.repo.git("show", f"{pr.head}:calc.py")
    assert "b + a" in merged and "<<<<<<<" not in merged
    assert world.gh.render.pull(pr)["mergeable"] is True
    comment = world.comments(issue)[-1]
    assert "iteration 1 of 2" in comment

    daemon.cycle()  # it merges now: nothing more happens
    assert world.repo.git("rev-parse", pr.head) == pr.head_sha and world.gh.column(issue) == "In Review"


UPSTREAM_CALC = {"calc.py": "def add(a, b):\n    return b + a  # fixed upstream\n"}


def gitlab_in_review(daemon: GitLabDaemon) -> tuple[GitLabIssue, MergeRequest, str]:
    """A calc issue labelled by alice, taken by the agent, its merge request open and mergeable: (issue, MR, head)."""
    sim, p = daemon.world.sim, daemon.world.project
    issue, mr = calc_in_review(daemon)
    assert not sim.conflicts(p, mr.target_branch, mr.source_branch)
    head = sim.branch_sha(p, mr.source_branch)
    assert head is not None
    return issue, mr, head


def test_gitlab_a_conflicting_merge_request_with_no_iteration_left_goes_to_needs_human_naming_the_files(
    tmp_path: Path, daemon: GitLabDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKER_BRIDGE__AGENT__MAX_ITERATIONS", "0")
    world = daemon.world
    sim, p = world.sim, world.project
    issue, mr, head = gitlab_in_review(daemon)
    daemon.cycle()  # nothing to do while it merges
    assert list_of(issue) == "workflow::In Review"

    push_to_main(tmp_path, daemon.git.repo_path("acme/shop"), UPSTREAM_CALC)
    assert sim.conflicts(p, mr.target_branch, mr.source_branch)  # GitLab would say `has_conflicts: true`
    daemon.cycle()

    assert list_of(issue) == "Needs Human" and issue.state == "opened"
    [note] = status_notes(world, issue)
    assert "no longer merges into `main`" in note and "`calc.py`" in note and "used its 0 iteration" in note
    assert sim.branch_sha(p, mr.source_branch) == head and mr.state == "opened"  # the branch is left to a person
    assert len(p.mrs) == 1

    daemon.cycle()  # it stays with the person: no run, no second note
    assert list_of(issue) == "Needs Human" and sim.branch_sha(p, mr.source_branch) == head
    assert len(status_notes(world, issue)) == 1


def test_gitlab_a_conflicting_merge_request_is_merged_and_resolved_by_an_iteration(
    tmp_path: Path, daemon: GitLabDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_agent_script(tmp_path, monkeypatch, AGENT, "conflict_agent.py")
    world = daemon.world
    sim, p = world.sim, world.project
    issue, mr, head = gitlab_in_review(daemon)

    base = push_to_main(tmp_path, daemon.git.repo_path("acme/shop"), UPSTREAM_CALC)
    assert sim.conflicts(p, mr.target_branch, mr.source_branch)
    daemon.cycle()

    assert list_of(issue) == "workflow::In Review" and len(p.mrs) == 1 and mr.state == "opened"
    moves = [e.label.name for e in issue.label_events if e.action == "add" and e.user == world.bot]
    assert moves[-2:] == ["workflow::In Progress", "workflow::In Review"]  # it went back to work and returned
    bare = daemon.git.repo_path("acme/shop")
    new_head = sim.branch_sha(p, mr.source_branch)
    assert new_head is not None and new_head != head
    parents = git(bare, "rev-list", "--parents", "-n", "1", new_head).split()[1:]
    assert parents == [head, base]  # a merge commit on top of the reviewed head: a fast-forward push
    seen = git(bare, "show", f"{mr.source_branch}:FEEDBACK_SEEN.txt")
    assert "merge conflict" in seen and "`calc.py`" in seen
    merged = git(bare, "show", f"{mr.source_branch}:calc.py")
    assert "b + a" in merged and "<<<<<<<" not in merged
    assert not sim.conflicts(p, mr.target_branch, mr.source_branch)  # it merges again
    assert "iteration 1 of 2" in status_notes(world, issue)[0]

    daemon.cycle()  # it merges now: nothing more happens
    assert sim.branch_sha(p, mr.source_branch) == new_head and list_of(issue) == "workflow::In Review"
