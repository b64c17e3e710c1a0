"""`tracker-bridge worker`: executes agent runs deferred by the leading `run` through procrastinate.

A worker never writes a ticket row and never calls a tracker nor pushes: it claims the run row, rebuilds the run
from it (`plan_json`) and the configuration, runs `agents.pipeline.execute_run` (or, for a mid-score ticket,
the read-only `agents.planning.execute_plan`) in a workspace of its own, and
writes the result back to the run row (the JSON of the RunReport, the commit as a git bundle). The leader turns
that into the ticket's next step and publishes (remote_runs.py, handoff.py).

Exactly-once across processes rests on the run row, not on the task engine:
- the claim is one UPDATE that succeeds only when nobody holds a live lease on the run, and bumps `claims`;
- a thread renews the lease (`lease_until`) for as long as the agent runs, through a drain too (procrastinate's
  own heartbeat stops when a worker is asked to stop), and looks at `cancel_requested` at the same time, so
  `tracker-bridge stop` on any machine stops the agent within about a second of the leader seeing it;
- the result is written only by the holder of the current claim: a worker that lost its lease (cut off, then
  taken over) has its result refused, and in any case only the leader pushes, after checking the remote.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import delete, insert, select, update

from tracker_bridge import jobs, workspaces
from tracker_bridge.agents.handover import agent_workspace
from tracker_bridge.agents.pipeline import RunPlan, RunReport, execute_run
from tracker_bridge.agents.planning import execute_plan
from tracker_bridge.config import RepoConfig, Settings
from tracker_bridge.handoff import make_bundle
from tracker_bridge.lease import process_gone
from tracker_bridge.models import RunOutcome
from tracker_bridge.protocols import AgentBackend, AgentEvent, CodeHost, RemoteError
from tracker_bridge.remote_runs import heartbeat_interval
from tracker_bridge.runqueue import RunSpec
from tracker_bridge.store import RunRow, Store, WorkerRow, utcnow

if TYPE_CHECKING:  # procrastinate is an optional dependency (the postgres extra), imported where a queue is used
    from procrastinate import JobContext

log = structlog.get_logger(__name__)


def lease_check_interval(settings: Settings) -> float:
    """How often a running job renews its lease and looks for a stop: often enough that a stop takes about a
    second and a lease never lapses under a live worker."""
    return max(0.2, min(settings.bridge.lease_seconds / 3, 1.0))


class Identity:
    def __init__(self) -> None:
        self.id = uuid.uuid4().hex
        self.host = socket.gethostname()
        self.pid = os.getpid()


class RunLease:
    """Renews the run's lease from its own thread while the agent runs; sets `cancel` on a stop or a lost lease."""

    def __init__(self, store: Store, settings: Settings, run_id: int, holder: str, claim: int,
                 cancel: threading.Event) -> None:  # fmt: skip
        self.store, self.settings = store, settings
        self.run_id, self.holder, self.claim = run_id, holder, claim
        self.cancel = cancel
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lease-{run_id}", daemon=True)

    def start(self) -> RunLease:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(lease_check_interval(self.settings)):
            try:
                until = utcnow() + timedelta(seconds=self.settings.bridge.lease_seconds)
                with self.store.lock, self.store.engine.begin() as conn:
                    kept = conn.execute(
                        update(RunRow)
                        .where(RunRow.id == self.run_id, RunRow.holder == self.holder, RunRow.claims == self.claim)
                        .values(lease_until=until)
                    ).rowcount
                    stop = conn.execute(select(RunRow.cancel_requested).where(RunRow.id == self.run_id)).scalar()
            except Exception:  # a store hiccup: the lease has two more renewals of slack
                log.exception("worker.lease_renew_failed", run_id=self.run_id)
                continue
            if kept != 1:
                self.lost = True
                log.error("worker.lease_lost", run_id=self.run_id, hint="another worker took the run over")
                self.cancel.set()
                return
            if stop and not self.cancel.is_set():
                log.info("worker.stop_requested", run_id=self.run_id)
                self.cancel.set()


class Heartbeat:
    """The worker's row in `workers`: `status` and `doctor` show it alive while its heartbeat is fresh."""

    def __init__(self, store: Store, settings: Settings, me: Identity, concurrency: int) -> None:
        self.store, self.settings, self.me = store, settings, me
        with store.lock, store.engine.begin() as conn:
            conn.execute(insert(WorkerRow).values(id=me.id, host=me.host, pid=me.pid, concurrency=concurrency,
                                                  started_at=utcnow(), heartbeat_at=utcnow()))  # fmt: skip
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(heartbeat_interval(self.settings)):
            try:
                with self.store.lock, self.store.engine.begin() as conn:
                    conn.execute(update(WorkerRow).where(WorkerRow.id == self.me.id).values(heartbeat_at=utcnow()))
            except Exception:
                log.exception("worker.heartbeat_failed")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with self.store.lock, self.store.engine.begin() as conn:
            conn.execute(delete(WorkerRow).where(WorkerRow.id == self.me.id))


class Executor:
    """Executes one deferred run: claim, rebuild, run the agent, hand the result and the commit back."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        me: Identity,
        *,
        backend_factory: Callable[[Settings], AgentBackend] | None = None,
        host_factory: Callable[[RepoConfig, Settings], CodeHost] | None = None,
    ) -> None:
        self.settings, self.store, self.me = settings, store, me
        self.backend_factory = backend_factory  # None: the configured backend (tests pass their own)
        self.host_factory = host_factory  # None: the connector registry's code host
        self.root = settings.state_dir / "workers" / f"{me.host}-{me.pid}"

    def execute(self, run_id: int, on_take_over: Callable[[], None] | None = None) -> None:
        """Claim and run one run; `on_take_over` is called when the claim took the run from a holder whose lease ran
        out (the task closes that holder's procrastinate job)."""
        claimed = self._claim(run_id)
        if claimed is None:
            log.info("worker.run_skipped", run_id=run_id, why="finished, or held by a live worker")
            return
        run, claim = claimed
        if claim > 1 and on_take_over is not None:
            on_take_over()
        assert run.plan_json is not None
        spec = RunSpec.from_json(run.plan_json)
        log.info("worker.run_start", ref=spec.ticket.ref, run_id=run_id, attempt=run.attempt, claim=claim,
                 took_over=claim > 1)  # fmt: skip
        cancel = threading.Event()
        if run.cancel_requested:
            cancel.set()
        lease = RunLease(self.store, self.settings, run_id, self.me.id, claim, cancel).start()
        bundle: bytes | None = None
        workspace = self.root / workspaces.workspace_key(
            spec.ticket.tracker, spec.ticket.key, spec.ticket.tracker in workspaces.colliding_trackers(self.settings)
        )
        try:
            result, bundle = self._run(run, spec, workspace, cancel, claim)
        finally:
            lease.stop()
        if lease.lost:
            log.warning("worker.result_dropped", ref=spec.ticket.ref, run_id=run_id, why="the lease was lost")
        elif self._write_result(run_id, claim, result, bundle):
            log.info("worker.run_finished", ref=spec.ticket.ref, run_id=run_id, result=result.get("kind"),
                     outcome=result.get("report", {}).get("outcome"))  # fmt: skip
        else:
            log.warning("worker.result_dropped", ref=spec.ticket.ref, run_id=run_id, why="the run was taken over")
        for folder in (workspace, agent_workspace(workspace)):
            shutil.rmtree(folder, ignore_errors=True)  # the commit went with the result: nothing left to keep

    def _claim(self, run_id: int) -> tuple[RunRow, int] | None:
        now = utcnow()
        until = now + timedelta(seconds=self.settings.bridge.lease_seconds)
        with self.store.lock, self.store.engine.begin() as conn:
            taken = conn.execute(
                update(RunRow)
                .where(RunRow.id == run_id, RunRow.status == "running", RunRow.result_json.is_(None),
                       RunRow.plan_json.is_not(None))
                .where(RunRow.holder.is_(None) | RunRow.lease_until.is_(None) | (RunRow.lease_until < now))
                .values(holder=self.me.id, lease_until=until, claims=RunRow.claims + 1)
            ).rowcount  # fmt: skip
        if taken != 1:
            return None
        run = self.store.run(run_id)
        if run is None or run.holder != self.me.id:
            return None
        return run, run.claims

    def _run(self, run: RunRow, spec: RunSpec, workspace: Path, cancel: threading.Event,
             claim: int) -> tuple[dict[str, Any], bytes | None]:  # fmt: skip
        from tracker_bridge.agents import create_backend
        from tracker_bridge.agents.command import secret_env_names
        from tracker_bridge.engine import Engine
        from tracker_bridge_connectors.registry import create_code_host

        try:
            repo = self.settings.repo(spec.repo)
            host = (self.host_factory or create_code_host)(repo, self.settings)
            backend = (self.backend_factory or create_backend)(self.settings)
            key = workspace.name
            plan = RunPlan(
                ticket=spec.ticket,
                repo=repo,
                branch=spec.branch,
                workspace=workspace,
                trace_path=self.settings.state_dir / "runs" / key / f"{_trace_name(spec)}-{run.attempt}.jsonl",
                feedback=spec.feedback,
                daily_budget_left_usd=spec.daily_budget_left_usd,
                approved_plan=spec.approved_plan,
                cancel=cancel,
            )
            on_event = partial(self._progress, run.id, claim)
            if spec.plan_only:  # read-only: the plan comes back as the report's summary, and there is no commit
                return {"kind": "report", "report": _report_json(
                    execute_plan(plan, host=host, backend=backend, settings=self.settings, on_event=on_event)
                )}, None  # fmt: skip
            plan = Engine._with_ci_logs(plan, host, spec.ci_pr)
            report = execute_run(
                plan,
                host=host,
                backend=backend,
                settings=self.settings,
                secrets=secret_env_names(self.settings),
                on_event=on_event,
            )
        except RemoteError as exc:
            return {"kind": "workspace_error", "message": str(exc), "fix": exc.fix, "transient": exc.transient}, None
        except Exception as exc:  # a bug or an outage in one run must not take the worker down
            log.exception("worker.run_crashed", run_id=run.id)
            return {"kind": "crash", "message": f"{type(exc).__name__}: {exc}"}, None
        bundle = None
        if report.outcome is RunOutcome.SUCCEEDED and report.commit_sha:
            bundle = make_bundle(workspace, spec.branch)
        return {"kind": "report", "report": _report_json(report)}, bundle

    def _progress(self, run_id: int, claim: int, event: AgentEvent) -> None:
        values: dict[str, Any] = {}
        if event.message:
            values["progress"] = event.message[:300]
        if event.usage is not None:
            u = event.usage
            values.update(turns=u.turns, input_tokens=u.input_tokens, output_tokens=u.output_tokens,
                          cost_usd=u.cost_usd)  # fmt: skip
        if not values:
            return
        try:
            with self.store.lock, self.store.engine.begin() as conn:
                conn.execute(
                    update(RunRow).where(RunRow.id == run_id, RunRow.holder == self.me.id, RunRow.claims == claim)
                    .values(**values)
                )  # fmt: skip
        except Exception:  # progress is best effort; the result is what counts
            log.exception("worker.progress_failed", run_id=run_id)

    def _write_result(self, run_id: int, claim: int, result: dict[str, Any], bundle: bytes | None) -> bool:
        values: dict[str, Any] = {"result_json": json.dumps(result), "bundle": bundle, "lease_until": None}
        if result.get("kind") == "report":
            usage = result["report"]["usage"]
            values.update(turns=usage["turns"], input_tokens=usage["input_tokens"],
                          output_tokens=usage["output_tokens"], cost_usd=usage["cost_usd"])  # fmt: skip
        with self.store.lock, self.store.engine.begin() as conn:
            written = conn.execute(
                update(RunRow)
                .where(RunRow.id == run_id, RunRow.holder == self.me.id, RunRow.claims == claim,
                       RunRow.result_json.is_(None), RunRow.status == "running")
                .values(**values)
            ).rowcount  # fmt: skip
        return bool(written == 1)


def _trace_name(spec: RunSpec) -> str:
    """As in the leader: `plan-N.jsonl` for a plan run, `attempt-N.jsonl` for an agent run."""
    return "plan" if spec.plan_only else "attempt"


def _report_json(report: RunReport) -> dict[str, Any]:
    data = asdict(report)
    data["outcome"] = report.outcome.value
    data["usage"] = report.usage.model_dump()
    return data


def remove_dead_workers_folders(settings: Settings) -> None:
    """Workspaces left by workers of this machine that died (SIGKILL): named host-pid, gone when the pid is."""
    root = settings.state_dir / "workers"
    host = socket.gethostname()
    if not root.is_dir():
        return
    for folder in root.iterdir():
        name, _, pid = folder.name.rpartition("-")
        if name == host and pid.isdigit() and process_gone(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def register_task(app: Any, executor: Executor) -> None:
    """The one task on `app`: execute the run whose id the job carries. A worker that takes a run over from a holder
    whose lease ran out closes that holder's job (the leader may never see the lapse)."""

    def run_agent(context: JobContext, run_id: int) -> None:
        own = context.job.id
        executor.execute(run_id, on_take_over=lambda: jobs.close_stale_jobs(app, run_id, keep=own))

    app.task(name=jobs.TASK, queue=jobs.QUEUE, pass_context=True)(run_agent)


def serve(settings: Settings, store: Store, concurrency: int) -> None:
    """Take jobs until SIGTERM/SIGINT (then finish the runs under way: a drain) or a second signal."""
    jobs.ensure_schema(settings.bridge.queue)
    remove_dead_workers_folders(settings)
    me = Identity()
    executor = Executor(settings, store, me)
    app = jobs.make_app(settings.bridge.queue)

    register_task(app, executor)

    heartbeat = Heartbeat(store, settings, me, concurrency)
    log.info("worker.started", worker=me.id, host=me.host, pid=me.pid, concurrency=concurrency)
    try:
        app.run_worker(
            queues=[jobs.QUEUE],
            concurrency=concurrency,
            name=f"tracker-bridge-{me.host}-{me.pid}",
            listen_notify=True,
            fetch_job_polling_interval=max(0.5, min(settings.bridge.poll_interval, 5.0)),
            delete_jobs="successful",  # the run row keeps the history; finished jobs would only pile up
            install_signal_handlers=True,
        )
    finally:
        heartbeat.stop()
        log.info("worker.stopped", worker=me.id)
