"""The engine with several repositories and a team's review capacity, on the in-memory remotes (tests/fakes.py):
tickets routed by label to their repository's host, an unroutable ticket declined with the choices, dispatch held
by `[bridge] max_open_reviews`, and a failed CI job's log tail handed to the next iteration."""

from __future__ import annotations

from pathlib import Path

from tests.fakes import FakeCodeHost, make_world
from tracker_bridge.config import RepoConfig
from tracker_bridge.models import ChecksState, PullRequestState, Stage


def two_repo_world(tmp_path: Path, **bridge: object):  # type: ignore[no-untyped-def]
    w = make_world(tmp_path, **bridge)  # type: ignore[arg-type]
    web = FakeCodeHost(tmp_path / "web-host", name="web")
    w.settings.repos.append(RepoConfig(name="web", host="local", url="./repo", test_command=""))
    w.settings.trackers[0] = w.settings.trackers[0].model_copy(update={"repo": ["app", "web"]})
    w.engine.hosts["web"] = web  # type: ignore[assignment]
    return w, web


def test_a_repo_label_sends_the_branch_to_that_repository(tmp_path: Path) -> None:
    w, web = two_repo_world(tmp_path)
    w.tracker.add("T-1", labels=("agent-ready", "repo:web"))
    w.tracker.add("T-2", title="Other bug")
    w.step()
    assert w.stage("T-1") == "review" and w.stage("T-2") == "review"
    assert w.row("T-1").repo == "web" and list(web.pulls) == ["agent/T-1-fix-the-bug"]
    assert list(w.host.pulls) == ["agent/T-2-other-bug"]  # no label: the tracker's first repository


def test_a_ticket_naming_an_unknown_repository_is_declined_with_the_choices(tmp_path: Path) -> None:
    w, web = two_repo_world(tmp_path)
    w.tracker.add("T-1", labels=("agent-ready", "repo:mobile"))
    w.step()
    row = w.row("T-1")
    assert row.stage is Stage.DECLINED
    assert "'mobile'" in row.reason and "Choices: app, web" in row.reason
    assert "Choices: app, web" in w.tracker.comments["T-1"]
    assert not w.agent.requests and not web.pulls and not w.host.pulls
    # the person fixes the label: the changed ticket is evaluated again and goes to web
    w.tracker.remove_label("T-1", "repo:mobile")
    w.tracker.add_label("T-1", "repo:web")
    w.step()
    assert w.stage("T-1") == "review" and list(web.pulls)


def test_max_open_reviews_holds_dispatch_until_a_pull_request_merges(tmp_path: Path) -> None:
    w = make_world(tmp_path, max_open_reviews=1)
    for ref in ("T-1", "T-2", "T-3"):
        w.tracker.add(ref, title=f"Bug {ref}")
    w.step()
    assert [w.stage(r) for r in ("T-1", "T-2", "T-3")] == ["review", "queued", "queued"]
    assert "max_open_reviews = 1" in w.tracker.comments["T-2"]
    assert "waiting for review capacity" in w.tracker.comments["T-3"]
    w.step()
    assert [w.stage(r) for r in ("T-2", "T-3")] == ["queued", "queued"] and len(w.agent.requests) == 1
    w.host.set_pr("agent/T-1-bug-t-1", state=PullRequestState.MERGED)
    w.step()
    assert [w.stage(r) for r in ("T-1", "T-2", "T-3")] == ["done", "review", "queued"]
    assert len(w.agent.requests) == 2
    w.host.set_pr("agent/T-2-bug-t-2", state=PullRequestState.CLOSED)  # a close frees the slot too
    w.step()
    assert w.stage("T-3") == "review"


def test_without_max_open_reviews_every_queued_ticket_starts(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    for ref in ("T-1", "T-2", "T-3"):
        w.tracker.add(ref, title=f"Bug {ref}")
    w.step()
    w.step()
    assert [w.stage(r) for r in ("T-1", "T-2", "T-3")] == ["review", "review", "review"]


class LoggedHost(FakeCodeHost):
    """A fake host that can read failed CI jobs' logs (protocols.CheckLogs)."""

    def failed_check_logs(self, pr_id: str) -> dict[str, str]:
        return {"tests": "setup noise\n" * 5 + "FAILED test_app.py::test_answer - assert 41 == 42\n"}


def test_an_iteration_for_failing_ci_gets_the_jobs_log_tail(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    host = LoggedHost(tmp_path / "host")
    w.engine.hosts["app"] = host  # type: ignore[assignment]
    w.host = host
    w.tracker.add("T-1")
    w.step()
    assert w.stage("T-1") == "review"
    host.set_pr("agent/T-1-fix-the-bug", checks=ChecksState.FAILING, feedback=["CI check `tests` failed"])
    w.step()
    assert len(w.agent.requests) == 2
    feedback = "\n".join(w.agent.requests[1].prompt.splitlines())
    assert "FAILED test_app.py::test_answer - assert 41 == 42" in feedback
    assert "The CI check `tests` failed" in feedback
    assert "FAILED test_app.py" not in (w.row("T-1").feedback_json or "")  # the lifecycle compares pr.feedback only
