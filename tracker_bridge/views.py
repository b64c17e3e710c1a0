"""What the CLI's `status`, the JSON API and the dashboard show of the store: one shape for all three."""

from __future__ import annotations

from typing import Any

from tracker_bridge import lifecycle
from tracker_bridge.config import Settings
from tracker_bridge.models import Stage
from tracker_bridge.store import RunRow, Store, TicketRow


def ticket_summary(
    settings: Settings, store: Store, row: TicketRow, cost_usd: float | None = None
) -> dict[str, Any]:
    stage = Stage(row.stage)
    if cost_usd is None:
        cost_usd = store.ticket_cost(row.id)
    return {
        "ref": row.ref,
        "tracker": row.tracker,
        "stage": stage.value,
        "column": row.column_applied or lifecycle.column_for(stage, settings.stages),
        "score": round(row.score, 4) if row.score is not None else None,
        "pr_url": row.pr_url,
        "cost_usd": round(cost_usd, 6),
        "updated_at": row.updated_at.isoformat() + "Z",
        "reason": row.reason,
        # when a step waiting out a retry delay (a transient agent, clone or publish failure) is tried again
        "next_attempt_at": row.retry_at.isoformat() + "Z" if row.retry_at is not None else None,
    }


def ticket_summaries(
    settings: Settings, store: Store, *, limit: int | None = None, offset: int = 0
) -> list[dict[str, Any]]:
    # Two queries whatever the number of tickets: `status` stays fast with 10,000 stored tickets; the dashboard
    # asks for one page at a time.
    rows = store.tickets(limit=limit, offset=offset)
    costs = store.ticket_costs([r.id for r in rows] if limit is not None else None)
    return [ticket_summary(settings, store, row, costs.get(row.id, 0.0)) for row in rows]


def rejected_summaries(store: Store) -> list[dict[str, Any]]:
    """Tickets a tracker showed but that could not be read, parsed or routed, with why (skipped, not lost)."""
    return [
        {"tracker": r.tracker, "ref": r.ref, "reason": r.reason, "seen_at": r.seen_at.isoformat() + "Z"}
        for r in store.rejections()
    ]


def run_summary(run: RunRow) -> dict[str, Any]:
    return {
        "id": run.id,
        "attempt": run.attempt,
        "status": run.status,
        "backend": run.backend,
        "branch": run.branch,
        "outcome": run.outcome,
        "reason": run.reason,
        "turns": run.turns,
        "input_tokens": run.input_tokens,
        "output_tokens": run.output_tokens,
        "cost_usd": round(run.cost_usd, 6),
        "started_at": run.started_at.isoformat() + "Z",
        "finished_at": run.finished_at.isoformat() + "Z" if run.finished_at else None,
    }


def ticket_detail(settings: Settings, store: Store, row: TicketRow) -> dict[str, Any]:
    score = row.score_model
    return {
        **ticket_summary(settings, store, row),
        "title": row.title,
        "url": row.url,
        "branch": row.branch,
        "iterations": row.iterations,
        "score_detail": score.model_dump() if score else None,
        "runs": [run_summary(r) for r in store.runs(row.id)],
        "effects": [
            {"kind": e.kind, "detail": e.detail, "at": e.done_at.isoformat() + "Z"} for e in store.effects(row.id)
        ],
    }
