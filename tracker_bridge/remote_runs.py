"""The leader's side of `[bridge] queue = "postgresql://..."`: agent runs executed by `tracker-bridge worker`.

The leader still decides everything and is still the only writer of tickets and of the remote side (tracker, code
host): it writes the run row (with `plan_json`, what a worker needs), defers a procrastinate job carrying the run id
only, and reads the run row back every tend (once a second): the progress line and usage as `Progress`, the result
as `RunDone` - the same messages a run in the local pool puts on the inbox, so nothing after this seam knows where
the run executed. The worker hands its commit over as a git bundle on the run row, and the leader pushes it
(`handoff.py`): one writer of remote state.

Taking over a dead worker's run rests on the run lease, not on procrastinate's heartbeat (which a draining worker
stops): a run whose `lease_until` has passed is deferred again, and the worker that claims it next bumps `claims`,
so a result written by the old one (a worker cut off, not dead) is refused. A leader that takes over adopts the
runs left `running` (they may be executing on workers) instead of marking them interrupted.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import func, select, update

from tracker_bridge import jobs
from tracker_bridge.agents.pipeline import RunReport
from tracker_bridge.config import Settings
from tracker_bridge.models import RunOutcome, RunUsage
from tracker_bridge.protocols import AgentEvent, RemoteError
from tracker_bridge.runqueue import RunSpec
from tracker_bridge.store import RunRow, Store, WorkerRow, utcnow

log = structlog.get_logger(__name__)


def worker_alive_seconds(settings: Settings) -> float:
    """A worker whose heartbeat is older than this is taken for dead (three missed heartbeats)."""
    return 3 * heartbeat_interval(settings)


def heartbeat_interval(settings: Settings) -> float:
    return max(0.5, min(settings.bridge.lease_seconds / 3, 5.0))


def live_workers(store: Store, settings: Settings) -> list[WorkerRow]:
    since = utcnow() - timedelta(seconds=worker_alive_seconds(settings))
    with store.session() as s:
        return list(s.scalars(select(WorkerRow).where(WorkerRow.heartbeat_at >= since).order_by(WorkerRow.started_at)))


class ClosedElsewhere(Exception):
    """A run row closed without a result (stopped, or closed by an operator): its job ends with nothing to write."""


@dataclass
class _Pending:
    ticket_id: int
    future: Future[None]
    deferred_at: float = 0.0  # monotonic time of the last defer
    seen: tuple[Any, ...] = field(default_factory=tuple)  # the progress already reported


def run_done_from_row(ticket_id: int, row: RunRow) -> Any:
    """The engine's `RunDone` for a result a worker wrote (see worker.result_json)."""
    from tracker_bridge.engine import RunDone

    assert row.result_json is not None
    data: dict[str, Any] = json.loads(row.result_json)
    kind = data.get("kind")
    if kind == "report":
        r = data["report"]
        report = RunReport(
            outcome=RunOutcome(r["outcome"]),
            usage=RunUsage.model_validate(r["usage"]),
            summary=r.get("summary", ""),
            reason=r.get("reason", ""),
            commit_sha=r.get("commit_sha"),
            test_output=r.get("test_output", ""),
        )
        return RunDone(ticket_id, row.id, report=report)
    if kind == "workspace_error":
        error = RemoteError(data.get("message", ""), fix=data.get("fix", ""), transient=bool(data.get("transient")))
        return RunDone(ticket_id, row.id, workspace_error=error)
    return RunDone(ticket_id, row.id, crash=str(data.get("message") or "the worker gave no reason"))


class RemoteRunQueue:
    def __init__(self, settings: Settings, store: Store, put: Callable[[Any], None]) -> None:
        self.settings = settings
        self.store = store
        self.put = put
        jobs.ensure_schema(settings.bridge.queue)
        self.app = jobs.make_app(settings.bridge.queue)
        self.app.open()
        self._pending: dict[int, _Pending] = {}  # run id -> what the leader waits for
        self._lock = threading.Lock()  # `elsewhere` is asked from other threads (shutdown, the web page)
        self._warned_no_workers = False

    # --- the engine's seam -------------------------------------------------------------------------------------

    def recover(self, active: dict[int, Future[None]]) -> int:
        """Adopt the runs a previous leader left running on workers (agent and plan runs); interrupt any it ran
        itself (a run row without `plan_json`, from a version that ran plan runs in the leader)."""
        with self.store.session() as s:
            rows = list(s.scalars(select(RunRow).where(RunRow.status == "running")))
        adopted = 0
        for row in rows:
            if row.plan_json is None:
                continue
            future = self._track(row.id, row.ticket_id)
            active[row.ticket_id] = future
            self._defer(row.id)  # a no-op while its job waits; a new job when the old one was lost with the leader
            adopted += 1
        if adopted:
            log.info("queue.adopted_runs", runs=adopted)
        return self.store.interrupt_running(keep=self.held_elsewhere())

    def submit(self, ticket_id: int, run_id: int, job: Callable[[], None], spec: RunSpec) -> Future[None]:
        self.store.update_run(run_id, plan_json=spec.to_json())
        future = self._track(run_id, ticket_id)
        self._defer(run_id)
        log.info("queue.deferred", ref=spec.ticket.ref, run_id=run_id)
        return future

    def has_room(self) -> bool:
        """Only as many runs under way as the live workers have slots: the others stay queued (their cards say so)
        rather than `running` while they wait for a worker."""
        capacity = sum(w.concurrency for w in live_workers(self.store, self.settings))
        if capacity == 0 and not self._warned_no_workers:
            log.warning("queue.no_workers", hint="start `tracker-bridge worker`; queued tickets wait for one")
        self._warned_no_workers = capacity == 0
        with self._lock:
            under_way = len(self._pending)  # deferred and not yet reported back: each holds a worker slot, or waits
        return under_way < capacity

    def elsewhere(self, ticket_id: int) -> bool:
        with self._lock:
            return any(p.ticket_id == ticket_id for p in self._pending.values())

    def held_elsewhere(self) -> set[int]:
        with self._lock:
            return set(self._pending)

    def cancel(self, ticket_id: int) -> None:
        with self._lock:
            run_ids = [run_id for run_id, p in self._pending.items() if p.ticket_id == ticket_id]
        if not run_ids:
            return
        with self.store.lock, self.store.engine.begin() as conn:
            conn.execute(update(RunRow).where(RunRow.id.in_(run_ids)).values(cancel_requested=True))
        log.info("queue.stop_requested", ticket_id=ticket_id, runs=run_ids)

    def poll(self) -> None:
        """Read back the runs under way: progress, results, and runs whose worker's lease ran out."""
        from tracker_bridge.engine import Progress

        with self._lock:
            pending = dict(self._pending)
        if not pending:
            return
        with self.store.session() as s:
            rows = list(s.scalars(select(RunRow).where(RunRow.id.in_(pending))))
        now, mono = utcnow(), time.monotonic()
        lease = self.settings.bridge.lease_seconds
        for row in rows:
            p = pending[row.id]
            seen = (row.progress, row.turns, row.cost_usd)
            if seen != p.seen and (row.progress or row.turns or row.cost_usd):
                p.seen = seen
                usage = RunUsage(turns=row.turns, input_tokens=row.input_tokens, output_tokens=row.output_tokens,
                                 cost_usd=row.cost_usd)  # fmt: skip
                self.put(Progress(p.ticket_id, row.id, AgentEvent(kind="worker", message=row.progress or "",
                                                                   usage=usage)))  # fmt: skip
            if row.result_json is not None:
                self._finish(row.id)
                self.put(run_done_from_row(p.ticket_id, row))
            elif row.status != "running":
                # Closed by someone else (a stop, an operator): no result comes back, and the engine must not wait
                # for one (a job that ended without reporting is no longer active).
                self._finish(row.id, ClosedElsewhere(f"run {row.id} was closed as {row.status}"))
            elif mono - p.deferred_at >= lease and (row.lease_until is None or row.lease_until < now):
                if row.lease_until is not None:
                    log.warning("queue.lease_expired", run_id=row.id, holder=row.holder, hint="another worker takes it")
                # A job `doing` now is a dead worker's, whether it died holding the run or between taking the job
                # and claiming the run (a live worker claims within moments, and renews its lease).
                jobs.close_stale_jobs(self.app, row.id)
                self._defer(row.id)  # unclaimed: a no-op while its job waits (queueing lock), else a new job

    def shutdown(self) -> None:
        try:
            self.app.close()
        except Exception:  # closing a pool that never connected must not stop the shutdown
            log.debug("queue.close_failed", exc_info=True)

    # --- inside ------------------------------------------------------------------------------------------------

    def _track(self, run_id: int, ticket_id: int) -> Future[None]:
        future: Future[None] = Future()
        future.set_running_or_notify_cancel()
        with self._lock:
            self._pending[run_id] = _Pending(ticket_id, future)
        return future

    def _finish(self, run_id: int, closed: ClosedElsewhere | None = None) -> None:
        with self._lock:
            p = self._pending.pop(run_id, None)
        if p is None:
            return
        if closed is None:
            p.future.set_result(None)
        else:
            p.future.set_exception(closed)

    def _defer(self, run_id: int) -> None:
        from procrastinate.exceptions import AlreadyEnqueued

        try:
            deferrer = self.app.configure_task(jobs.TASK, queue=jobs.QUEUE, queueing_lock=f"run-{run_id}")
            deferrer.defer(run_id=run_id)
        except AlreadyEnqueued:
            pass  # its job still waits for a worker
        with self._lock:
            if run_id in self._pending:
                self._pending[run_id].deferred_at = time.monotonic()


def worker_lines(store: Store, settings: Settings) -> list[str]:
    """For `status` and `doctor`: each live worker and what it runs, then the runs waiting for one."""
    from tracker_bridge.store import TicketRow

    workers = live_workers(store, settings)
    with store.session() as s:
        held = s.execute(
            select(RunRow.holder, TicketRow.ref)
            .join(TicketRow, TicketRow.id == RunRow.ticket_id)
            .where(RunRow.status == "running", RunRow.result_json.is_(None), RunRow.holder.is_not(None))
            .order_by(RunRow.id)
        ).all()
    lines = [f"workers: {len(workers)} alive" + ("" if workers else "; start `tracker-bridge worker`")]
    for w in workers:
        refs = [ref for holder, ref in held if holder == w.id]
        doing = ", ".join(refs) if refs else "idle"
        lines.append(f"  worker on {w.host} (pid {w.pid}, concurrency {w.concurrency}): {doing}")
    lines.append(f"queue: {queue_depth(store)} run(s) waiting for a worker")
    return lines


def queue_depth(store: Store) -> int:
    """Runs deferred and not yet claimed by a worker."""
    with store.session() as s:
        q = select(func.count()).select_from(RunRow).where(
            RunRow.status == "running", RunRow.plan_json.is_not(None), RunRow.holder.is_(None)
        )
        return int(s.scalar(q) or 0)
