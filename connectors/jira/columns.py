"""Columns of the board -> Jira statuses.

A stage names either a workflow status ("In Review") or, with `options = { board = 12 }`, a column of that agile
board, which maps to one or more statuses (board configuration). Either way a card is "in" a column when its status
is one of the column's statuses, and moving it means a transition to one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Call = Callable[..., tuple[Any, Any]]


@dataclass(frozen=True)
class Target:
    ids: frozenset[str] = field(default_factory=frozenset)
    names: frozenset[str] = field(default_factory=frozenset)

    def __bool__(self) -> bool:
        return bool(self.ids or self.names)


class Columns:
    def __init__(self, call: Call, *, board: int | None) -> None:
        self._call = call
        self.board = board
        self._board_columns: list[tuple[str, list[str]]] | None = None
        self._statuses: list[dict[str, Any]] | None = None

    # --- what Jira has (each fetched once per tracker instance) ---------------------------------------------------

    def board_columns(self) -> list[tuple[str, list[str]]]:
        """(column name, status ids) of the board, in board order."""
        if self._board_columns is None:
            data, _ = self._call(
                "GET",
                f"board/{self.board}/configuration",
                f"reading the configuration of board {self.board}",
                agile=True,
            )
            columns = ((data or {}).get("columnConfig") or {}).get("columns") or []
            self._board_columns = [
                (str(c.get("name")), [str(s.get("id")) for s in c.get("statuses") or []]) for c in columns
            ]
        return self._board_columns

    def statuses(self) -> list[dict[str, Any]]:
        if self._statuses is None:
            data, _ = self._call("GET", "status", "listing the workflow statuses")
            self._statuses = list(data or [])
        return self._statuses

    # --- mapping -----------------------------------------------------------------------------------------------

    def statuses_of(self, column: str) -> Target:
        if self.board is not None:
            for name, ids in self.board_columns():
                if name.casefold() == column.casefold():
                    return Target(ids=frozenset(ids))
            return Target()
        return Target(names=frozenset({column.casefold()}))

    def status_ids(self, column: str) -> list[str]:
        if self.board is not None:
            return sorted(self.statuses_of(column).ids)
        return [str(s["id"]) for s in self.statuses() if str(s.get("name", "")).casefold() == column.casefold()]

    @staticmethod
    def matches(status: dict[str, Any], target: Target) -> bool:
        return str(status.get("id")) in target.ids or str(status.get("name", "")).casefold() in target.names

    def column_of(self, status: dict[str, Any]) -> str | None:
        if self.board is not None:
            for name, ids in self.board_columns():
                if str(status.get("id")) in ids:
                    return name
        status_name = status.get("name")
        return str(status_name) if status_name is not None else None

    def exists(self, column: str) -> bool:
        if self.board is not None:
            return bool(self.statuses_of(column))
        return bool(self.status_ids(column))

    def describe_missing(self, column: str) -> str:
        if self.board is not None:
            known = ", ".join(name for name, _ in self.board_columns()) or "none"
            return f"board {self.board} has no column named {column!r} (its columns: {known})"
        known = ", ".join(sorted({str(s.get("name")) for s in self.statuses()})) or "none"
        return f"Jira has no status named {column!r} (statuses: {known})"
