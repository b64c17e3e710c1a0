"""The local tracker: a folder of Markdown tickets, the embedded default that needs no account.

Each ticket is `<KEY>.md` with YAML front matter (`title`, `status` = its column, `labels`, optionally `repo`,
`triggered_by`, `approved_by`, and people's `comments` as a list of `{author, body}`) and the description as body.
tracker-bridge moves the card by rewriting `status`, links the pull request as `pull_request`, and keeps its status
comment in the same file below the description, between markers, so a person reading the file sees it. An optional
`board.yaml` (`columns: [...]`) lists the board's columns.

The files belong to people as much as to the daemon, so:
- the front matter is edited round-trip (ruamel.yaml): comments, quoting and key order survive a move;
- a rewrite keeps the file's mode (and owner where allowed), and is checked before it replaces the file: the new text
  must read back to the same description and comment, so no description text is ever lost;
- a file that cannot be read (bad YAML, invalid UTF-8, `labels: 5`, a name that is not a ticket key) is reported in
  `PollResult.rejected` with the reason and skipped; one bad file never stops the rest of the board;
- polling keeps an index of (size, mtime, inode) per file and re-reads only the files that changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from tracker_bridge.config import Settings, TrackerConfig
from tracker_bridge.models import PullRequest, Ticket, TicketComment
from tracker_bridge.protocols import STATUS_MARKER, PollResult, Problem, RejectedTicket, TrackerError, Trigger

log = structlog.get_logger(__name__)

END_MARKER = "<!-- /tracker-bridge:status -->"
KEY_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*-\d+$")
BOARD_FILE = "board.yaml"
# A file changed this recently may change again within the same filesystem timestamp tick (coarse on most file
# systems; 2 s on FAT), unseen by (size, mtime); it stays out of the index and is read again next cycle.
SETTLE_NS = 2_000_000_000
_FENCE = re.compile(r"^---[ \t]*\r?$", re.MULTILINE)


def _yaml(round_trip: bool = True) -> YAML:
    """A parser: round-trip (keeps comments and style, for edits) or plain (2-3x faster, for reading a board).
    Both are ruamel's YAML 1.2, so a file reads the same either way. One instance per use: ruamel's YAML objects
    are not thread-safe, and the engine edits from run threads."""
    if not round_trip:
        return YAML(typ="safe", pure=True)
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096  # never fold a long title onto a second line
    return y


def _yaml_reason(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    if "mapping values are not allowed here" in text:
        fix = "put the value in double quotes, since it contains a colon"
        return f"front matter is not valid YAML ({text}). Fix: {fix}"
    return f"front matter is not valid YAML ({text}). Fix: correct the front matter"


def _split_status(body: str) -> tuple[str, str | None, str]:
    """(description, status comment, text after it). The status block is the LAST marker line that is followed by
    an end-marker line: a description may quote the marker (inline or on a line of its own) without losing text."""
    lines = body.split("\n")
    for start in range(len(lines) - 1, -1, -1):
        if lines[start].strip() != STATUS_MARKER:
            continue
        for end in range(start + 1, len(lines)):
            if lines[end].strip() == END_MARKER:
                description = "\n".join(lines[:start]).rstrip()
                comment = "\n".join(lines[start + 1 : end]).strip("\n")
                after = "\n".join(lines[end + 1 :]).strip("\n")
                return description, comment, after
    return body.rstrip(), None, ""


class TicketFile:
    """One ticket file split into front matter, description and the status comment."""

    def __init__(self, path: Path, text: str | None = None, *, edit: bool = False) -> None:
        """`edit`: parse for a rewrite (round-trip: comments and style kept); otherwise only for reading."""
        self.path = path
        self._edit = edit
        if text is None:
            text = self.read(path)
        self.meta: dict[str, Any] = CommentedMap()
        self._had_front = False
        body = text
        if text.startswith("---"):
            first = text.find("\n")
            close = _FENCE.search(text, first + 1) if first >= 0 and not text[3:first].strip() else None
            if close is not None:
                loaded = self._parse_front(text[first + 1 : close.start()])
                self.meta, self._had_front = loaded, True
                body = text[close.end() :].removeprefix("\n")
        self.description, self.comment, self.after = _split_status(body)

    @staticmethod
    def read(path: Path) -> str:
        raw = path.read_bytes()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TrackerError(
                f"{path.name}: not valid UTF-8 (byte {exc.start}). Fix: save the file as UTF-8"
            ) from exc

    def _parse_front(self, front: str) -> dict[str, Any]:
        try:
            loaded = _yaml(self._edit).load(front) if front.strip() else CommentedMap()
        except Exception as exc:  # any parser failure (syntax, duplicate key, odd tag) means an unreadable ticket
            raise TrackerError(f"{self.path.name}: {_yaml_reason(exc)}") from exc
        if not isinstance(loaded, dict):
            raise TrackerError(
                f"{self.path.name}: front matter must be a mapping of keys to values (title: ..., status: ...)"
            )
        return loaded

    # --- typed fields, checked: a wrong type is a reason to reject the ticket, never a crash later ----------------

    def labels(self) -> list[str]:
        value = self.meta.get("labels")
        if value is None:
            return []
        if isinstance(value, str):
            return [s.strip() for s in value.split(",") if s.strip()]
        if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
            return [str(v) for v in value]
        raise TrackerError(
            f"{self.path.name}: labels = {value!r} is not a list of labels. Fix: write labels: [agent-ready]"
        )

    def comments(self) -> list[TicketComment]:
        """People's comments from the front matter: `comments: [{author: alice, body: "..."}, "plain text"]`.
        A comment's id is its position and a digest of its text, so editing a comment makes it a new one."""
        value = self.meta.get("comments")
        if value is None:
            return []
        fix = 'Fix: write comments: [{author: alice, body: "@tracker-bridge approve"}]'
        if not isinstance(value, list):
            raise TrackerError(f"{self.path.name}: comments = {value!r} is not a list of comments. {fix}")
        out: list[TicketComment] = []
        for n, item in enumerate(value, 1):
            if isinstance(item, str):
                author, body = None, item
            elif isinstance(item, dict) and isinstance(item.get("body"), str):
                who = item.get("author")
                author, body = (str(who) if isinstance(who, str | int) and str(who) else None), item["body"]
            else:
                raise TrackerError(f"{self.path.name}: comment {n} ({item!r}) has no text body. {fix}")
            digest = hashlib.sha256(f"{author}\n{body}".encode()).hexdigest()[:12]
            out.append(TicketComment(id=f"{n}-{digest}", author=author, body=body))
        return out

    def scalar(self, key: str) -> str | None:
        value = self.meta.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, str | int | float):
            return str(value)
        raise TrackerError(f"{self.path.name}: {key} = {value!r} must be a single value. Fix: write {key}: <text>")

    # --- writing -------------------------------------------------------------------------------------------------

    def render(self) -> str:
        if len(self.meta) or self._had_front:
            buf = io.StringIO()
            _yaml().dump(self.meta, buf)
            out = f"---\n{buf.getvalue().rstrip()}\n---\n{self.description}\n"
        else:
            out = f"{self.description}\n"
        if self.comment is not None:
            out += f"\n{STATUS_MARKER}\n{self.comment}\n{END_MARKER}\n"
        if self.after:
            out += f"\n{self.after}\n"
        return out

    def set_labels(self, labels: list[str]) -> None:
        current = self.meta.get("labels")
        if isinstance(current, CommentedSeq):  # edit in place: keeps flow style and comments
            current[:] = labels
        else:
            self.meta["labels"] = labels

    def save(self) -> None:
        text = self.render()
        # Read the new text back before it replaces the file: it must be valid and keep every word of the
        # description; otherwise the edit is refused rather than a ticket damaged.
        again = TicketFile(self.path, text)
        if again.description != self.description.rstrip() or again.comment != self.comment:
            raise TrackerError(f"{self.path.name}: refusing a rewrite that would change the description")
        try:
            st: os.stat_result | None = self.path.stat()
        except FileNotFoundError:
            st = None
        # Write-then-rename: a crash leaves either the old file or the new one, never half a ticket.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                if st is not None:  # mkstemp creates 0600; the ticket keeps the mode (and owner) it had
                    os.fchmod(fh.fileno(), stat.S_IMODE(st.st_mode))
                    # Only root may give a file away; the mode is what matters for readers.
                    with contextlib.suppress(PermissionError):
                        os.fchown(fh.fileno(), st.st_uid, st.st_gid)
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@dataclass(frozen=True)
class _Seen:
    """What the index remembers of a file: enough to tell that it changed without reading it."""

    size: int
    mtime_ns: int
    inode: int


class LocalTracker:
    # Comments carry their authors and stable ids (front matter `comments`): `@mention` follow-ups read them.
    comments_with_authors = True

    def __init__(self, name: str, folder: Path, trigger: Trigger) -> None:
        self.name = name
        self.folder = folder
        self.trigger = trigger
        self._lock = threading.Lock()
        self._index: dict[str, _Seen] = {}
        self._index_cursor: str | None = None  # the cursor the index belongs to; another cursor means a full read
        self._generation = 0  # bumped by each poll that read something, so that poll's cursor is new
        self._warned: dict[str, str] = {}

    @classmethod
    def from_config(cls, config: TrackerConfig, settings: Settings) -> LocalTracker:
        return cls(config.name, settings.path(config.url), Trigger(settings.trigger.label, settings.trigger.column))

    # --- reading ---------------------------------------------------------------------------------------------------

    def _path(self, ref: str) -> Path:
        if not KEY_PATTERN.match(ref):
            raise TrackerError(f"{ref!r} is not a local ticket key (expected like DEMO-1)")
        return self.folder / f"{ref}.md"

    def _load(self, ref: str, *, edit: bool = False) -> TicketFile:
        path = self._path(ref)
        if not path.is_file():
            raise TrackerError(f"ticket {ref} not found: {path} does not exist", transient=False)
        return TicketFile(path, edit=edit)

    def _ticket(self, ref: str, tf: TicketFile) -> Ticket:
        mtime = datetime.fromtimestamp(tf.path.stat().st_mtime, UTC)
        discussion = tuple(tf.comments())
        return Ticket(
            ref=ref,
            tracker=self.name,
            title=tf.scalar("title") or ref,
            description=tf.description,
            labels=tuple(tf.labels()),
            column=tf.scalar("status"),
            url=tf.path.resolve().as_uri(),
            repo=tf.scalar("repo"),
            updated_at=mtime,
            comments=tuple(c.body for c in discussion),
            discussion=discussion,
        )

    def columns(self) -> list[str] | None:
        board = self.folder / BOARD_FILE
        if not board.is_file():
            return None
        try:
            data = _yaml(round_trip=False).load(board.read_text(encoding="utf-8")) or {}
        except Exception as exc:  # any parser or decoding failure: the board file is unusable
            raise TrackerError(f"{board}: not valid YAML ({' '.join(str(exc).split())})") from exc
        columns = data.get("columns") if isinstance(data, Mapping) else None
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise TrackerError(f"{board}: expected `columns: [Backlog, Agent, ...]`, found {data!r}")
        return [str(c) for c in columns]

    def check(self, columns: Mapping[str, str]) -> list[Problem]:
        """Problems that stop the daemon: the folder and the board. Unreadable tickets are not among them (they are
        skipped and reported by poll); `unreadable()` lists them for `doctor`."""
        if not self.folder.is_dir():
            return [Problem(f"trackers.{self.name}.url", f"{self.folder} is not a folder", "create it")]
        problems: list[Problem] = []
        try:
            board = self.columns()
        except TrackerError as exc:
            return [Problem(f"trackers.{self.name} {BOARD_FILE}", str(exc), "write it as `columns: [Backlog, ...]`")]
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

    def unreadable(self) -> list[RejectedTicket]:
        """Every file in the folder that poll skips, with the reason (for `doctor`)."""
        rejected: list[RejectedTicket] = []
        for path in sorted(self.folder.glob("*.md")):
            ref, reason = self._read_one(path)[1:]
            if reason is not None:
                rejected.append(RejectedTicket(ref, reason))
        return rejected

    def _read_one(self, path: Path) -> tuple[Ticket | None, str, str | None]:
        """(ticket, ref, None) or (None, ref, reason it cannot be read)."""
        ref = path.stem
        if not KEY_PATTERN.match(ref):
            return None, path.name, (
                f"{path.name} is not named like a ticket (<KEY>-<number>.md, e.g. DEMO-1.md), so it is not read. "
                "Fix: rename it, or move it out of the tickets folder"
            )
        try:
            return self._ticket(ref, TicketFile(path)), ref, None
        except TrackerError as exc:
            return None, ref, str(exc)
        except OSError as exc:
            return None, ref, f"{path.name}: cannot be read ({exc.strerror}). Fix: check its permissions"

    def poll(self, cursor: str | None) -> PollResult:
        # The cursor is "<newest mtime_ns>[.<generation>]". The generation makes the cursor of a poll that read
        # files differ from the one before, so when the engine did not keep that poll's result (it saves the cursor
        # last), the next poll sees an unknown cursor and reads by mtime again instead of trusting the index.
        since = int(cursor.split(".")[0]) if cursor else -1
        # The index only answers "unchanged since I last read it" for the cursor it handed out; any other cursor
        # (a restart, a poll whose result was not kept) gets the plain mtime rule.
        use_index = cursor is not None and cursor == self._index_cursor
        if not use_index:
            self._index = {}
        newest = since
        now = time.time_ns()
        listed: dict[str, _Seen] = {}
        changed: list[Path] = []
        with os.scandir(self.folder) as entries:
            for entry in entries:
                if not entry.name.endswith(".md") or entry.name.startswith("."):
                    continue
                try:
                    st = entry.stat()
                except OSError:
                    continue  # removed between listing and stat
                if not stat.S_ISREG(st.st_mode):
                    continue
                seen = _Seen(st.st_size, st.st_mtime_ns, st.st_ino)
                listed[entry.name] = seen
                newest = max(newest, st.st_mtime_ns)
                unchanged = self._index.get(entry.name) == seen if use_index else st.st_mtime_ns < since
                if unchanged:
                    continue
                changed.append(Path(entry.path))
        found: list[Ticket] = []
        rejected: list[RejectedTicket] = []
        for path in sorted(changed):
            ticket, ref, reason = self._read_one(path)
            if reason is not None:
                rejected.append(RejectedTicket(ref, reason))
                if self._warned.get(ref) != reason:
                    log.warning("ticket.unreadable", tracker=self.name, ref=ref, reason=reason)
                    self._warned[ref] = reason
            else:
                self._warned.pop(ref, None)
                if ticket is not None and self.trigger.matches(ticket):
                    found.append(ticket)
        # Files changed within the settle window stay out of the index, so a second write in the same timestamp
        # tick is still seen next cycle.
        self._index = {name: s for name, s in listed.items() if now - s.mtime_ns > SETTLE_NS}
        if changed:
            self._generation += 1
            new_cursor: str | None = f"{newest}.{self._generation}"
        elif use_index:
            new_cursor = cursor  # nothing new: the index stays valid for the same cursor
        else:
            new_cursor = str(newest) if newest >= 0 else cursor
        self._index_cursor = new_cursor
        return PollResult(found, new_cursor, rejected)

    def get_ticket(self, ref: str) -> Ticket:
        return self._ticket(ref, self._load(ref))

    # --- changing --------------------------------------------------------------------------------------------------

    def _edit(self, ref: str, change: Callable[[TicketFile], bool]) -> None:
        with self._lock:
            tf = self._load(ref, edit=True)
            # A file that cannot be read as a ticket (labels: 5, a list as status...) is never written to: the
            # person fixing it finds it as they left it. TrackerError says why.
            self._ticket(ref, tf)
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
            labels = tf.labels()
            if label in labels:
                return False
            tf.set_labels([*labels, label])
            return True

        self._edit(ref, change)

    def remove_label(self, ref: str, label: str) -> None:
        def change(tf: TicketFile) -> bool:
            labels = tf.labels()
            if label not in labels:
                return False
            tf.set_labels([x for x in labels if x != label])
            return True

        self._edit(ref, change)

    def trigger_actor(self, ticket: Ticket) -> str | None:
        # A file has no history of who labelled it; a `triggered_by` key in the front matter says it when needed.
        return self._load(ticket.ref).scalar("triggered_by")

    def approval_actor(self, ticket: Ticket) -> str | None:
        """Who added the approval label (issue 15): an `approved_by` key in the front matter, as `triggered_by`."""
        return self._load(ticket.ref).scalar("approved_by")

    def link_pull_request(self, ref: str, pr: PullRequest) -> None:
        def change(tf: TicketFile) -> bool:
            if tf.meta.get("pull_request") == pr.url:
                return False
            tf.meta["pull_request"] = pr.url
            return True

        self._edit(ref, change)
