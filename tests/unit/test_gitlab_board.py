"""Board columns <-> GitLab list labels (pure logic)."""

from __future__ import annotations

from tracker_bridge_connectors.gitlab.board import CLOSED, Board

COLUMNS = ["Agent", "In Progress", "In Review", "Done", "Needs Refinement", "Needs Human"]
LISTS = ["Agent", "workflow::in progress", "workflow::in review", "needs refinement", "Needs Human"]


def test_columns_match_list_labels_by_name_or_scoped_tail_and_done_is_closed() -> None:
    board = Board.build(LISTS, COLUMNS, done_column="Done")
    assert board.label_for("Agent") == "Agent"
    assert board.label_for("In Progress") == "workflow::in progress"
    assert board.label_for("Needs Refinement") == "needs refinement"
    assert board.label_for("Done") == CLOSED
    assert board.label_for("QA") is None


def test_a_done_list_label_wins_over_closing() -> None:
    board = Board.build([*LISTS, "Done"], COLUMNS, done_column="Done")
    assert board.label_for("Done") == "Done"


def test_explicit_mapping_wins() -> None:
    board = Board.build(LISTS, COLUMNS, explicit={"In Progress": "doing"}, done_column="Done")
    assert board.label_for("In Progress") == "doing"
    assert board.column_of(["doing"], closed=False) == "In Progress"


def test_column_of_an_issue_and_the_edit_that_moves_it() -> None:
    board = Board.build(LISTS, COLUMNS, done_column="Done")
    assert board.column_of(["bug", "workflow::in review"], closed=False) == "In Review"
    assert board.column_of(["bug"], closed=False) is None
    assert board.column_of(["workflow::in review"], closed=True) == "Done"
    add, remove = board.edit_for(["bug", "Agent", "agent-ready"], "workflow::in progress")
    assert (add, remove) == (["workflow::in progress"], ["Agent"])
    assert board.edit_for(["bug", "workflow::in review"], CLOSED) == ([], ["workflow::in review"])
