"""The local tracker: a folder of Markdown tickets, the embedded default that needs no account.

Each ticket is `<KEY>.md` with YAML front matter (`title`, `status` = its column, `labels`, optionally `repo`,
`triggered_by`) and the description as body. tracker-bridge moves the card by rewriting `status`, links the pull
request as `pull_request`, and keeps its status comment in the same file below the description, between markers, so
a person reading the file sees it. An optional `board.yaml` (`columns: [...]`) lists the board's columns.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from tracker_bridge.config import Settings, TrackerConfig
from tracker_bridge.models import PullRequest, Ticket
from tracker_bridge.protocols import STATUS_MARKER, PollResult, Problem, TrackerError, Trigger

END_MARKER = "<!-- /tracker-bridge:status -->"
KEY_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*-\d+$")
BOARD_FILE = "board.yaml"


class TicketFile:
    """One ticket file split into front matter, description and the status comment."""

    def __init__(self, path: Path) -> None:
        self.path = path
        text = path.read_text(encoding="utf-8")
        self.meta: dict[str, Any] = {}
        body = text
        if text.startswith("---"):
            parts = text.split("\n---", 1)
            if len(parts) == 2:
                try:
                    loaded = yaml.safe_load(parts[0][3:]) or {}
                except yaml.YAMLError as exc:
                    raise TrackerError(f"{path}: front matter is not valid YAML ({exc})") from exc
                if not isinstance(loaded, dict):
                    raise TrackerError(f"{path}: front matter must be a mapping of keys to values")
                self.meta = loaded
                body = parts[1].lstrip("-").lstrip("\n")
        self.description: str
        self.comment: str | None
        self.after: str
        start = body.find(STATUS_MARKER)
        if start >= 0:
            end = body.find(END_MARKER, start)
            self.description = body[:start].rstrip()
            self.comment = body[start + len(STATUS_MARKER) : end if end >= 0 else len(body)].strip("\n")
            self.after = body[end + len(END_MARKER) :].strip("\n") if end >= 0 else ""
        else:
            self.description, self.comment, self.after = body.rstrip(), None, ""

    def render(self) -> str:
        front = yaml.safe_dump(self.meta, sort_keys=False, allow_unicode=True).strip()
        out = f"---\n{front}\n---\n{self.description}\n"
        if self.comment is not None:
            out += f"\n{STATUS_MARKER}\n{self.comment}\n{END_MARKER}\n"
        if self.after:
            out += f"\n{self.after}\n"
        return out

    def save(self) -> None:
        # Write-then-rename: a crash leaves either the old file or the new one, never half a ticket.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(self.render())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


class LocalTracker:
    def __init__(self, name: str, folder: Path, trigger: Trigger) -> None:
        self.name = name
        self.folder = folder
        self.trigger = trigger
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: TrackerConfig, settings: Settings) -> LocalTracker:
        return cls(config.name, settings.path(config.url), Trigger(settings.trigger.label, settings.trigger.column))

    # --- reading ---------------------------------------------------------------------------------------------------

    def _path(self, ref: str) -> Path:
        if not KEY_PATTERN.match(ref):
            raise TrackerError(f"{ref!r} is not a local ticket key (expected like DEMO-1)")
        return self.folder / f"{ref}.md"

    def _load(self, ref: str) -> TicketFile:
        path = self._path(ref)
        if not path.is_file():
            raise TrackerError(f"ticket {ref} not found: {path} does not exist")
        return TicketFile(path)

    def _ticket(self, ref: str, tf: TicketFile) -> Ticket:
        labels = tf.meta.get("labels") or []
        if isinstance(labels, str):
            labels = [s.strip() for s in labels.split(",") if s.strip()]
        mtime = datetime.fromtimestamp(tf.path.stat().st_mtime, UTC)
        return Ticket(
            ref=ref,
            tracker=self.name,
            title=str(tf.meta.get("title") or ref),
            description=tf.description,
            labels=tuple(str(label) for label in labels),
            column=str(tf.meta["status"]) if tf.meta.get("status") is not None else None,
            url=tf.path.resolve().as_uri(),
            repo=str(tf.meta["repo"]) if tf.meta.get("repo") else None,
            updated_at=mtime,
        )

    def columns(self) -> list[str] | None:
        board = self.folder / BOARD_FILE
        if not board.is_file():
            return None
        data = yaml.safe_load(board.read_text(encoding="utf-8")) or {}
        return [str(c) for c in data.get("columns", [])]

    def check(self, columns: dict[str, str] | Any) -> list[Problem]:
        if not self.folder.is_dir():
            return [Problem(f"trackers.{self.name}.url", f"{self.folder} is not a folder", "create it")]
        problems: list[Problem] = []
        for f in sorted(self.folder.glob("*.md")):
            try:
                TicketFile(f)
            except TrackerError as exc:
                problems.append(Problem(f"trackers.{self.name}", str(exc), "correct the front matter"))
        board = self.columns()
        if board is not None:
            for stage, column in dict(columns).items():
                if column not in board:
                    problems.append(
                        Problem(
                            f"[stages] {stage}",
                            f"column {column!r} is not on the board of tracker {self.name!r} "
                            f"({self.folder / BOARD_FILE} lists: {', '.join(board)})",
                            f"add {column!r} to columns in {BOARD_FILE}, or set [stages] {stage} to one of those",
                        )
                    )
        return problems

    def poll(self, cursor: str | None) -> PollResult:
        since = int(cursor) if cursor else -1
        newest = since
        found: list[Ticket] = []
        for f in sorted(self.folder.glob("*.md")):
            ref = f.stem
            if not KEY_PATTERN.match(ref):
                continue
            mtime = f.stat().st_mtime_ns
            newest = max(newest, mtime)
            if mtime < since:
                continue
            ticket = self._ticket(ref, TicketFile(f))
            if self.trigger.matches(ticket):
                found.append(ticket)
        return PollResult(found, str(newest) if newest >= 0 else cursor)

    def get_ticket(self, ref: str) -> Ticket:
        return self._ticket(ref, self._load(ref))

    # --- changing --------------------------------------------------------------------------------------------------

    def _edit(self, ref: str, change: Any) -> None:
        with self._lock:
            tf = self._load(ref)
            if change(tf) is not False:
                tf.save()

    def move(self, ref: str, column: str) -> None:
        board = self.columns()
        if board is not None and column not in board:
            raise TrackerError(f"cannot move {ref} to {column!r}: the board has no such column")

        def change(tf: TicketFile) -> bool:
            if tf.meta.get("status") == column:
                return False
            tf.meta["status"] = column
            return True

        self._edit(ref, change)

    def upsert_status_comment(self, ref: str, body: str) -> None:
        def change(tf: TicketFile) -> bool:
            if tf.comment is not None and tf.comment.strip() == body.strip():
                return False
            tf.comment = body.strip()
            return True

        self._edit(ref, change)

    def status_comment(self, ref: str) -> str | None:
        return self._load(ref).comment

    def add_label(self, ref: str, label: str) -> None:
        def change(tf: TicketFile) -> bool:
            labels = list(tf.meta.get("labels") or [])
            if label in labels:
                return False
            tf.meta["labels"] = [*labels, label]
            return True

        self._edit(ref, change)

    def remove_label(self, ref: str, label: str) -> None:
        def change(tf: TicketFile) -> bool:
            labels = list(tf.meta.get("labels") or [])
            if label not in labels:
                return False
            tf.meta["labels"] = [x for x in labels if x != label]
            return True

        self._edit(ref, change)

    def trigger_actor(self, ticket: Ticket) -> str | None:
        # A file has no history of who labelled it; a `triggered_by` key in the front matter says it when needed.
        value = self._load(ticket.ref).meta.get("triggered_by")
        return str(value) if value else None

    def link_pull_request(self, ref: str, pr: PullRequest) -> None:
        def change(tf: TicketFile) -> bool:
            if tf.meta.get("pull_request") == pr.url:
                return False
            tf.meta["pull_request"] = pr.url
            return True

        self._edit(ref, change)
