"""Board columns as GitLab sees them: an issue-board list is a label, and the closed list is the issue's state.

The stage columns of the configuration ("In Progress", "Done", ...) are mapped to list labels: an explicit
`options.lists` entry wins, else a list whose label has the column's name (case aside), else a scoped list label
whose last part has it (`workflow::In Progress`). The done column, when no list label matches it, is GitLab's
built-in Closed list: moving there closes the issue.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

CLOSED = "__closed__"


def scoped_tail(label: str) -> str:
    """`workflow::in review` -> `in review`; labels without a scope are returned as they are."""
    return label.rsplit("::", 1)[-1].strip()


@dataclass(frozen=True)
class Board:
    """Column names <-> list labels for one issue board."""

    list_labels: tuple[str, ...]  # the board's list labels, in board order
    column_to_label: Mapping[str, str]  # column name -> list label or CLOSED
    closed_column: str | None

    @classmethod
    def build(
        cls,
        list_labels: Iterable[str],
        columns: Iterable[str],
        *,
        explicit: Mapping[str, str] | None = None,
        done_column: str | None = None,
    ) -> Board:
        labels = tuple(list_labels)
        mapping: dict[str, str] = {}
        for column in columns:
            label = (explicit or {}).get(column) or _match(column, labels)
            if label is not None:
                mapping[column] = label
            elif column == done_column or column.lower() == "closed":
                mapping[column] = CLOSED
        # Explicit labels count as list labels even when the board does not show them (a board-less set-up).
        extra = tuple(v for v in (explicit or {}).values() if v not in labels and v != CLOSED)
        closed = next((c for c, v in mapping.items() if v == CLOSED), None)
        return cls(labels + extra, mapping, closed)

    def label_for(self, column: str) -> str | None:
        """The list label of `column`, CLOSED for the closed list, None when the board has no such list."""
        return self.column_to_label.get(column)

    def column_of(self, labels: Iterable[str], *, closed: bool) -> str | None:
        """The column an issue is in: the closed list when closed, else the first board list among its labels."""
        if closed:
            return self.closed_column or "Closed"
        present = set(labels)
        for label in self.list_labels:
            if label in present:
                for column, mapped in self.column_to_label.items():
                    if mapped == label:
                        return column
                return label
        return None  # GitLab's "Open" list: no list label

    def edit_for(self, labels: Iterable[str], target: str) -> tuple[list[str], list[str]]:
        """(labels to add, labels to remove) that put an issue with `labels` into the list labelled `target`."""
        present = list(labels)
        remove = [x for x in present if x in self.list_labels and x != target]
        add = [] if target == CLOSED or target in present else [target]
        return add, remove


def _match(column: str, labels: tuple[str, ...]) -> str | None:
    wanted = column.strip().lower()
    for label in labels:
        if label.lower() == wanted:
            return label
    for label in labels:
        if "::" in label and scoped_tail(label).lower() == wanted:
            return label
    return None
