"""Read-only queries behind the dashboard and the metrics, written to stay fast with tens of thousands of tickets.

`Store` answers the engine's questions one ticket at a time; a page showing 50 of 10,000 tickets needs aggregates
and pages instead (counts by stage, one grouped sum for the costs on the page, the last 30 days of runs), so they
live here, next to the pages that need them, and never write.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from tracker_bridge.agents.trace import read_trace
from tracker_bridge.models import Stage
from tracker_bridge.store import CursorRow, EffectRow, RunRow, Store, TicketRow, utcnow

PAGE_SIZE = 50


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 2 * 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


# --- aggregates ------------------------------------------------------------------------------------------------------


def stage_counts(store: Store) -> dict[str, int]:
    with store.session() as s:
        rows = s.execute(select(TicketRow.stage, func.count()).group_by(TicketRow.stage)).all()
    counts = {stage.value: 0 for stage in Stage}
    counts.update({str(stage): int(n) for stage, n in rows})
    return counts


def run_outcome_counts(store: Store) -> dict[str, int]:
    with store.session() as s:
        rows = s.execute(
            select(func.coalesce(RunRow.outcome, RunRow.status), func.count()).group_by(
                func.coalesce(RunRow.outcome, RunRow.status)
            )
        ).all()
    return {str(k): int(n) for k, n in rows}


@dataclass
class UsageTotals:
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0


def usage_totals(store: Store) -> UsageTotals:
    with store.session() as s:
        cost, tin, tout = s.execute(
            select(
                func.coalesce(func.sum(RunRow.cost_usd), 0.0),
                func.coalesce(func.sum(RunRow.input_tokens), 0),
                func.coalesce(func.sum(RunRow.output_tokens), 0),
            )
        ).one()
    return UsageTotals(float(cost), int(tin), int(tout))


@dataclass
class DaySpend:
    day: date
    cost_usd: float


def spend_by_day(store: Store, days: int = 30, today: date | None = None) -> list[DaySpend]:
    """Dollars per UTC day for the last `days` days (oldest first), counted on the day a run started."""
    today = today or utcnow().date()
    first = today - timedelta(days=days - 1)
    totals = {first + timedelta(days=i): 0.0 for i in range(days)}
    day = func.date(RunRow.started_at)  # SQLite: 'YYYY-MM-DD' text; PostgreSQL: a date
    with store.session() as s:
        rows = s.execute(
            select(day, func.sum(RunRow.cost_usd))
            .where(RunRow.started_at >= datetime(first.year, first.month, first.day))
            .group_by(day)
        ).all()
    for when, cost in rows:
        key = when if isinstance(when, date) else date.fromisoformat(str(when))
        if key in totals:
            totals[key] += float(cost or 0.0)
    return [DaySpend(d, c) for d, c in totals.items()]


# --- lists -----------------------------------------------------------------------------------------------------------


@dataclass
class NowItem:
    ticket: TicketRow
    run: RunRow
    elapsed_s: float

    @property
    def tokens(self) -> int:
        return self.run.input_tokens + self.run.output_tokens


def running_now(store: Store, now: datetime | None = None) -> list[NowItem]:
    now = now or utcnow()
    with store.session() as s:
        rows = s.execute(
            select(TicketRow, RunRow)
            .join(RunRow, RunRow.ticket_id == TicketRow.id)
            .where(RunRow.status == "running")
            .order_by(RunRow.started_at)
        ).all()
    return [NowItem(t, r, max(0.0, (now - r.started_at).total_seconds())) for t, r in rows]


@dataclass
class Page:
    items: list[Any]
    page: int
    pages: int
    total: int


def _page_bounds(total: int, page: int, size: int) -> tuple[int, int]:
    pages = max(1, math.ceil(total / size))
    page = min(max(1, page), pages)
    return page, pages


def queue(store: Store, limit: int = 20) -> Page:
    """Queued tickets, the best score first: the order the engine picks them in."""
    with store.session() as s:
        total = int(s.scalar(select(func.count()).where(TicketRow.stage == Stage.QUEUED.value)) or 0)
        rows = list(
            s.scalars(
                select(TicketRow)
                .where(TicketRow.stage == Stage.QUEUED.value)
                .order_by(TicketRow.score.desc(), TicketRow.id)
                .limit(limit)
            )
        )
    return Page(rows, 1, 1, total)


@dataclass
class Outcome:
    ticket: TicketRow
    run: RunRow

    @property
    def duration_s(self) -> float | None:
        return seconds_between(self.run.started_at, self.run.finished_at)


def recent_outcomes(store: Store, page: int = 1, size: int = 20) -> Page:
    with store.session() as s:
        total = int(s.scalar(select(func.count()).select_from(RunRow).where(RunRow.status != "running")) or 0)
        page, pages = _page_bounds(total, page, size)
        rows = s.execute(
            select(TicketRow, RunRow)
            .join(RunRow, RunRow.ticket_id == TicketRow.id)
            .where(RunRow.status != "running")
            .order_by(RunRow.finished_at.desc(), RunRow.id.desc())
            .offset((page - 1) * size)
            .limit(size)
        ).all()
    return Page([Outcome(t, r) for t, r in rows], page, pages, total)


@dataclass
class TicketLine:
    ticket: TicketRow
    cost_usd: float


def tickets_page(store: Store, page: int = 1, size: int = PAGE_SIZE, stage: str | None = None) -> Page:
    """One page of tickets, the most recently changed first, with each one's spend (one grouped query)."""
    with store.session() as s:
        count = select(func.count()).select_from(TicketRow)
        q = select(TicketRow).order_by(TicketRow.updated_at.desc(), TicketRow.id.desc())
        if stage:
            count = count.where(TicketRow.stage == stage)
            q = q.where(TicketRow.stage == stage)
        total = int(s.scalar(count) or 0)
        page, pages = _page_bounds(total, page, size)
        rows = list(s.scalars(q.offset((page - 1) * size).limit(size)))
        ids = [r.id for r in rows]
        costs: dict[int, float] = {}
        if ids:
            costs = {
                int(tid): float(c)
                for tid, c in s.execute(
                    select(RunRow.ticket_id, func.sum(RunRow.cost_usd))
                    .where(RunRow.ticket_id.in_(ids))
                    .group_by(RunRow.ticket_id)
                ).all()
            }
    return Page([TicketLine(r, costs.get(r.id, 0.0)) for r in rows], page, pages, total)


def cursors(store: Store) -> list[CursorRow]:
    with store.session() as s:
        return list(s.scalars(select(CursorRow).order_by(CursorRow.tracker)))


# --- one ticket ------------------------------------------------------------------------------------------------------


EFFECT_TITLES = {
    "move": "card moved to",
    "comment": "status comment written",
    "label": "label changed",
    "push": "branch pushed",
    "open_pr": "pull request opened",
    "link_pr": "pull request linked on the ticket",
}


@dataclass
class TimelineEntry:
    at: datetime
    kind: str  # seen | run | effect | stage
    title: str
    detail: str = ""
    run_id: int | None = None


def timeline(store: Store, row: TicketRow) -> list[TimelineEntry]:
    """What happened to a ticket, oldest first: first seen, each run's start and end, each effect on a remote."""
    entries = [TimelineEntry(row.created_at, "seen", "first seen")]
    for run in store.runs(row.id):
        entries.append(
            TimelineEntry(run.started_at, "run", f"run {run.attempt} started", f"{run.backend} on {run.branch}", run.id)
        )
        if run.finished_at is not None:
            took = human_duration(seconds_between(run.started_at, run.finished_at))
            entries.append(
                TimelineEntry(
                    run.finished_at,
                    "run",
                    f"run {run.attempt} {run.outcome or run.status} after {took}",
                    run.reason,
                    run.id,
                )
            )
    with store.session() as s:
        effects = list(s.scalars(select(EffectRow).where(EffectRow.ticket_id == row.id).order_by(EffectRow.id)))
    entries.extend(
        TimelineEntry(
            e.done_at,
            "effect",
            EFFECT_TITLES.get(e.kind, e.kind.replace("_", " ")),
            "" if e.kind == "comment" else e.detail,  # a comment's detail is its content hash: noise here
        )
        for e in effects
    )
    entries.append(TimelineEntry(row.updated_at, "stage", f"now {row.stage}", row.reason))
    entries.sort(key=lambda e: e.at)
    return entries


@dataclass
class TestOutput:
    command: str
    passed: bool
    output: str


def test_outputs(trace_path: str) -> list[TestOutput]:
    if not trace_path:
        return []
    return [
        TestOutput(str(r.get("command", "")), bool(r.get("passed")), str(r.get("output", "")))
        for r in read_trace(Path(trace_path))
        if r.get("kind") == "tests"
    ]


# --- a trace, for reading ---------------------------------------------------------------------------------------------


@dataclass
class TraceStep:
    """One event of a trace, with a one-line summary and the full detail folded below it."""

    kind: str
    ts: str
    summary: str
    body: str = ""
    is_error: bool = False


@dataclass
class TraceTurn:
    number: int
    steps: list[TraceStep] = field(default_factory=list)
    usage: str = ""


def _text(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value, indent=2, default=str, ensure_ascii=False)


def _one_line(value: Any, width: int = 140) -> str:
    text = " ".join(_text(value).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def trace_turns(records: list[dict[str, Any]]) -> list[TraceTurn]:
    """Events grouped by agent turn (turn 0: what happened before the agent's first turn)."""
    turns = [TraceTurn(0)]
    for r in records:
        kind = str(r.get("kind", "?"))
        ts = str(r.get("ts", ""))[11:19]
        if kind == "turn":
            turns.append(
                TraceTurn(
                    int(r.get("turn") or len(turns)),
                    usage=f"{r.get('input_tokens', 0)} in / {r.get('output_tokens', 0)} out tokens"
                    + (f", ${float(r['cost_usd']):.4f}" if r.get("cost_usd") is not None else ""),
                )
            )
            if r.get("text"):
                turns[-1].steps.append(TraceStep("text", ts, _one_line(r["text"]), _text(r["text"])))
            continue
        step: TraceStep
        if kind == "tool_call":
            step = TraceStep(kind, ts, f"{r.get('tool', '?')}: {_one_line(r.get('input', ''))}", _text(r.get("input")))
        elif kind == "tool_result":
            out = r.get("output", "")
            step = TraceStep(
                kind, ts, f"{r.get('tool') or 'result'} → {_one_line(out, 100)}", _text(out), bool(r.get("is_error"))
            )
        elif kind == "text":
            step = TraceStep(kind, ts, _one_line(r.get("text", "")), _text(r.get("text", "")))
        elif kind == "tests":
            passed = bool(r.get("passed"))
            step = TraceStep(
                kind, ts, f"{r.get('command', '')}: {'passed' if passed else 'failed'}", _text(r.get("output", "")),
                not passed,
            )
        else:
            rest = {k: v for k, v in r.items() if k not in ("ts", "kind")}
            step = TraceStep(kind, ts, _one_line(rest), _text(rest))
        turns[-1].steps.append(step)
    return [t for t in turns if t.steps or t.number]
