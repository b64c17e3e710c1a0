"""The local tracker treats ticket files as people's files: their comments, mode and every word of the description
survive a rewrite; a file it cannot read is reported and skipped; a poll re-reads only the files that changed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tracker_bridge.models import PullRequest
from tracker_bridge.protocols import STATUS_MARKER, Trigger
from tracker_bridge_connectors import local
from tracker_bridge_connectors.local import END_MARKER, LocalTracker, TicketFile

# The README's own example, comments included.
README_TICKET = """---
title: slugify() keeps upper case and repeated dashes
status: Backlog          # the card's column; tracker-bridge moves it by rewriting this
labels: [agent-ready]
repo: demo               # optional: overrides the tracker's repository
---
The description: what is wrong, expected vs actual, acceptance criteria.
"""

GOOD = """---
title: A good ticket
status: Backlog
labels: [agent-ready]
---
Fix it.
"""

AN_HOUR_AGO_NS = 3600 * 1_000_000_000


def tracker(folder: Path) -> LocalTracker:
    return LocalTracker("demo", folder, Trigger("agent-ready", "Agent"))


def age(path: Path, seconds: float = 3600) -> None:
    """Give a file an mtime in the past, as on a board whose tickets were written long ago."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)))


def test_moving_a_card_keeps_the_readme_examples_comments_and_the_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "DEMO-1.md"
    path.write_text(README_TICKET, encoding="utf-8")
    path.chmod(0o664)
    t = tracker(tmp_path)

    t.move("DEMO-1", "In Review")
    t.add_label("DEMO-1", "agent-taken")
    pr = PullRequest(id="1", url="file:///repo#agent/DEMO-1", branch="agent/DEMO-1", base="main")
    t.link_pull_request("DEMO-1", pr)
    t.upsert_status_comment("DEMO-1", "pull request open for review")

    text = path.read_text(encoding="utf-8")
    assert "status: In Review        # the card's column; tracker-bridge moves it by rewriting this" in text
    assert "repo: demo               # optional: overrides the tracker's repository" in text
    assert "labels: [agent-ready, agent-taken]" in text
    assert oct(path.stat().st_mode & 0o777) == oct(0o664)
    ticket = t.get_ticket("DEMO-1")
    assert ticket.column == "In Review" and ticket.labels == ("agent-ready", "agent-taken")
    assert ticket.description == "The description: what is wrong, expected vs actual, acceptance criteria."
    assert t.status_comment("DEMO-1") == "pull request open for review"


def test_a_description_that_quotes_the_status_marker_loses_nothing(tmp_path: Path) -> None:
    description = (
        f"The daemon writes `{STATUS_MARKER}` into the file, like this:\n\n"
        f"{STATUS_MARKER}\n\nand everything after the marker must stay: this line too."
    )
    path = tmp_path / "DEMO-1.md"
    path.write_text(f"---\ntitle: quoting\nstatus: Backlog\n---\n{description}\n", encoding="utf-8")
    t = tracker(tmp_path)

    assert t.get_ticket("DEMO-1").description == description
    t.upsert_status_comment("DEMO-1", "first")
    t.upsert_status_comment("DEMO-1", "second")
    t.move("DEMO-1", "In Progress")

    assert t.get_ticket("DEMO-1").description == description
    assert t.status_comment("DEMO-1") == "second"
    assert path.read_text(encoding="utf-8").count(END_MARKER) == 1


def test_a_title_with_a_colon_written_by_the_daemon_is_valid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "DEMO-1.md"
    path.write_text('---\ntitle: "Fix: the colon"\nstatus: Backlog\n---\nBody\n', encoding="utf-8")
    t = tracker(tmp_path)
    t.move("DEMO-1", "Agent: queued")  # a value with ': ' in it must be quoted by the writer
    assert t.get_ticket("DEMO-1").column == "Agent: queued"
    assert t.get_ticket("DEMO-1").title == "Fix: the colon"


POISONED = {
    "BAD-1.md": b"---\ntitle: x\nstatus: Agent\nlabels: 5\n---\nlabels is a number\n",
    "BAD-2.md": b"---\ntitle: caf\xe9\nstatus: Agent\nlabels: [agent-ready]\n---\nLatin-1, not UTF-8\n",
    "BAD-3.md": b"---\ntitle: Fix: the bug\nstatus: Agent\nlabels: [agent-ready]\n---\nunquoted colon\n",
    "BAD-4.md": b"---\ntitle: a\nstatus: [Agent, Done]\nlabels: [agent-ready]\n---\nstatus is a list\n",
    "notes.md": b"---\ntitle: not a ticket name\nlabels: [agent-ready]\n---\n",
}
REASONS = {
    "BAD-1": "labels = 5 is not a list of labels",
    "BAD-2": "not valid UTF-8",
    "BAD-3": "put the value in double quotes, since it contains a colon",
    "BAD-4": "status = ['Agent', 'Done'] must be a single value",
    "notes.md": "is not named like a ticket",
}


def test_each_unreadable_file_is_rejected_with_its_reason_and_the_good_ticket_is_still_found(tmp_path: Path) -> None:
    (tmp_path / "GOOD-1.md").write_text(GOOD, encoding="utf-8")
    for name, raw in POISONED.items():
        (tmp_path / name).write_bytes(raw)
    t = tracker(tmp_path)

    result = t.poll(None)

    assert [ticket.ref for ticket in result.tickets] == ["GOOD-1"]
    reasons = {r.ref: r.reason for r in result.rejected}
    assert set(reasons) == set(REASONS)
    for ref, expected in REASONS.items():
        assert expected in reasons[ref], (ref, reasons[ref])
    # doctor lists the same files; the daemon's start-up check does not refuse the board because of them.
    assert {r.ref for r in t.unreadable()} == set(REASONS)
    assert t.check({"queued": "Agent"}) == []


def test_a_ticket_naming_a_repository_passes_it_through_for_routing(tmp_path: Path) -> None:
    # Whether the repository exists is the engine's routing decision; the tracker reports what the file says.
    (tmp_path / "DEMO-1.md").write_text(GOOD.replace("status: Backlog", "status: Backlog\nrepo: ../../etc"))
    assert tracker(tmp_path).get_ticket("DEMO-1").repo == "../../etc"


def test_an_invalid_board_file_is_a_problem_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "board.yaml").write_text("columns: [Backlog, Agent\n", encoding="utf-8")
    problems = tracker(tmp_path).check({"queued": "Agent"})
    assert len(problems) == 1
    assert "board.yaml" in problems[0].key and "not valid YAML" in problems[0].message


def test_a_poll_rereads_only_the_file_that_changed_on_a_board_of_10000(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(10_000):
        (tmp_path / f"BIG-{i}.md").write_text(GOOD.replace("A good ticket", f"ticket {i}"), encoding="utf-8")
        age(tmp_path / f"BIG-{i}.md")
    t = tracker(tmp_path)
    reads: list[Path] = []
    real_read = TicketFile.read

    def counting_read(path: Path) -> str:
        reads.append(path)
        return real_read(path)

    monkeypatch.setattr(local.TicketFile, "read", staticmethod(counting_read))
    # Start from a cursor newer than every file: the index is built from one listing, no file is read.
    cursor = str(max(p.stat().st_mtime_ns for p in tmp_path.glob("*.md")) + 1)
    first = t.poll(cursor)
    assert reads == [] and first.tickets == []

    changed = tmp_path / "BIG-4242.md"
    changed.write_text(GOOD.replace("status: Backlog", "status: Agent"), encoding="utf-8")
    second = t.poll(first.cursor)

    assert reads == [changed]
    assert [ticket.ref for ticket in second.tickets] == ["BIG-4242"]


def test_a_file_changed_back_to_an_older_mtime_is_still_seen(tmp_path: Path) -> None:
    # The index compares (size, mtime, inode), not "newer than the cursor": a restored backup is a change too.
    path = tmp_path / "DEMO-1.md"
    path.write_text(GOOD, encoding="utf-8")
    age(path)
    t = tracker(tmp_path)
    first = t.poll(None)
    assert [x.ref for x in first.tickets] == ["DEMO-1"]
    path.write_text(GOOD.replace("A good ticket", "A better ticket"), encoding="utf-8")
    age(path, 7200)
    second = t.poll(first.cursor)
    assert [x.title for x in second.tickets] == ["A better ticket"]


def test_a_file_written_within_the_settle_window_is_read_again(tmp_path: Path) -> None:
    # Two writes in one filesystem timestamp tick look alike by (size, mtime); a fresh file is never trusted.
    path = tmp_path / "DEMO-1.md"
    path.write_text(GOOD, encoding="utf-8")
    t = tracker(tmp_path)
    first = t.poll(None)
    second = t.poll(first.cursor)
    assert [x.ref for x in second.tickets] == ["DEMO-1"]


def test_a_poll_whose_result_was_not_kept_is_delivered_again(tmp_path: Path) -> None:
    # The engine saves the cursor after handling the tickets; if it failed, it polls again with the old cursor and
    # must get the same tickets, even though the index has already seen the files.
    path = tmp_path / "DEMO-1.md"
    path.write_text(GOOD, encoding="utf-8")
    age(path)
    t = tracker(tmp_path)
    first = t.poll(None)
    second = t.poll(first.cursor)
    assert second.tickets == [] and second.cursor == first.cursor  # nothing changed: same cursor, nothing read
    path.write_text(GOOD.replace("A good ticket", "A changed ticket"), encoding="utf-8")
    age(path)  # same old mtime as before: only the index can see this change
    third = t.poll(second.cursor)
    assert [x.title for x in third.tickets] == ["A changed ticket"]
    assert third.cursor != second.cursor
    # The engine failed before saving third.cursor: the retry with the old cursor delivers the ticket again.
    retry = t.poll(second.cursor)
    assert [x.title for x in retry.tickets] == ["A changed ticket"]


# --- the approval workflow (issue 15): people's comments with their authors, and who approved -------------------


def test_comments_in_the_front_matter_are_read_with_their_authors_and_stable_ids(tmp_path: Path) -> None:
    (tmp_path / "DEMO-1.md").write_text(
        "---\ntitle: T\nlabels: [agent-ready, agent-approved]\napproved_by: alice\ncomments:\n"
        "  - {author: bob, body: 'Which module?'}\n  - '@tracker-bridge approve'\n---\nBody\n",
        encoding="utf-8",
    )
    t = tracker(tmp_path)
    ticket = t.get_ticket("DEMO-1")
    assert [(c.author, c.body) for c in ticket.discussion] == [("bob", "Which module?"),
                                                               (None, "@tracker-bridge approve")]  # fmt: skip
    assert ticket.comments == ("Which module?", "@tracker-bridge approve")
    assert t.get_ticket("DEMO-1").discussion[0].id == ticket.discussion[0].id
    assert t.approval_actor(ticket) == "alice"
    # Editing a comment makes it another comment (an approval in it is new).
    path = tmp_path / "DEMO-1.md"
    path.write_text(path.read_text(encoding="utf-8").replace("Which module?", "Which file?"), encoding="utf-8")
    assert t.get_ticket("DEMO-1").discussion[0].id != ticket.discussion[0].id


def test_malformed_comments_reject_the_ticket_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "DEMO-1.md").write_text("---\ntitle: T\ncomments: [{author: bob}]\n---\nBody\n", encoding="utf-8")
    (tmp_path / "DEMO-2.md").write_text("---\ntitle: T\ncomments: yes please\n---\nBody\n", encoding="utf-8")
    result = tracker(tmp_path).poll(None)
    reasons = {r.ref: r.reason for r in result.rejected}
    assert "comment 1" in reasons["DEMO-1"] and "Fix: write comments:" in reasons["DEMO-1"]
    assert "not a list of comments" in reasons["DEMO-2"]


def test_doctor_checks_the_awaiting_approval_column_only_when_configured(tmp_path: Path) -> None:
    from tracker_bridge.config import StagesConfig

    (tmp_path / "board.yaml").write_text(
        "columns: [Backlog, Agent, In Progress, In Review, Done, Needs Refinement, Needs Human]\n", encoding="utf-8"
    )
    assert tracker(tmp_path).check(StagesConfig().as_mapping()) == []
    problems = tracker(tmp_path).check(StagesConfig(awaiting_approval="Needs Approval").as_mapping())
    assert [p.key for p in problems] == ["[stages] awaiting_approval"]
    assert "'Needs Approval' is not on the board" in problems[0].message
