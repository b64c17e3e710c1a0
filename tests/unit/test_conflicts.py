"""Merge conflicts (issue 14): a pull request whose base moved so that it no longer merges gets an iteration that
merges the base and has the agent resolve the conflicts, within `max_iterations`; else Needs Human, the files
named. Rules as table tests; git as real git; the engine on in-memory remotes whose code host keeps a real bare
repository (so the dry-run merge, the merge commit and the push are real)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes import FakeCodeHost, make_world
from tracker_bridge import lifecycle
from tracker_bridge.conflicts import merge_tree_conflicts, start_merge
from tracker_bridge.gitutil import git
from tracker_bridge.lifecycle import TicketView
from tracker_bridge.models import Phase, PullRequest, Stage

BRANCH = "agent/T-1-fix-the-bug"


def pr(**kw: object) -> PullRequest:
    base = {"id": "1", "url": "u", "branch": BRANCH, "base": "main", "head_sha": "h1"}
    return PullRequest.model_validate({**base, **kw})


def view(**kw: object) -> TicketView:
    return TicketView(**{"ref": "T-1", "stage": Stage.REVIEW, "phase": None, **kw})  # type: ignore[arg-type]


# --- rules --------------------------------------------------------------------------------------------------------


def test_a_conflicting_pull_request_gets_an_iteration_that_names_the_files() -> None:
    d = lifecycle.pull_request_decision(
        pr(conflicts=True, feedback=["bob: rename x"]), view(), max_iterations=2, iterated_feedback=None,
        conflict_files=["app.py", "lib/util.py"],
    )  # fmt: skip
    assert d is not None and d.stage is Stage.RUNNING and d.phase is Phase.ITERATING
    assert "`app.py`, `lib/util.py`" in d.reason and d.fields["iterations"] == 1
    feedback = json.loads(d.fields["feedback_json"] or "[]")
    assert lifecycle.asks_merge(feedback) and "bob: rename x" in feedback


def test_with_no_iteration_left_a_conflict_goes_to_a_person_with_the_files_named() -> None:
    d = lifecycle.pull_request_decision(
        pr(conflicts=True), view(iterations=2), max_iterations=2, iterated_feedback=["x"], conflict_files=["app.py"]
    )
    assert d is not None and d.stage is Stage.FAILED
    assert "no longer merges into `main`: conflicts in `app.py`" in d.reason and "a person should" in d.reason


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"conflicts": False}, "it merges"),
        ({"state": "merged", "conflicts": True}, "merged wins"),
    ],
)
def test_no_conflict_iteration_when_it_merges(change: dict[str, object], why: str) -> None:
    d = lifecycle.on_pull_request(pr(**change), stage=Stage.REVIEW, iterations=0, max_iterations=2,
                                  iterated_sha=None, conflict_files=["app.py"])  # fmt: skip
    assert not d.iterate, why


def test_the_head_an_iteration_was_started_for_is_not_asked_twice() -> None:
    # The iteration is running (or failed) on this head: the same conflict is no new request.
    d = lifecycle.on_pull_request(pr(conflicts=True), stage=Stage.REVIEW, iterations=1, max_iterations=3,
                                  iterated_sha="h1", conflict_files=["app.py"])  # fmt: skip
    assert not d.iterate and d.stage is Stage.REVIEW


def test_many_files_are_counted_not_all_listed() -> None:
    text = lifecycle.listed([f"f{i}.py" for i in range(25)])
    assert "`f19.py`" in text and "`f20.py`" not in text and text.endswith("and 5 more")


# --- real git -----------------------------------------------------------------------------------------------------


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def diverged(tmp_path: Path) -> Path:
    """A clone whose branch and `origin/main` both changed app.py (and only the base changed notes.txt)."""
    origin = tmp_path / "origin"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    commit(origin, {"app.py": "x = 1\n", "notes.txt": "a\n"}, "start")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    git(clone, "checkout", "-q", "-b", BRANCH)
    commit(clone, {"app.py": "x = 2\n"}, "agent")
    commit(origin, {"app.py": "x = 3\n", "notes.txt": "b\n"}, "base moved")
    git(clone, "fetch", "-q", "origin")
    return clone


def test_the_dry_run_names_the_conflicting_files_and_touches_nothing(diverged: Path) -> None:
    head = git(diverged, "rev-parse", "HEAD")
    assert merge_tree_conflicts(diverged, "HEAD", "refs/remotes/origin/main") == ["app.py"]
    assert git(diverged, "rev-parse", "HEAD") == head and not git(diverged, "status", "--porcelain")
    assert merge_tree_conflicts(diverged, "HEAD", "HEAD~1") == []  # an ancestor merges cleanly


def test_start_merge_leaves_markers_and_the_next_commit_is_a_merge_commit(diverged: Path) -> None:
    base_sha, files = start_merge(diverged, "main")
    assert files == ["app.py"] and "<<<<<<<" in (diverged / "app.py").read_text()
    assert (diverged / "notes.txt").read_text() == "b\n"  # the base's other changes merged in
    (diverged / "app.py").write_text("x = 3  # both\n")
    git(diverged, "add", "-A")
    git(diverged, "commit", "-q", "--no-verify", "-m", "resolved")
    parents = git(diverged, "rev-list", "--parents", "-n", "1", "HEAD").split()[1:]
    assert parents[1] == base_sha and len(parents) == 2


# --- the engine ---------------------------------------------------------------------------------------------------


@dataclass
class GitHost(FakeCodeHost):
    """The in-memory host with a real bare repository behind clone and push, and a pull request that says whether
    it merges as a host's test merge would."""

    bare: Path = Path()

    def clone(self, dest: Path, branch: str | None = None) -> None:
        self.calls.append(("clone", str(dest)))
        ref = branch if branch and branch in self.pushed else "main"
        git(dest.parent, "clone", "-q", "--branch", ref, str(self.bare), str(dest))

    def push(self, workspace: Path, branch: str) -> None:
        git(workspace, "push", "-q", "--force", str(self.bare), f"{branch}:refs/heads/{branch}")
        super().push(workspace, branch)

    def get_pull_request(self, pr_id: str) -> PullRequest:
        found = super().get_pull_request(pr_id)
        conflicts = bool(merge_tree_conflicts(self.bare, f"refs/heads/{found.base}", f"refs/heads/{found.branch}"))
        return found.model_copy(update={"conflicts": conflicts})


def git_world(tmp_path: Path, **agent: object):  # type: ignore[no-untyped-def]
    w = make_world(tmp_path, agent_config=agent or None)
    seed = tmp_path / "seed"
    seed.mkdir()
    git(seed, "init", "-q", "-b", "main")
    commit(seed, {"app.py": "def answer():\n    return 41\n"}, "start")
    bare = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(seed), str(bare))
    host = GitHost(tmp_path / "host", bare=bare)
    w.host = host
    w.engine.hosts = {"app": host}  # type: ignore[dict-item]
    return w, seed


def move_base(w, seed: Path) -> None:  # type: ignore[no-untyped-def]
    """A person pushes to main a change to the line the agent changed."""
    commit(seed, {"app.py": "def answer():\n    return 43\n", "README": "base moved\n"}, "base moved")
    git(seed, "push", "-q", str(w.host.bare), "main")


def test_a_conflict_is_resolved_by_an_iteration_that_pushes_a_merge_commit(tmp_path: Path) -> None:
    w, seed = git_world(tmp_path)
    w.tracker.add("T-1")
    w.step()
    first_head = w.host.pushed[BRANCH]
    move_base(w, seed)
    w.step()
    row = w.row("T-1")
    assert row.stage is Stage.REVIEW and row.iterations == 1, row.reason
    prompt = w.agent.requests[1].prompt
    assert "merge conflict" in prompt and "`app.py`" in prompt
    head = w.host.pushed[BRANCH]
    parents = git(w.host.bare, "rev-list", "--parents", "-n", "1", head).split()[1:]
    assert parents[0] == first_head and parents[1] == git(w.host.bare, "rev-parse", "main")  # fast-forward merge
    assert not w.host.get_pull_request("1").conflicts and len(w.host.pulls) == 1
    w.step()  # settled: no further iteration
    assert len(w.agent.requests) == 2


def test_a_conflict_with_no_iteration_left_goes_to_needs_human_naming_the_files(tmp_path: Path) -> None:
    w, seed = git_world(tmp_path, max_iterations=0)
    w.tracker.add("T-1")
    w.step()
    move_base(w, seed)
    w.step()
    row = w.row("T-1")
    assert row.stage is Stage.FAILED and w.tracker.columns["T-1"] == "Needs Human"
    assert "conflicts in `app.py`" in w.tracker.comments["T-1"] and len(w.agent.requests) == 1
