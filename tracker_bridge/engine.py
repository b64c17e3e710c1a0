"""The engine: each cycle it polls every tracker, feeds tickets through the lifecycle, runs agents and follows pull
requests. It is the only place that performs side effects, and every one of them is check-then-act:

- the stage is written to the store first, then the board is brought to it (`_converge`): the card is moved until
  the recorded column matches, the status comment rewritten until its recorded hash matches; connectors make both
  idempotent on the remote (move to the current column is a no-op, the comment is found by its marker);
- a pull request is looked up by branch on the code host before one is opened;
- a run interrupted by a crash is started again (or, when its pull request already exists, adopted).

So a daemon killed at any point and started again repeats no side effect and loses no run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import structlog

from tracker_bridge import lifecycle
from tracker_bridge.agents import create_backend
from tracker_bridge.agents.command import secret_env_names
from tracker_bridge.agents.pipeline import RunPlan, RunReport, execute_run
from tracker_bridge.comments import RunSummary, StatusView, render_status
from tracker_bridge.config import RepoConfig, Settings
from tracker_bridge.failpoints import failpoint
from tracker_bridge.lifecycle import PollAction
from tracker_bridge.models import PullRequest, PullRequestState, RunOutcome, Score, Stage, Ticket
from tracker_bridge.protocols import AgentBackend, AgentEvent, CodeHost, CodeHostError, Tracker, TrackerError, Trigger
from tracker_bridge.scoring import score_ticket
from tracker_bridge.scoring.judge import spent_on as llm_judge_spent_on
from tracker_bridge.store import RunRow, Store, TicketRow, pr_fields

log = structlog.get_logger(__name__)

PROGRESS_INTERVAL_S = 15.0  # the status comment follows a run's progress at most this often
MIRROR_MAX_AGE_S = 3600.0  # how stale the scorer's checkout of a remote repository may get
PUBLISH_ATTEMPTS = 3  # cycles in which a finished run's push / pull request is tried before the ticket fails


def content_hash(ticket: Ticket) -> str:
    material = json.dumps([ticket.title, ticket.description, sorted(ticket.labels)], ensure_ascii=False)
    return hashlib.sha256(material.encode()).hexdigest()[:32]


@dataclass
class CycleReport:
    polled: dict[str, int] = field(default_factory=dict)
    poll_errors: dict[str, str] = field(default_factory=dict)
    started_runs: list[str] = field(default_factory=list)
    transitions: list[tuple[str, str]] = field(default_factory=list)


class Engine:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        trackers: dict[str, Tracker],
        hosts: dict[str, CodeHost],
        *,
        backend_factory: Callable[[Settings], AgentBackend] = create_backend,
        scorer: Callable[..., Score] = score_ticket,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.trackers = trackers
        self.hosts = hosts
        self.backend_factory = backend_factory
        self.scorer = scorer
        self.on_change = on_change or (lambda: None)
        self.trigger = Trigger(settings.trigger.label, settings.trigger.column)
        self.pool = ThreadPoolExecutor(max_workers=settings.bridge.max_concurrent_runs, thread_name_prefix="run")
        self.active: dict[int, Future[None]] = {}
        self._active_lock = threading.Lock()
        # One effect at a time per engine: worker threads report progress while the poll loop converges cards.
        self._effects_lock = threading.RLock()
        self._secrets = secret_env_names(settings)
        self._last_progress: dict[int, float] = {}
        self._mirrors: dict[str, tuple[Path, float]] = {}  # repo -> (checkout for the scorer, when cloned)
        recovered = store.interrupt_running()
        if recovered:
            log.warning("engine.recovered_runs", interrupted=recovered)

    # --- the cycle -------------------------------------------------------------------------------------------------

    def cycle(self) -> CycleReport:
        """One poll-and-act cycle. Runs started here go on in worker threads (see `wait`)."""
        report = CycleReport()
        healthy: set[str] = set()
        for name, tracker in self.trackers.items():
            try:
                self._poll(name, tracker, report)
                healthy.add(name)
            except TrackerError as exc:
                # A tracker that cannot be read this cycle is left alone: nothing is dispatched on stale data.
                report.poll_errors[name] = str(exc)
                self.store.save_poll_error(name, str(exc))
                log.error("poll.failed", tracker=name, error=str(exc))
        for row in self.store.tickets(stages=(Stage.QUEUED,)):
            if row.tracker in healthy:
                self._check_queued(row, report)
        for row in self.store.tickets(stages=(Stage.REVIEW, Stage.FAILED)):
            if row.tracker in healthy and lifecycle.follows_pull_request(row.stage_enum, row.pr_state):
                self._follow_pull_request(row, report)
        self._dispatch(report, healthy)
        for row in self.store.tickets():
            if row.tracker in healthy and not self._is_active(row.id):
                self._converge(row)
        self.on_change()
        return report

    def wait(self) -> None:
        """Wait for every run started so far, then bring their cards and comments up to date."""
        while True:
            with self._active_lock:
                for ticket_id in [k for k, f in self.active.items() if f.done()]:
                    del self.active[ticket_id]
                futures = list(self.active.values())
            if not futures:
                break
            for f in futures:
                f.result()
        for row in self.store.tickets():
            if row.tracker in self.trackers:
                self._converge(row)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _is_active(self, ticket_id: int) -> bool:
        with self._active_lock:
            f = self.active.get(ticket_id)
            return f is not None and not f.done()

    # --- polling and evaluation ------------------------------------------------------------------------------------

    def _poll(self, name: str, tracker: Tracker, report: CycleReport) -> None:
        cursor_row = self.store.cursor(name)
        result = tracker.poll(cursor_row.cursor if cursor_row else None)
        report.polled[name] = len(result.tickets)
        for ticket in result.tickets:
            self._observe(ticket, report)
        # Saved last: a crash mid-poll polls the same window again (and the lifecycle is idempotent).
        self.store.save_cursor(name, result.cursor)

    def _observe(self, ticket: Ticket, report: CycleReport) -> None:
        row, created = self.store.get_or_create_ticket(
            ticket.tracker, ticket.ref, title=ticket.title, url=ticket.url, stage=Stage.SEEN.value
        )
        digest = content_hash(ticket)
        action = lifecycle.on_poll(
            stage=None if created else row.stage_enum,
            ticket=ticket,
            trigger=self.trigger,
            via=row.trigger_via,
            content_changed=created or digest != row.content_hash,
            column_applied=row.column_applied,
        )
        if action is PollAction.EVALUATE:
            self._evaluate(row, ticket, digest, report)
        elif action is PollAction.CANCEL:
            self._set_stage(row, Stage.CANCELLED, "the trigger was removed before the agent started", report)
        elif ticket.title != row.title:
            self.store.update_ticket(row.id, title=ticket.title)

    def _evaluate(self, row: TicketRow, ticket: Ticket, digest: str, report: CycleReport) -> None:
        via = lifecycle.trigger_via(ticket, self.trigger)
        repo_name = ticket.repo or self.settings.tracker(ticket.tracker).repo
        row = self.store.update_ticket(
            row.id,
            title=ticket.title,
            url=ticket.url,
            trigger_via=via,
            repo=repo_name,
            branch=ticket.branch,
            # A fresh evaluation starts the ticket's journey over: the card will be moved and commented again.
            column_applied=None,
            pr_id=None,
            pr_url=None,
            pr_state=None,
            iterations=0,
            iterated_sha=None,
            feedback_json=None,
            progress=None,
        )
        allowed = self.settings.trigger.allowed_actors
        if allowed:
            actor = self.trackers[ticket.tracker].trigger_actor(ticket)
            self.store.update_ticket(row.id, actor=actor)
            if actor is None or actor.lower() not in {a.lower() for a in allowed}:
                who = actor or "an unknown person"
                self._set_stage(
                    row,
                    Stage.SEEN,
                    f"the trigger was added by {who}, who may not hand tickets to the agent "
                    "(not listed in [trigger] allowed_actors, or without the permission the tracker requires); "
                    "ask one of the allowed people to add it",
                    report,
                    content_hash=digest,
                )
                return
        repo_dir = self._repo_checkout(repo_name) if self.settings.scoring.repo_analysis else None
        score = self.scorer(ticket, self.settings.scoring, repo_dir)
        self.store.update_ticket(row.id, score=score.value, score_json=score.model_dump_json())
        failpoint("after_score")
        stage = lifecycle.after_score(score.accepted)
        if repo_name is None and stage is Stage.QUEUED:
            self._set_stage(
                row,
                Stage.FAILED,
                "no repository is configured for this ticket: set `repo` on its tracker",
                report,
                content_hash=digest,
            )
            return
        reason = (
            f"score {score.value:.2f} is at or above the threshold {score.threshold:.2f}"
            if score.accepted
            else f"score {score.value:.2f} is below the threshold {score.threshold:.2f}"
        )
        # The content hash is written with the verdict, never before it: a crash in between evaluates again.
        self._set_stage(row, stage, reason, report, content_hash=digest)

    def _repo_checkout(self, repo_name: str | None) -> Path | None:
        """A checkout of the repository at its base branch for the scorer's repository analysis."""
        if repo_name is None:
            return None
        repo = self.settings.repo(repo_name)
        if repo.host == "local":
            return self.settings.path(repo.url)
        cloned = self._mirrors.get(repo_name)
        if cloned is not None and time.monotonic() - cloned[1] < MIRROR_MAX_AGE_S:
            return cloned[0]
        # Cloned anew (no credentials are kept in it to fetch with) when missing or older than MIRROR_MAX_AGE_S,
        # so a long-running daemon does not score tickets against the base branch as it was at start-up.
        dest = self.settings.state_dir / "mirrors" / repo_name
        try:
            if dest.exists():
                shutil.rmtree(dest)
            dest.parent.mkdir(parents=True, exist_ok=True)  # as for workspaces: the host clones into a new folder
            self.hosts[repo_name].clone(dest)
        except CodeHostError as exc:
            log.warning("score.no_repo_analysis", repo=repo_name, error=str(exc))
            self._mirrors.pop(repo_name, None)
            return None
        self._mirrors[repo_name] = (dest, time.monotonic())
        return dest

    def _check_queued(self, row: TicketRow, report: CycleReport) -> None:
        try:
            ticket = self.trackers[row.tracker].get_ticket(row.ref)
        except TrackerError as exc:
            log.warning("queued.read_failed", ref=row.ref, error=str(exc))
            return
        if not lifecycle.still_triggered(ticket, self.trigger, row.trigger_via):
            self._set_stage(row, Stage.CANCELLED, "the trigger was removed before the agent started", report)

    # --- runs ------------------------------------------------------------------------------------------------------

    def _dispatch(self, report: CycleReport, healthy: set[str]) -> None:
        if getattr(self, "dispatch_stopped", False):  # set by stop_dispatch (shutdown under way)
            return
        # Tickets left `running` by a crashed daemon come first: their run is resumed before new work starts.
        rows = self.store.tickets(stages=(Stage.RUNNING,)) + self.store.tickets(stages=(Stage.QUEUED,))
        for row in rows:
            if row.tracker not in healthy or self._is_active(row.id):
                continue
            with self._active_lock:
                busy = sum(1 for f in self.active.values() if not f.done())
            if busy >= self.settings.bridge.max_concurrent_runs:
                return
            today = datetime.now(UTC).date()
            # The LLM judge's calls (when [scoring] llm is on) are paid from the same daily budget as the runs.
            spent = self.store.spent_on(today) + llm_judge_spent_on(self.settings.state_dir, today)
            budget_left = self.settings.agent.daily_budget_usd - spent
            if budget_left <= 0:
                reason = (
                    f"the daily budget of ${self.settings.agent.daily_budget_usd:.2f} is spent; "
                    "the agent takes this ticket when it renews"
                )
                if row.reason != reason:
                    self.store.update_ticket(row.id, reason=reason)
                    self._converge(self.store.ticket(row.tracker, row.ref) or row)
                return
            self._start(row, budget_left, report)

    def _start(self, row: TicketRow, budget_left: float, report: CycleReport) -> None:
        tracker = self.trackers[row.tracker]
        if row.stage_enum is Stage.RUNNING and row.branch and row.repo:
            # A `running` ticket with no run under way: resumed after a crash, a publish that failed, or an iteration.
            pr = self._find_pr(row)
            if row.pr_id is None and pr is not None and pr.state is PullRequestState.OPEN:
                # The pull request was opened before the crash: adopt it instead of running the agent again.
                self._adopt_pull_request(row, pr, report)
                return
            last = self.store.last_run(row.id)
            if last is not None and self._publishable(last) and (pr is None or pr.head_sha != last.commit_sha):
                # The run's commit is not on the pull request yet: publish it rather than run the agent again.
                self._submit(row.id, lambda: self._publish_only(row.id, last))
                return
            if last is not None and last.status == "finished" and last.outcome != RunOutcome.SUCCEEDED.value:
                # The run ended before the crash but its verdict was not recorded on the ticket: record it now.
                self._set_stage(row, Stage.FAILED, last.reason or "the agent's run failed", report)
                return
        try:
            ticket = tracker.get_ticket(row.ref)
        except TrackerError as exc:
            log.warning("run.read_failed", ref=row.ref, error=str(exc))
            return
        if row.stage_enum is Stage.QUEUED:
            row = self._set_stage(row, Stage.RUNNING, "the agent took the ticket", report)
            if row.stage_enum is not Stage.RUNNING:
                return  # the card could not be moved: _converge failed the ticket with the reason
        report.started_runs.append(row.ref)
        self._submit(row.id, lambda: self._run(row.id, ticket, budget_left))

    def _submit(self, ticket_id: int, job: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                job()
            except Exception as exc:  # a bug or an outage in one run must not take the daemon down
                log.exception("run.crashed", ticket_id=ticket_id)
                row = self._row(ticket_id)
                self._set_stage(row, Stage.FAILED, f"tracker-bridge hit an error during the run: {exc}", None)

        with self._active_lock:
            self.active[ticket_id] = self.pool.submit(guarded)

    def _row(self, ticket_id: int) -> TicketRow:
        with self.store.session() as s:
            row = s.get(TicketRow, ticket_id)
            assert row is not None
            return row

    def _run(self, ticket_id: int, ticket: Ticket, budget_left: float) -> None:
        row = self._row(ticket_id)
        assert row.repo is not None and row.branch is not None
        repo = self.settings.repo(row.repo)
        host = self.hosts[repo.name]
        backend = self.backend_factory(self.settings)
        attempt_dir = self.settings.state_dir / "runs" / ticket.key
        run = self.store.start_run(
            ticket_id,
            backend=backend.name,
            branch=row.branch,
            workspace=str(self.settings.state_dir / "workspaces" / ticket.key),
            trace_path="",
        )
        trace_path = attempt_dir / f"attempt-{run.attempt}.jsonl"
        self.store.update_run(run.id, trace_path=str(trace_path))
        log.info("run.start", ref=ticket.ref, attempt=run.attempt, backend=backend.name, branch=row.branch)
        plan = RunPlan(
            ticket=ticket,
            repo=repo,
            branch=row.branch,
            workspace=Path(run.workspace),
            trace_path=trace_path,
            feedback=row.feedback,
            daily_budget_left_usd=budget_left,
        )
        report = execute_run(
            plan,
            host=host,
            backend=backend,
            settings=self.settings,
            secrets=self._secrets,
            on_event=lambda ev: self._on_event(ticket_id, run.id, ev),
        )
        self._finish(ticket_id, run, report, host, repo)

    def _on_event(self, ticket_id: int, run_id: int, event: AgentEvent) -> None:
        if event.usage is not None:
            u = event.usage
            self.store.update_run(
                run_id, turns=u.turns, input_tokens=u.input_tokens, output_tokens=u.output_tokens, cost_usd=u.cost_usd
            )
        if not event.message:
            return
        self.store.update_ticket(ticket_id, progress=event.message[:300])
        now = time.monotonic()
        if now - self._last_progress.get(ticket_id, 0.0) >= PROGRESS_INTERVAL_S:
            self._last_progress[ticket_id] = now
            self._converge(self._row(ticket_id))

    def _finish(self, ticket_id: int, run: RunRow, report: RunReport, host: CodeHost, repo: RepoConfig) -> None:
        tests = None
        if report.outcome is RunOutcome.SUCCEEDED:
            tests = "passed"
        elif report.outcome is RunOutcome.TESTS_FAILED:
            tests = "failed"
        summary = report.summary
        if report.outcome is RunOutcome.TESTS_FAILED and report.test_output:
            summary = (summary + "\n\n" if summary else "") + "Test output (last lines):\n\n```\n" + "\n".join(
                report.test_output.strip().splitlines()[-15:]
            ) + "\n```"
        run = self.store.finish_run(
            run.id,
            report.outcome,
            report.usage,
            reason=report.reason,
            summary=summary,
            commit_sha=report.commit_sha,
        )
        self.store.update_ticket(ticket_id, progress=f"tests {tests}" if tests else None)
        log.info("run.finished", ticket_id=ticket_id, outcome=report.outcome.value, reason=report.reason)
        row = self._row(ticket_id)
        if report.outcome is not RunOutcome.SUCCEEDED:
            self._set_stage(row, lifecycle.after_run(report.outcome), report.reason, None)
            return
        self._publish(row, run, host, repo)

    def _publishable(self, run: RunRow) -> bool:
        return (
            run.status == "finished"
            and run.outcome == RunOutcome.SUCCEEDED.value
            and bool(run.commit_sha)
            and Path(run.workspace, ".git").exists()
        )

    def _publish_only(self, ticket_id: int, run: RunRow) -> None:
        row = self._row(ticket_id)
        assert row.repo is not None
        repo = self.settings.repo(row.repo)
        self._publish(row, run, self.hosts[repo.name], repo)

    def _publish(self, row: TicketRow, run: RunRow, host: CodeHost, repo: RepoConfig) -> None:
        """Push the branch and open (or find) the pull request: the daemon's credentials, never the agent's."""
        assert row.branch is not None
        workspace = Path(run.workspace)
        try:
            with self._effects_lock:
                host.push(workspace, row.branch)
                failpoint("after_push")
                self.store.record_effect(row.id, "push", f"{row.branch}@{run.commit_sha}")
                pr = host.find_pull_request(row.branch)
                if pr is None or pr.state is not PullRequestState.OPEN:
                    pr = host.open_pull_request(row.branch, self._pr_title(row), self._pr_body(row, run))
                    failpoint("after_open_pr")
                    self.store.record_effect(row.id, "open_pr", pr.url)
        except CodeHostError as exc:
            # The work is done and committed in the workspace: an outage of the code host should not throw it away.
            # The ticket stays `running` and the next cycle publishes again, up to PUBLISH_ATTEMPTS times.
            self.store.record_effect(row.id, "publish_error", f"run {run.id}: {exc}")
            errors = self.store.effects(row.id, "publish_error")
            failures = sum(1 for e in errors if e.detail.startswith(f"run {run.id}:"))
            if failures >= PUBLISH_ATTEMPTS:
                self._set_stage(row, Stage.FAILED, f"the change could not be pushed or proposed: {exc}", None)
            else:
                self._set_stage(
                    row,
                    Stage.RUNNING,
                    f"the change passes the tests but publishing it failed ({exc}); tracker-bridge tries again "
                    f"next cycle ({failures} of {PUBLISH_ATTEMPTS})",
                    None,
                )
            return
        self._adopt_pull_request(row, pr, None)

    def _adopt_pull_request(self, row: TicketRow, pr: PullRequest, report: CycleReport | None) -> None:
        tracker = self.trackers[row.tracker]
        with self._effects_lock:
            tracker.link_pull_request(row.ref, pr)
            failpoint("after_link_pr")
        self.store.record_effect(row.id, "link_pr", pr.url)
        # The pull request is recorded with the stage in one write: a ticket `running` with a pull request is one
        # taking another iteration, so recording it earlier would make a crash look like an iteration.
        reason = "the agent's change passes the tests; the pull request is open"
        if row.iterations:
            reason = (
                f"iteration {row.iterations} of {self.settings.agent.max_iterations}: the agent's change for the "
                "feedback on the pull request passes the tests and was pushed to the same pull request"
            )
        self._set_stage(row, Stage.REVIEW, reason, report, **pr_fields(pr))

    def _find_pr(self, row: TicketRow) -> PullRequest | None:
        assert row.repo is not None and row.branch is not None
        try:
            return self.hosts[row.repo].find_pull_request(row.branch)
        except CodeHostError as exc:
            log.warning("pr.lookup_failed", ref=row.ref, error=str(exc))
            return None

    def _pr_title(self, row: TicketRow) -> str:
        return f"{row.ref}: {row.title}"

    def _pr_body(self, row: TicketRow, run: RunRow) -> str:
        # The code host adds its own closing keyword ("Closes #N") where the ticket lives on the same host.
        link = f"[{row.ref}]({row.url})" if row.url.startswith("http") else row.ref
        return (
            f"Resolves {link}.\n\n{run.summary.strip() or 'Change made by the agent.'}\n\n"
            f"---\nOpened by tracker-bridge after the test command passed "
            f"(run attempt {run.attempt}, {run.turns} turn(s), ${run.cost_usd:.2f})."
        )

    # --- pull requests ---------------------------------------------------------------------------------------------

    def _follow_pull_request(self, row: TicketRow, report: CycleReport) -> None:
        if row.pr_id is None or row.repo is None or self._is_active(row.id):
            return
        try:
            pr = self.hosts[row.repo].get_pull_request(row.pr_id)
        except CodeHostError as exc:
            log.warning("pr.read_failed", ref=row.ref, error=str(exc))
            return
        if pr.state.value != row.pr_state:
            row = self.store.update_ticket(row.id, pr_state=pr.state.value, pr_url=pr.url)
        decision = lifecycle.on_pull_request(
            pr,
            stage=row.stage_enum,
            iterations=row.iterations,
            max_iterations=self.settings.agent.max_iterations,
            iterated_sha=row.iterated_sha,
            iterated_feedback=row.feedback if row.iterations else None,
        )
        if decision.iterate:
            row = self.store.update_ticket(
                row.id,
                iterations=row.iterations + 1,
                iterated_sha=pr.head_sha,
                feedback_json=json.dumps(decision.feedback),
            )
        if decision.stage is not row.stage_enum or (decision.reason and decision.reason != row.reason):
            self._set_stage(row, decision.stage, decision.reason or row.reason, report)

    # --- the board -------------------------------------------------------------------------------------------------

    def _set_stage(
        self, row: TicketRow, stage: Stage, reason: str, report: CycleReport | None, **fields: object
    ) -> TicketRow:
        """Record the new stage (with `fields`, in the same write) first, then bring the board to it."""
        if report is not None and stage.value != row.stage:
            report.transitions.append((row.ref, stage.value))
        log.info("ticket.stage", ref=row.ref, stage=stage.value, reason=reason)
        row = self.store.update_ticket(row.id, stage=stage.value, reason=reason, **fields)
        return self._converge(row)

    def _status_view(self, row: TicketRow) -> StatusView:
        last = self.store.last_run(row.id)
        run = None
        if last is not None and row.stage_enum in (Stage.RUNNING, Stage.REVIEW, Stage.DONE, Stage.FAILED):
            tests = None
            if last.outcome == RunOutcome.SUCCEEDED.value:
                tests = "passed"
            elif last.outcome == RunOutcome.TESTS_FAILED.value:
                tests = "failed"
            run = RunSummary(
                attempt=last.attempt,
                turns=last.turns,
                tokens=last.input_tokens + last.output_tokens,
                cost_usd=last.cost_usd,
                outcome=last.outcome if last.status == "finished" else None,
                tests=tests,
            )
        return StatusView(
            stage=row.stage_enum,
            reason=row.reason,
            column=lifecycle.column_for(row.stage_enum, self.settings.stages),
            score=row.score_model,
            run=run,
            progress=row.progress,
            pr_url=row.pr_url,
            summary=last.summary if last is not None and row.stage_enum is not Stage.RUNNING else "",
            total_cost_usd=self.store.ticket_cost(row.id),
            ignored=row.stage_enum is Stage.SEEN and "allowed_actors" in row.reason,
        )

    def _converge(self, row: TicketRow) -> TicketRow:
        """Move the card and rewrite the status comment until they match the stage; each step only when needed."""
        stage = row.stage_enum
        if stage is Stage.SEEN and not row.reason:
            return row
        tracker = self.trackers.get(row.tracker)
        if tracker is None:
            return row
        with self._effects_lock:
            column = lifecycle.column_for(stage, self.settings.stages)
            if column is not None and row.column_applied != column:
                try:
                    tracker.move(row.ref, column)
                    failpoint("after_move")
                    row = self.store.update_ticket(row.id, column_applied=column)
                    self.store.record_effect(row.id, "move", column)
                except TrackerError as exc:
                    log.error("move.failed", ref=row.ref, column=column, error=str(exc))
                    if stage is Stage.FAILED:
                        # Nowhere further to send it: stop retrying the move and say why in the comment.
                        row = self.store.update_ticket(row.id, column_applied=column)
                    else:
                        row = self.store.update_ticket(
                            row.id,
                            stage=Stage.FAILED.value,
                            reason=f"tracker-bridge could not move the card to {column!r}: {exc}",
                        )
                        return self._converge(row)
            body = render_status(self._status_view(row))
            digest = hashlib.sha256(body.encode()).hexdigest()[:32]
            if row.comment_hash != digest:
                try:
                    tracker.upsert_status_comment(row.ref, body)
                    failpoint("after_comment")
                    row = self.store.update_ticket(row.id, comment_hash=digest)
                    self.store.record_effect(row.id, "comment", digest)
                except TrackerError as exc:
                    log.error("comment.failed", ref=row.ref, error=str(exc))
        return row

    # --- shutdown hooks (issue 13): the daemon's signal handling calls these ---------------------------------------

    def stop_dispatch(self) -> None:
        """Start no new run from now on; the runs under way go on."""
        self.dispatch_stopped = True

    def in_flight(self) -> list[str]:
        """References of the tickets whose runs are under way."""
        with self._active_lock:
            ids = [k for k, f in self.active.items() if not f.done()]
        return [self._row(i).ref for i in ids]

    def interrupt_runs(self) -> int:
        """Give up on the runs still going: recorded interrupted, so the next start resumes them as after a crash."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        return self.store.interrupt_running()


def build_engine(settings: Settings, store: Store, **kwargs: object) -> Engine:
    """The engine with every configured tracker and code host created through the connector registry."""
    from tracker_bridge_connectors.registry import create_code_host, create_tracker

    trackers = {t.name: create_tracker(t, settings) for t in settings.trackers}
    hosts = {r.name: create_code_host(r, settings) for r in settings.repos}
    return Engine(settings, store, trackers, hosts, **kwargs)  # type: ignore[arg-type]

