"""After opening a pull request the daemon asks the person who triggered the ticket to review it (issue 14), where
the host can; a refusal is a warning in the log, never a failed ticket; an iteration asks no one again."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tests.fakes import FakeCodeHost, World, make_world
from tracker_bridge.models import ChecksState, Stage
from tracker_bridge.protocols import CodeHostError

BRANCH = "agent/T-1-fix-the-bug"


@dataclass
class ReviewingHost(FakeCodeHost):
    """The in-memory host with GitHub's rule: only collaborators, never the pull request's author."""

    collaborators: set[str] = field(default_factory=lambda: {"alice"})
    requested: list[tuple[str, str]] = field(default_factory=list)

    def request_review(self, pr_id: str, username: str) -> None:
        if username not in self.collaborators:
            raise CodeHostError(f"422 Reviews may only be requested from collaborators ({username})", transient=False)
        self.requested.append((pr_id, username))


def world_with(tmp_path: Path, **bridge: object) -> tuple[World, ReviewingHost]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    w = make_world(tmp_path, **bridge)  # type: ignore[arg-type]  # [bridge] settings, as make_world takes them
    host = ReviewingHost(tmp_path / "host")
    w.host = host
    w.engine.hosts = {"app": host}  # type: ignore[dict-item]
    return w, host


def test_the_person_who_triggered_the_ticket_is_asked_to_review_once(tmp_path: Path) -> None:
    w, host = world_with(tmp_path)
    w.tracker.add("T-1")
    w.tracker.actors["T-1"] = "alice"
    w.step()
    assert w.stage("T-1") == "review" and host.requested == [("1", "alice")]
    assert [e.detail for e in w.store.effects(w.row("T-1").id, kind="review_requested")] == ["alice"]
    host.set_pr(BRANCH, checks=ChecksState.FAILING, feedback=["test_x failed"])
    w.step()  # an iteration pushes to the same pull request: no second request
    assert w.row("T-1").iterations == 1 and host.requested == [("1", "alice")]


def test_a_refused_review_request_is_a_warning_and_the_ticket_goes_on(tmp_path: Path) -> None:
    w, host = world_with(tmp_path)
    w.tracker.add("T-1")
    w.tracker.actors["T-1"] = "mallory"  # not a user of the code host
    w.step()
    row = w.row("T-1")
    assert row.stage is Stage.REVIEW and host.requested == [] and list(host.pulls) == [BRANCH]
    assert not w.store.effects(row.id, kind="review_requested")


def test_no_review_is_requested_when_nobody_is_known_or_it_is_turned_off(tmp_path: Path) -> None:
    w, host = world_with(tmp_path)
    w.tracker.add("T-1")  # the tracker cannot say who triggered it
    w.step()
    assert w.stage("T-1") == "review" and host.requested == []

    w2, host2 = world_with(tmp_path / "off", request_review=False)
    w2.tracker.add("T-1")
    w2.tracker.actors["T-1"] = "alice"
    w2.step()
    assert w2.stage("T-1") == "review" and host2.requested == []


def test_a_tracker_user_is_asked_under_the_host_name_bridge_reviewers_gives(tmp_path: Path) -> None:
    """A Jira or Linear user is not a GitHub login: `[bridge] reviewers` maps one to the other."""
    w, host = world_with(tmp_path, reviewers={"Alice Smith": "alice"})
    w.tracker.add("T-1")
    w.tracker.actors["T-1"] = "alice smith "  # case and surrounding spaces never matter
    w.tracker.add("T-2", title="Fix the other bug")
    w.tracker.actors["T-2"] = "Bob Jones"  # not listed: asked under the tracker's name, which the host refuses
    w.step()
    assert w.stage("T-1") == "review" and w.stage("T-2") == "review"
    assert [user for _, user in host.requested] == ["alice"]
