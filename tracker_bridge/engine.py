"""The engine: each cycle it polls every tracker, feeds tickets through the lifecycle, runs agents and follows pull
requests. It is the only place that performs side effects, and every one of them is check-then-act:

- the stage is written to the store first, then the board is brought to it (`_converge`): the card is moved until
  the recorded column matches, the status comment rewritten until its recorded hash matches; connectors make both
  idempotent on the remote (move to the current column is a no-op, the comment is found by its marker);
- a pull request is looked up by branch on the code host before one is opened;
- a run interrupted by a crash is started again (or, when its pull request already exists, adopted).

So a daemon killed at any point and started again repeats no side effect and loses no run.

Why it is shaped this way:

- Every stage change is a `lifecycle.Decision` applied by `_apply`: the rules live in one pure module with table
  tests, the engine only observes and carries decisions out (as a Kubernetes controller reconciles).
- One writer: worker threads run the agent and push the change, and hand what happened (progress, usage, the run
  report, the publish result) back through a queue; only the loop thread (`cycle`, `wait`) writes ticket state and
  talks to trackers. No lock is held across a remote call.
- The cost of an idle cycle follows change, not history: settled tickets (done, declined, cancelled, failed
  without an open pull request, already shown on the board) are never selected.
- One poisoned ticket never stops the board: what cannot be read is recorded (`Store.rejections`) and skipped.
"""

from __future__ import annotations

import hashlib
import json
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Unpack

import structlog

from tracker_bridge import lifecycle, workspaces
from tracker_bridge.agents import create_backend
from tracker_bridge.agents.ci_logs import ci_feedback_for
from tracker_bridge.agents.command import secret_env_names
from tracker_bridge.agents.pipeline import RunPlan, RunReport, execute_run
from tracker_bridge.agents.planning import execute_plan
from tracker_bridge.comments import RunSummary, StatusView, render_status
from tracker_bridge.config import Settings
from tracker_bridge.conflicts import conflicting_files
from tracker_bridge.control import ControlRow, Controls
from tracker_bridge.failpoints import failpoint
from tracker_bridge.gitutil import GitError
from tracker_bridge.handoff import unbundle
from tracker_bridge.lifecycle import Approval, Decision, Effect, PollAction, RetryPolicy, RunView, TicketView
from tracker_bridge.models import (
    Phase,
    PullRequest,
    PullRequestState,
    RunOutcome,
    Score,
    Stage,
    Ticket,
    TicketFields,
)
from tracker_bridge.protocols import (
    AgentBackend,
    AgentEvent,
    CodeHost,
    CodeHostError,
    PollResult,
    PullRequestComment,
    PullRequestComments,
    RejectedTicket,
    RemoteError,
    ReviewRequests,
    TicketDiscussion,
    Tracker,
    TrackerError,
    Trigger,
    same_name,
)
from tracker_bridge.routing import Route, route
from tracker_bridge.runqueue import LocalRunQueue, RunQueue, RunSpec
from tracker_bridge.scoring import score_ticket
from tracker_bridge.scoring.judge import spent_on as llm_judge_spent_on
from tracker_bridge.store import RunRow, Store, TicketRow, pr_fields, utcnow

log = structlog.get_logger(__name__)

PROGRESS_INTERVAL_S = 15.0  # the status comment follows a run's progress at most this often
MIRROR_MAX_AGE_S = 3600.0  # how stale the scorer's checkout of a remote repository may get


def content_hash(ticket: Ticket) -> str:
    material = json.dumps([ticket.title, ticket.description, sorted(ticket.labels)], ensure_ascii=False)
    return hashlib.sha256(material.encode()).hexdigest()[:32]


@dataclass
class CycleReport:
    polled: dict[str, int] = field(default_factory=dict)
    poll_errors: dict[str, str] = field(default_factory=dict)
    started_runs: list[str] = field(default_factory=list)
    transitions: list[tuple[str, str]] = field(default_factory=list)
    rejected: list[RejectedTicket] = field(default_factory=list)


# --- what worker threads hand back to the loop ------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    ticket_id: int
    run_id: int
    event: AgentEvent


@dataclass(frozen=True)
class RunDone:
    ticket_id: int
    run_id: int
    report: RunReport | None = None
    workspace_error: RemoteError | None = None  # the code host failed while the workspace was cloned
    crash: str | None = None


@dataclass(frozen=True)
class PublishDone:
    ticket_id: int
    run_id: int
    pr: PullRequest | None = None
    effects: tuple[tuple[str, str], ...] = ()
    error: RemoteError | None = None
    crash: str | None = None


@dataclass(frozen=True)
class ScoreDone:
    ticket_id: int
    digest: str
    repo: str | None
    score: Score | None = None
    error: str | None = None


Message = Progress | RunDone | PublishDone | ScoreDone


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
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.store = store
        self.trackers = trackers
        self.hosts = hosts
        self.backend_factory = backend_factory
        self.scorer = scorer
        self.on_change = on_change or (lambda: None)
        self.clock = clock  # naive UTC, as the store keeps times
        self.trigger = Trigger(settings.trigger.label, settings.trigger.column)
        self.retry = RetryPolicy(settings.bridge.retry_attempts, settings.bridge.retry_backoff)
        self.pool = ThreadPoolExecutor(max_workers=settings.bridge.max_concurrent_runs, thread_name_prefix="run")
        self.active: dict[int, Future[None]] = {}
        self._poll_pool = ThreadPoolExecutor(max_workers=max(1, len(trackers)), thread_name_prefix="poll")
        self._polls: dict[str, Future[PollResult]] = {}  # a poll under way, by tracker (at most one each)
        # Scoring (text, and repository analysis with its git processes) runs off the loop thread; one thread, so
        # the scorer's checkouts are never shared between two scorings at once.
        self._score_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="score")
        self._scoring: dict[int, tuple[str, Future[None]]] = {}  # ticket id -> (tracker, scoring)
        self._active_lock = threading.Lock()
        self._inbox: queue.SimpleQueue[Message] = queue.SimpleQueue()
        # One loop pass at a time (cycle, tend, wait): the loop is the only writer. Worker threads never take it.
        self._loop = threading.RLock()
        self._secrets = secret_env_names(settings)
        self._last_progress: dict[int, float] = {}
        self._mirrors: dict[str, tuple[Path, float]] = {}  # repo -> (checkout for the scorer, when cloned)
        self._deadline = float("inf")
        self._rejected: set[tuple[str, str]] | None = None
        # Issue 13: the cancel switch of each run or publish under way, the tickets this cycle's polls returned (so
        # reconciliation reads only the running tickets they did not), and the trackers whose references collide.
        self._cancels: dict[int, threading.Event] = {}
        self._polled: dict[tuple[str, str], Ticket] = {}
        self._colliding = workspaces.colliding_trackers(settings)
        # (ticket id, head, base) -> the conflicting files of a pull request that no longer merges (issue 14)
        self._conflicts: dict[tuple[int, str | None, str | None], list[str]] = {}
        ControlRow.__table__.create(store.engine, checkfirst=True)  # type: ignore[attr-defined]
        self.controls = Controls(store)
        # Where agent runs execute (runqueue.py): this process's pool, or `worker` processes through procrastinate.
        self.runs: RunQueue = LocalRunQueue(self.pool, store.interrupt_running)
        if settings.bridge.queue != "local":
            from tracker_bridge.remote_runs import RemoteRunQueue

            self.runs = RemoteRunQueue(settings, store, self._inbox.put)
        recovered = self.runs.recover(self.active)
        if recovered:
            log.warning("engine.recovered_runs", interrupted=recovered)

    # --- the cycle -------------------------------------------------------------------------------------------------

    def cycle(self) -> CycleReport:
        """One poll-and-act cycle. Runs started here go on in worker threads (see `wait`)."""
        with self._loop:
            return self._cycle()

    def tend(self) -> None:
        """Between cycles: write what the runs reported and bring their cards up to date, polling nothing.
        Skipped while a cycle is under way (the cycle does the same)."""
        if not self._loop.acquire(blocking=False):
            return
        try:
            self._deadline = time.monotonic() + self.settings.bridge.cycle_deadline
            self._drain(None)
            self._consume_controls(None)
            self._converge_pending(set(self.trackers))
        finally:
            self._loop.release()

    def _cycle(self) -> CycleReport:
        report = CycleReport()
        self._deadline = time.monotonic() + self.settings.bridge.cycle_deadline
        self._drain(report)
        cursors = self._poll_all(report)
        healthy = set(cursors)
        self._await_scores()
        self._drain(report)
        self._consume_controls(report)
        self._reconcile_at_work(healthy, report)
        scoring = {tracker for tracker, _ in self._scoring.values()}
        for name, cursor in cursors.items():
            # Saved once every ticket of the window has its verdict: a crash before (or a scoring still under way)
            # polls the same window again, and the lifecycle is idempotent.
            if name not in scoring:
                self.store.save_cursor(name, cursor)
        for row in self.store.tickets(stages=(Stage.QUEUED,)):
            if row.tracker in healthy and not self._late():
                self._guarded(row, partial(self._check_queued, row, report))
        for row in self.store.tickets(stages=(Stage.AWAITING_APPROVAL,)):
            if row.tracker in healthy and not self._late():
                self._guarded(row, partial(self._check_approval, row, report))
        for row in self.store.tickets_following_prs():
            if row.tracker in healthy and not self._late():
                self._guarded(row, partial(self._follow_pull_request, row, report))
        self._polled.clear()  # read by reconciliation and by the follow-up comments on tickets, above
        self._dispatch(report, healthy)
        self._converge_pending(healthy)
        self.on_change()
        return report

    def wait(self) -> None:
        """Wait for every run started so far (and the publishing that follows), then bring the board up to date."""
        with self._loop:
            self._wait()

    def _wait(self) -> None:
        self._deadline = float("inf")
        while True:
            self._drain(None)
            with self._active_lock:
                futures = [f for f in self.active.values() if not f.done()]
            futures += [f for _, f in self._scoring.values() if not f.done()]
            if not futures and self._inbox.empty():
                break
            if futures:
                wait_futures(futures, timeout=1.0, return_when=FIRST_COMPLETED)
        self._converge_pending(set(self.trackers))

    def shutdown(self) -> None:
        self.runs.shutdown()
        self.pool.shutdown(wait=False, cancel_futures=True)
        self._score_pool.shutdown(wait=False, cancel_futures=True)
        self._poll_pool.shutdown(wait=False, cancel_futures=True)

    def _await_scores(self) -> None:
        """Let this cycle's scorings finish (within the deadline) so a ticket is queued and started in one cycle;
        one still scoring when time is up is written by a later pass."""
        pending = [f for _, f in self._scoring.values() if not f.done()]
        if pending:
            _wait_done(pending, max(0.0, self._deadline - time.monotonic()))

    def _late(self) -> bool:
        """Past the cycle's deadline: what is left waits for the next cycle (it stays selected: nothing is lost)."""
        return time.monotonic() > self._deadline

    def _is_active(self, ticket_id: int) -> bool:
        """A job is under way for the ticket, or it has finished and its result is still waiting in the inbox: until
        `_drain` writes that result, the row still says `running` and must not be taken for an interrupted run."""
        with self._active_lock:
            f = self.active.get(ticket_id)
            if f is None:
                return False
            if f.cancelled() or (f.done() and f.exception() is not None):  # ended without reporting its result
                del self.active[ticket_id]
                return False
            return True

    def _guarded(self, row: TicketRow, step: Callable[[], object]) -> None:
        """One ticket's trouble stays that ticket's: a bug or a bad field is recorded and the cycle goes on."""
        try:
            step()
        except Exception as exc:
            log.exception("ticket.step_failed", ref=row.ref)
            self._reject(row.tracker, RejectedTicket(row.ref, f"{type(exc).__name__}: {exc}"), None)

    # --- polling and evaluation ------------------------------------------------------------------------------------

    def _poll_all(self, report: CycleReport) -> dict[str, str | None]:
        """Poll every tracker at once in worker threads; returns the trackers read this cycle and their new cursors.

        A tracker that stalls delays only its own tickets: after half the cycle's deadline the cycle goes on
        without it (its poll is left to finish and is used by a later cycle, never started twice).
        """
        for name, tracker in self.trackers.items():
            if name not in self._polls:
                cursor_row = self.store.cursor(name)
                self._polls[name] = self._poll_pool.submit(tracker.poll, cursor_row.cursor if cursor_row else None)
        budget = self.settings.bridge.cycle_deadline / 2
        _wait_done(list(self._polls.values()), max(0.0, min(budget, self._deadline - time.monotonic())))
        healthy: dict[str, str | None] = {}
        for name in self.trackers:
            future = self._polls[name]
            if not future.done():
                report.poll_errors[name] = f"no answer within {budget:g} s; the poll goes on in the background"
                log.warning("poll.slow", tracker=name, waited_s=budget)
                continue
            del self._polls[name]
            try:
                result = future.result()
                self._take_poll(name, result, report)
                healthy[name] = result.cursor
            except Exception as exc:
                # A tracker that cannot be read this cycle is left alone: nothing is dispatched on stale data.
                error = exc.explain() if isinstance(exc, RemoteError) else f"{type(exc).__name__}: {exc}"
                report.poll_errors[name] = error
                self.store.save_poll_error(name, error)
                log.error("poll.failed", tracker=name, error=error)
        return healthy

    def _take_poll(self, name: str, result: PollResult, report: CycleReport) -> None:
        report.polled[name] = len(result.tickets)
        self._polled.update(((name, t.ref), t) for t in result.tickets)
        for rejected in result.rejected:
            self._reject(name, rejected, report)
        for ticket in result.tickets:
            try:
                self._observe(ticket, report)
            except Exception as exc:  # one poisoned ticket never stops the rest of the board
                log.exception("ticket.observe_failed", ref=ticket.ref)
                self._reject(name, RejectedTicket(ticket.ref, f"{type(exc).__name__}: {exc}"), report)

    def _reject(self, tracker_name: str, rejected: RejectedTicket, report: CycleReport | None) -> None:
        """Record why a ticket was skipped (status, dashboard) and say so on the ticket where the tracker can."""
        if report is not None:
            report.rejected.append(rejected)
        self._rejected_keys().add((tracker_name, rejected.ref))
        if not self.store.record_rejection(tracker_name, rejected.ref, rejected.reason):
            return  # already reported with this reason
        log.error("ticket.rejected", tracker=tracker_name, ref=rejected.ref, reason=rejected.reason)
        tracker = self.trackers.get(tracker_name)
        if tracker is None or self.store.ticket(tracker_name, rejected.ref) is not None:
            return  # a ticket on its journey keeps its status comment; the log, status and dashboard say it
        body = (
            "### tracker-bridge: skipped: this ticket could not be read\n\n"
            f"**Why:** {rejected.reason}\n\n"
            "_Fix the ticket and tracker-bridge picks it up on its next poll; the rest of the board goes on._\n"
        )
        try:
            tracker.upsert_status_comment(rejected.ref, body)
        except Exception as exc:  # the ticket may be unreadable to the tracker too: the log and status still say it
            log.warning("ticket.rejected_comment_failed", ref=rejected.ref, error=str(exc))

    def _rejected_keys(self) -> set[tuple[str, str]]:
        """(tracker, ref) of the tickets on record as skipped, loaded once: clearing costs no query per ticket."""
        if self._rejected is None:
            self._rejected = {(r.tracker, r.ref) for r in self.store.rejections()}
        return self._rejected

    def _clear_rejection(self, tracker_name: str, ref: str) -> None:
        """A ticket that was skipped is read and evaluated again: it is no longer reported."""
        keys = self._rejected_keys()
        if (tracker_name, ref) in keys:
            keys.discard((tracker_name, ref))
            self.store.clear_rejection(tracker_name, ref)

    def _observe(self, ticket: Ticket, report: CycleReport) -> None:
        row, created = self.store.get_or_create_ticket(
            ticket.tracker, ticket.ref, title=ticket.title, url=ticket.url
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
            if row.id not in self._scoring:  # already being scored: its verdict is on the way
                self._evaluate(row, ticket, digest, report)
            return  # a skipped ticket stays reported until its verdict is written
        self._clear_rejection(ticket.tracker, ticket.ref)
        if action is PollAction.CANCEL:
            self._apply(row, lifecycle.trigger_removed(), report)
        elif ticket.title != row.title:
            self.store.update_ticket(row.id, title=ticket.title)

    def _evaluate(self, row: TicketRow, ticket: Ticket, digest: str, report: CycleReport) -> None:
        via = lifecycle.trigger_via(ticket, self.trigger)
        routed = self._route(ticket)
        repo_name = routed.repo
        known_repos = [r.name for r in self.settings.repos]
        row = self.store.update_ticket(
            row.id,
            title=ticket.title,
            url=ticket.url,
            trigger_via=via,
            repo=repo_name,
            branch=workspaces.branch_name(ticket, ticket.tracker in self._colliding),
            # A fresh evaluation starts the ticket's journey over: the card will be moved and commented again.
            column_applied=None,
            pr_id=None,
            pr_url=None,
            pr_state=None,
            iterations=0,
            iterated_sha=None,
            feedback_json=None,
            progress=None,
            publish_attempts=0,
            retry_attempts=0,
            retry_at=None,
        )
        allowed = self.settings.trigger.allowed_actors
        if allowed:
            actor = self.trackers[ticket.tracker].trigger_actor(ticket)
            self.store.update_ticket(row.id, actor=actor)
            if actor is None or actor.lower() not in {a.lower() for a in allowed}:
                self._apply(row, lifecycle.actor_refused(actor), report, content_hash=digest)
                return
        if routed.repo is None:
            self._apply(row, lifecycle.unrouted(routed.problem, routed.choices), report, content_hash=digest)
            return
        analyse = self.settings.scoring.repo_analysis and repo_name in known_repos
        ticket_id = row.id

        def job() -> None:
            try:
                repo_dir = self._repo_checkout(repo_name) if analyse else None
                score = self.scorer(ticket, self.settings.scoring, repo_dir)
                self._inbox.put(ScoreDone(ticket_id, digest, repo_name, score=score))
            except Exception as exc:  # one ticket the scorer chokes on is reported and skipped
                log.exception("score.failed", ref=ticket.ref)
                self._inbox.put(ScoreDone(ticket_id, digest, repo_name, error=f"{type(exc).__name__}: {exc}"))

        self._scoring[row.id] = (row.tracker, self._score_pool.submit(job))

    def _route(self, ticket: Ticket) -> Route:
        """The repository the ticket changes (tracker_bridge/routing.py holds the rules)."""
        routed = route(ticket, self.settings.tracker(ticket.tracker), self.settings.repos)
        log.debug("ticket.routed", ref=ticket.ref, repo=routed.repo, why=routed.why or routed.problem)
        return routed

    def _on_score_done(self, done: ScoreDone, report: CycleReport | None) -> None:
        self._scoring.pop(done.ticket_id, None)
        row = self._row(done.ticket_id)
        if done.score is None:
            self._reject(row.tracker, RejectedTicket(row.ref, done.error or "scoring failed"), report)
            return
        score = done.score
        self._clear_rejection(row.tracker, row.ref)
        self.store.update_ticket(row.id, score=score.value, score_json=score.model_dump_json())
        self.store.record_effect(row.id, "score", f"{score.value:.3f}")  # an approved plan is valid until this
        failpoint("after_score")
        decision = lifecycle.scored(
            accepted=score.accepted,
            value=score.value,
            threshold=score.threshold,
            repo=done.repo,
            known_repos=[r.name for r in self.settings.repos],
            approval_threshold=self.settings.scoring.approval_threshold,
        )
        # The content hash is written with the verdict, never before it: a crash in between evaluates again.
        self._apply(row, decision, report, content_hash=done.digest)

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
            self._apply(row, lifecycle.trigger_removed(), report)
            return
        why = self._left_the_agent(row, ticket)
        if why is not None:
            self._apply(row, lifecycle.stopped(why, running=False), report)

    # --- runs ------------------------------------------------------------------------------------------------------

    def _budget_left(self) -> float:
        """Today's budget minus what is spent and what running runs have set aside but not spent yet."""
        today = datetime.now(UTC).date()
        # The LLM judge's calls (when [scoring] llm is on) are paid from the same daily budget as the runs.
        spent = self.store.spent_on(today) + llm_judge_spent_on(self.settings.state_dir, today)
        # Set aside by the runs under way (on their rows: it holds across workers and a leader's fail-over).
        outstanding = self.store.reserved_outstanding()
        return self.settings.agent.daily_budget_usd - spent - outstanding

    def _dispatch(self, report: CycleReport, healthy: set[str]) -> None:
        if getattr(self, "dispatch_stopped", False):  # set by stop_dispatch (shutdown under way) or pause
            return
        # Tickets left `running` come first: a crashed run resumed, a publish retried, an iteration started.
        rows = self.store.tickets(stages=(Stage.RUNNING,)) + self.store.tickets(stages=(Stage.QUEUED,))
        now = self.clock()
        for row in rows:
            if row.tracker not in healthy or self._is_active(row.id) or self._late():
                continue
            view = self._view(row)
            if not lifecycle.due(view, now):
                continue  # waiting out a retry delay
            # This process's pool (runs, publishing); runs on `worker` processes count against the workers' slots.
            busy = sum(1 for t in self._active_ids() if not self.runs.elsewhere(t))
            if busy >= self.settings.bridge.max_concurrent_runs:
                return
            if row.stage_enum is Stage.QUEUED and self._hold_for_reviews(row, view, report):
                continue
            self._guarded(row, partial(self._start, row, view, report))

    def _hold_for_reviews(self, row: TicketRow, view: TicketView, report: CycleReport) -> bool:
        """`[bridge] max_open_reviews`: a queued ticket waits while its repository has that many agent pull requests
        awaiting review (a run under way counts: it becomes one). Says so on the ticket; True when held."""
        limit = self.settings.bridge.max_open_reviews
        if limit is None or row.repo is None:
            return False
        open_reviews = sum(
            1 for r in self.store.tickets(stages=(Stage.RUNNING, Stage.REVIEW)) if r.repo == row.repo and r.id != row.id
        )
        decision = lifecycle.review_capacity(view, row.repo, limit, open_reviews)
        if decision is None:
            return False
        if decision.reason != row.reason:
            self._apply(row, decision, report)
        return True

    def _start(self, row: TicketRow, view: TicketView, report: CycleReport) -> None:
        decision = lifecycle.take(view)
        if row.stage_enum is Stage.RUNNING and row.branch and row.repo:
            decision = lifecycle.recover(view, self._find_pr(row), self._run_view(row))
        if decision.effect is Effect.RUN:
            # Only an agent run spends the budget: publishing a finished change or adopting a pull request never
            # waits for it to renew.
            budget_left = self._budget_left()
            if budget_left <= 0:
                spent = lifecycle.budget_spent(view, self.settings.agent.daily_budget_usd)
                if spent.reason != row.reason:
                    self._apply(row, spent, report)
                return
            self._start_run(row, decision, budget_left, report)
            return
        self._apply(row, decision, report)

    def _start_run(self, row: TicketRow, decision: Decision, budget_left: float, report: CycleReport) -> None:
        if decision.phase is Phase.PLANNING:
            self._start_plan_run(row, decision, budget_left, report)
            return
        if not self.runs.has_room():
            return  # every worker is busy: the ticket stays queued until one is free (and its ticket is not read)
        try:
            ticket = self.trackers[row.tracker].get_ticket(row.ref)
        except TrackerError as exc:
            log.warning("run.read_failed", ref=row.ref, error=str(exc))
            return
        ci_pr = row.pr_id if row.phase is Phase.ITERATING else None  # an iteration: its failed checks' logs
        if row.actor is None and row.pr_id is None:
            self._note_actor(row, ticket)
        self._seen_by_the_agent(row, ticket)
        row = self._apply(row, decision, report)
        if row.stage_enum is not Stage.RUNNING:
            return  # the card could not be moved: the ticket failed with the reason
        report.started_runs.append(row.ref)
        assert row.repo is not None and row.branch is not None
        repo = self.settings.repo(row.repo)
        backend, run, trace_path = self._open_run(
            row, ticket, folder="workspaces", trace_name="attempt", budget_left=budget_left,
            cap=self.settings.agent.max_cost_usd,
        )  # fmt: skip
        log.info("run.start", ref=ticket.ref, attempt=run.attempt, backend=backend.name, branch=row.branch)
        plan = RunPlan(
            ticket=ticket,
            repo=repo,
            branch=row.branch,
            workspace=Path(run.workspace),
            trace_path=trace_path,
            feedback=row.feedback,
            daily_budget_left_usd=budget_left,
            approved_plan=self._approved_plan(row.id),
        )
        self._cancels[row.id] = plan.cancel
        host = self.hosts[repo.name]
        ticket_id, run_id, ref = row.id, run.id, row.ref

        def job() -> None:
            try:
                run_plan = self._with_ci_logs(plan, host, ci_pr)
                result = execute_run(
                    run_plan,
                    host=host,
                    backend=backend,
                    settings=self.settings,
                    secrets=self._secrets,
                    on_event=lambda ev: self._inbox.put(Progress(ticket_id, run_id, ev)),
                )
                self._inbox.put(RunDone(ticket_id, run_id, report=result))
            except RemoteError as exc:
                self._inbox.put(RunDone(ticket_id, run_id, workspace_error=exc))
            except Exception as exc:  # a bug or an outage in one run must not take the daemon down
                log.exception("run.crashed", ref=ref)
                self._inbox.put(RunDone(ticket_id, run_id, crash=str(exc)))

        spec = RunSpec(
            ticket=ticket,
            repo=repo.name,
            branch=row.branch,
            feedback=row.feedback,
            daily_budget_left_usd=budget_left,
            approved_plan=plan.approved_plan,
            ci_pr=ci_pr,
        )
        with self._active_lock:
            self.active[ticket_id] = self.runs.submit(ticket_id, run_id, job, spec)

    def _active_ids(self) -> list[int]:
        with self._active_lock:
            return [k for k, f in self.active.items() if not f.done()]

    @staticmethod
    def _with_ci_logs(plan: RunPlan, host: CodeHost, pr_id: str | None) -> RunPlan:
        """The plan with the failed CI jobs' log tails added to the agent's feedback (in the worker: the logs are
        downloaded). Not written to the ticket's `feedback`, which the lifecycle compares with the pull request's."""
        if pr_id is None:
            return plan
        try:
            pr = host.get_pull_request(pr_id)
        except CodeHostError as exc:
            log.warning("ci_logs.pr_unreadable", pr=pr_id, error=str(exc))
            return plan
        lines = ci_feedback_for(host, pr)
        return replace(plan, feedback=[*plan.feedback, *lines]) if lines else plan

    def _submit(self, ticket_id: int, job: Callable[[], None]) -> None:
        with self._active_lock:
            self.active[ticket_id] = self.pool.submit(job)

    def _row(self, ticket_id: int) -> TicketRow:
        with self.store.session() as s:
            row = s.get(TicketRow, ticket_id)
            assert row is not None
            return row

    # --- results handed back by worker threads ---------------------------------------------------------------------

    def _drain(self, report: CycleReport | None) -> None:
        """Write what worker threads reported: the loop is the only writer of ticket state."""
        try:
            self.runs.poll()  # runs executing in `worker` processes report through the store
        except Exception:  # the store or the queue hiccuped: the next pass reads the same rows again
            log.exception("queue.poll_failed")
        while True:
            try:
                message = self._inbox.get_nowait()
            except queue.Empty:
                return
            try:
                if isinstance(message, Progress):
                    self._on_progress(message)
                elif isinstance(message, RunDone):
                    self._settle(message.ticket_id)
                    self._on_run_done(message, report)
                elif isinstance(message, ScoreDone):
                    self._on_score_done(message, report)
                else:
                    self._settle(message.ticket_id)
                    self._on_publish_done(message, report)
            except Exception:
                log.exception("engine.result_failed", ref=self._ref_of(message.ticket_id))

    def _settle(self, ticket_id: int) -> None:
        """The ticket's job has reported its end: it is no longer active (its handler may submit the next job)."""
        with self._active_lock:
            self.active.pop(ticket_id, None)

    def _on_progress(self, p: Progress) -> None:
        event = p.event
        if event.usage is not None:
            u = event.usage
            # Recorded as it streams: `spent_on` (and so the budget) counts it before the run ends.
            self.store.update_run(
                p.run_id, turns=u.turns, input_tokens=u.input_tokens, output_tokens=u.output_tokens, cost_usd=u.cost_usd
            )
        if not event.message:
            return
        row = self.store.update_ticket(p.ticket_id, progress=event.message[:300])
        now = time.monotonic()
        if now - self._last_progress.get(p.ticket_id, 0.0) >= PROGRESS_INTERVAL_S:
            self._last_progress[p.ticket_id] = now
            self._converge(row)

    def _on_run_done(self, done: RunDone, report: CycleReport | None) -> None:
        self._cancels.pop(done.ticket_id, None)
        row = self._row(done.ticket_id)
        if self._run_done_after_stop(row, done):
            return
        if row.phase is Phase.PLANNING and done.report is not None:
            self._on_plan_done(row, done.run_id, done.report, report)
            return
        if done.workspace_error is not None:
            # Not the agent's failure: the run never began. The run row says so; the ticket retries with backoff.
            self.store.update_run(
                done.run_id, status="interrupted", finished_at=utcnow(), reason=f"workspace: {done.workspace_error}"
            )
            decision = lifecycle.workspace_unavailable(self._view(row), done.workspace_error, self.retry, self.clock())
            self._apply(row, decision, report)
            return
        if done.report is None:
            self.store.update_run(
                done.run_id, status="interrupted", finished_at=utcnow(), reason=f"crashed: {done.crash}"
            )
            self._apply(row, lifecycle.run_crashed(done.crash or "unknown error"), report)
            return
        result = done.report
        tests = _tests_word(result.outcome.value)
        summary = result.summary
        if result.outcome is RunOutcome.TESTS_FAILED and result.test_output:
            summary = (summary + "\n\n" if summary else "") + "Test output (last lines):\n\n```\n" + "\n".join(
                result.test_output.strip().splitlines()[-15:]
            ) + "\n```"
        self.store.finish_run(
            done.run_id,
            result.outcome,
            result.usage,
            reason=result.reason,
            summary=summary,
            commit_sha=result.commit_sha,
        )
        row = self.store.update_ticket(row.id, progress=f"tests {tests}" if tests else None)
        log.info("run.finished", ref=row.ref, outcome=result.outcome.value, reason=result.reason)
        if result.outcome in lifecycle.TRANSIENT_OUTCOMES:
            self._retry_agent(row, result, report)
            return
        self._apply(row, lifecycle.run_finished(result.outcome, result.reason), report)

    def _publish(self, row: TicketRow) -> None:
        """Push the branch and open (or find) the pull request in a worker: the daemon's credentials, never the
        agent's. The result comes back to the loop as a `PublishDone`."""
        run = self.store.last_run(row.id)
        assert row.branch is not None and row.repo is not None and run is not None
        host = self.hosts[row.repo]
        branch, commit, title, body = row.branch, run.commit_sha, self._pr_title(row), self._pr_body(row, run)
        reviewer = self._reviewer(row.actor) if self.settings.bridge.request_review else None
        workspace = Path(run.workspace)
        ticket_id, run_id, ref = row.id, run.id, row.ref
        cancel = self._cancels.setdefault(row.id, threading.Event())
        bundle = self.store.run_bundle(run.id)  # a run executed by a worker: its commit, to push from here

        def job() -> None:
            effects: list[tuple[str, str]] = []
            try:
                if cancel.is_set():
                    raise _Stopped
                if bundle is not None and commit is not None:
                    unbundle(host, workspace, branch, commit, bundle)
                host.push(workspace, branch)
                failpoint("after_push")
                effects.append(("push", f"{branch}@{commit}"))
                pr = host.find_pull_request(branch)
                if pr is None or pr.state is not PullRequestState.OPEN:
                    if cancel.is_set():
                        raise _Stopped
                    pr = host.open_pull_request(branch, title, body)
                    failpoint("after_open_pr")
                    effects.append(("open_pr", pr.url))
                    effects += _request_review(host, pr, reviewer, ref)
                self._inbox.put(PublishDone(ticket_id, run_id, pr=pr, effects=tuple(effects)))
            except _Stopped:
                self._inbox.put(PublishDone(ticket_id, run_id, effects=tuple(effects)))
            except RemoteError as exc:
                self._inbox.put(PublishDone(ticket_id, run_id, effects=tuple(effects), error=exc))
            except Exception as exc:
                log.exception("publish.crashed", ref=ref)
                self._inbox.put(PublishDone(ticket_id, run_id, effects=tuple(effects), crash=str(exc)))

        self._submit(row.id, job)

    def _note_actor(self, row: TicketRow, ticket: Ticket) -> None:
        """Who triggered the ticket, for the review request once its pull request is open (known already when
        `allowed_actors` is set; else asked of the tracker once, here). Unknown is fine: no review is requested."""
        try:
            actor = self.trackers[row.tracker].trigger_actor(ticket)
        except Exception as exc:  # a nicety: never a reason to hold the run back
            log.warning("ticket.actor_unknown", ref=row.ref, error=str(exc))
            return
        if actor:
            self.store.update_ticket(row.id, actor=actor)

    def _on_publish_done(self, done: PublishDone, report: CycleReport | None) -> None:
        for kind, detail in done.effects:
            self.store.record_effect(done.ticket_id, kind, detail)
        self._cancels.pop(done.ticket_id, None)
        row = self._row(done.ticket_id)
        if row.stage_enum is not Stage.RUNNING:
            log.info("publish.after_stop", ref=row.ref, stage=row.stage_enum.value)
            return  # stopped while publishing: the card stays where the person put it
        if done.pr is not None:
            self._adopt_pull_request(row, done.pr, report)
            return
        if done.error is not None:
            self.store.record_effect(row.id, "publish_error", f"run {done.run_id}: {done.error}")
            self._apply(row, lifecycle.publish_failed(self._view(row), done.error, self.retry, self.clock()), report)
            return
        self._apply(row, lifecycle.run_crashed(done.crash or "unknown error"), report)

    def _adopt_pull_request(self, row: TicketRow, pr: PullRequest, report: CycleReport | None) -> None:
        self.trackers[row.tracker].link_pull_request(row.ref, pr)
        failpoint("after_link_pr")
        self.store.record_effect(row.id, "link_pr", pr.url)
        # The pull request is recorded with the stage in one write: a ticket `running` with a pull request is one
        # taking another iteration, so recording it earlier would make a crash look like an iteration.
        decision = lifecycle.published(row.iterations, self.settings.agent.max_iterations)
        self._apply(row, decision, report, **pr_fields(pr))

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
        decision = lifecycle.pull_request_decision(
            pr,
            self._view(row),
            max_iterations=self.settings.agent.max_iterations,
            iterated_feedback=row.feedback if row.iterations else None,
            conflict_files=self._conflict_files(row, pr),
        )
        if decision is not None:
            self._apply(row, decision, report)
        elif row.stage_enum is Stage.REVIEW and pr.state is PullRequestState.OPEN:
            self._follow_up_comments(row, pr, report)

    def _conflict_files(self, row: TicketRow, pr: PullRequest) -> list[str]:
        """The files a conflicting pull request's merge would leave conflicted, found by a dry-run merge in a fresh
        clone of the daemon's own (`conflicts.conflicting_files`); once per head and base pair, only while the host
        says it conflicts and the ticket may act on it. [] when it does not conflict or git could not tell."""
        if not pr.conflicts or row.stage_enum is not Stage.REVIEW or pr.head_sha == row.iterated_sha:
            return []
        key = (row.id, pr.head_sha, pr.base_sha)
        if key not in self._conflicts:
            dest = self.settings.state_dir / "conflicts" / str(row.id)
            try:
                self._conflicts[key] = conflicting_files(self.hosts[row.repo or ""], dest, pr.branch, pr.base)
            except (RemoteError, GitError) as exc:
                log.warning("pr.conflicts_unknown", ref=row.ref, error=str(exc))
                self._conflicts[key] = []
            log.info("pr.conflicts", ref=row.ref, base=pr.base, files=self._conflicts[key])
        return self._conflicts[key]

    def _follow_up_comments(self, row: TicketRow, pr: PullRequest, report: CycleReport) -> None:
        """`@mention` comments on the pull request and on the ticket: one iteration per new request
        (lifecycle.follow_up); the comments handled are remembered in the store (effects of kind
        `follow_up_comment`), so none counts twice."""
        host = self.hosts[row.repo or ""]
        comments: list[PullRequestComment] = []
        if isinstance(host, PullRequestComments):
            try:
                comments = host.pull_request_comments(pr.id)
            except CodeHostError as exc:
                log.warning("pr.comments_failed", ref=row.ref, error=str(exc))
                return
        comments += self._ticket_comments(row)
        if not comments:
            return
        handled = {e.detail for e in self.store.effects(row.id, kind="follow_up_comment")}
        outcome = lifecycle.follow_up(
            self._view(row),
            pr,
            comments,
            handled=handled,
            mention=self.settings.trigger.mention,
            allowed_actors=self.settings.trigger.allowed_actors,
            max_iterations=self.settings.agent.max_iterations,
        )
        for comment_id in outcome.handled:
            self.store.record_effect(row.id, "follow_up_comment", comment_id)
        if outcome.decision is not None and outcome.decision.reason != row.reason:
            self._apply(row, outcome.decision, report)

    def _ticket_comments(self, row: TicketRow) -> list[PullRequestComment]:
        """People's comments on the ticket itself, on trackers that give their authors (`TicketDiscussion`): the
        ticket as this cycle's poll returned it, else one read. Ids are prefixed so they never meet a pull
        request comment's."""
        tracker = self.trackers[row.tracker]
        if not isinstance(tracker, TicketDiscussion):
            return []
        ticket = self._polled.get((row.tracker, row.ref))
        if ticket is None:
            try:
                ticket = tracker.get_ticket(row.ref)
            except TrackerError as exc:
                log.warning("ticket.comments_failed", ref=row.ref, error=str(exc))
                return []
        return [
            PullRequestComment(f"ticket:{c.id}", c.author or "", c.body, on="ticket") for c in ticket.discussion
        ]

    def _seen_by_the_agent(self, row: TicketRow, ticket: Ticket) -> None:
        """The ticket's comments when a run starts are in the agent's prompt already: none of them is a follow-up
        request later (an `@mention` written before the trigger, an approval by comment)."""
        handled = {e.detail for e in self.store.effects(row.id, kind="follow_up_comment")}
        for c in ticket.discussion:
            if f"ticket:{c.id}" not in handled:
                self.store.record_effect(row.id, "follow_up_comment", f"ticket:{c.id}")

    # --- applying decisions and converging the board -----------------------------------------------------------

    def _view(self, row: TicketRow) -> TicketView:
        return TicketView(
            ref=row.ref,
            stage=row.stage_enum,
            phase=row.phase,
            reason=row.reason,
            pr_id=row.pr_id,
            pr_state=row.pr_state,
            iterations=row.iterations,
            publish_attempts=row.publish_attempts,
            retry_attempts=row.retry_attempts,
            retry_at=row.retry_at,
            iterated_sha=row.iterated_sha,
        )

    def _run_view(self, row: TicketRow) -> RunView | None:
        last = self.store.last_run(row.id)
        if last is None:
            return None
        return RunView(
            status=last.status,
            outcome=RunOutcome(last.outcome) if last.outcome else None,
            reason=last.reason,
            commit_sha=last.commit_sha,
            # A worker's commit comes as a bundle on the run row: publishing makes the workspace from it.
            workspace_ready=Path(last.workspace, ".git").exists() or self.store.has_bundle(last.id),
        )

    def _apply(
        self, row: TicketRow, decision: Decision, report: CycleReport | None, **extra: Unpack[TicketFields]
    ) -> TicketRow:
        """The one place a stage is written: the decision (with `extra` observed fields, in the same write) goes
        to the store first, then the board is brought to it, then the decision's effect is started."""
        if report is not None and decision.stage is not row.stage_enum:
            report.transitions.append((row.ref, decision.stage.value))
        log.info("ticket.stage", ref=row.ref, stage=decision.stage.value, phase=decision.phase, reason=decision.reason)
        phase = decision.phase if decision.stage is Stage.RUNNING else None
        fields: TicketFields = {**decision.fields, **extra}
        if decision.stage is not Stage.RUNNING:
            fields.setdefault("retry_at", None)
        fields["stage"], fields["phase"], fields["reason"] = decision.stage, phase, decision.reason
        row = self.store.update_ticket(row.id, **fields)
        row = self._converge(row)
        if row.stage_enum is not decision.stage:
            return row  # the board refused (the card could not be moved): the effect is not carried out
        if decision.effect is Effect.PUBLISH:
            self._publish(row)
        elif decision.effect is Effect.ADOPT_PR:
            pr = self._find_pr(row)
            if pr is not None:
                self._adopt_pull_request(row, pr, report)
        return row

    def _status_view(self, row: TicketRow) -> StatusView:
        last = self.store.last_run(row.id)
        plan = self._shown_plan(row, last)
        run = None
        if last is not None and row.stage_enum in (Stage.RUNNING, Stage.REVIEW, Stage.DONE, Stage.FAILED):
            run = RunSummary(
                attempt=last.attempt,
                turns=last.turns,
                tokens=last.input_tokens + last.output_tokens,
                cost_usd=last.cost_usd,
                outcome=last.outcome if last.status == "finished" else None,
                tests=_tests_word(last.outcome),
            )
        return StatusView(
            stage=row.stage_enum,
            reason=row.reason,
            column=lifecycle.column_for(row.stage_enum, self.settings.stages, row.phase),
            score=row.score_model,
            run=run,
            progress=row.progress,
            pr_url=row.pr_url,
            summary=last.summary if last is not None and row.stage_enum is not Stage.RUNNING and not plan else "",
            total_cost_usd=self.store.ticket_cost(row.id),
            ignored=row.stage_enum is Stage.SEEN and "allowed_actors" in row.reason,
            phase=row.phase,
            plan=plan,
        )

    def _converge_pending(self, trackers: set[str]) -> None:
        for row in self.store.tickets_to_sync():
            if self._late():
                return
            if row.tracker in trackers and not self._is_active(row.id):
                self._guarded(row, partial(self._converge, row))

    def _converge(self, row: TicketRow) -> TicketRow:
        """Move the card and rewrite the status comment until they match the stage; each step only when needed."""
        stage = row.stage_enum
        if stage is Stage.SEEN and not row.reason:
            return self.store.update_ticket(row.id, synced=True)
        tracker = self.trackers.get(row.tracker)
        if tracker is None:
            return row
        column = lifecycle.column_for(stage, self.settings.stages, row.phase)
        if column is not None and row.column_applied != column:
            try:
                tracker.move(row.ref, column)
                failpoint("after_move")
                row = self.store.update_ticket(row.id, column_applied=column)
                self.store.record_effect(row.id, "move", column)
            except TrackerError as exc:
                log.error("move.failed", ref=row.ref, column=column, error=str(exc))
                decision = lifecycle.move_failed(stage, column, str(exc))
                if decision is None:
                    # Nowhere further to send it: stop retrying the move and say why in the comment.
                    row = self.store.update_ticket(row.id, column_applied=column)
                else:
                    return self._apply(row, decision, None)
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
                return row  # stays unsynced: the next cycle tries again
        if not row.synced:
            row = self.store.update_ticket(row.id, synced=True)
        return row

    # --- reconciliation, operator controls, transient agent failures (issue 13) -----------------------------------

    def _reviewer(self, actor: str | None) -> str | None:
        """The code-host user to ask for review: the tracker user who triggered the ticket, through `[bridge]
        reviewers` when listed there."""
        if not actor:
            return None
        mapped = (host for tracker, host in self.settings.bridge.reviewers.items() if same_name(tracker, actor))
        return next(mapped, actor)

    def _left_the_agent(self, row: TicketRow, ticket: Ticket | None) -> str | None:
        """Why a person took the ticket at work away (lifecycle.left_the_agent), or None. The columns a ticket at
        work may sit in are the trigger's, queued and running; a card moved anywhere else was taken away."""
        agent_columns = [self.trigger.column, self.settings.stages.queued, self.settings.stages.running]
        return lifecycle.left_the_agent(
            ticket, self.trigger, row.trigger_via, row.column_applied, agent_columns, self.settings.stages.done
        )

    def _ref_of(self, ticket_id: int) -> str:
        try:
            return self._row(ticket_id).ref
        except Exception:  # the log line must never fail for want of a reference
            return f"#{ticket_id}"

    def _reconcile_at_work(self, healthy: set[str], report: CycleReport) -> None:
        """Stop every running ticket a person took away (closed, deleted, card moved out of the agent's columns,
        trigger label removed). What this cycle's poll returned is used as is; the others running get one targeted
        read each (at most `max_concurrent_runs` plus those publishing), so an idle board costs nothing more."""
        for row in self.store.tickets(stages=(Stage.RUNNING,)):
            if row.tracker not in healthy or self._late():
                continue
            self._guarded(row, partial(self._reconcile_one, row, report))

    def _reconcile_one(self, row: TicketRow, report: CycleReport) -> None:
        ticket = self._polled.get((row.tracker, row.ref))
        if ticket is None:
            try:
                ticket = self.trackers[row.tracker].get_ticket(row.ref)
            except TrackerError as exc:
                if exc.transient or "not found" not in str(exc).lower():
                    log.warning("reconcile.read_failed", ref=row.ref, error=str(exc))
                    return
                ticket = None  # the tracker says it is gone
        why = self._left_the_agent(row, ticket)
        if why is not None:
            self._stop(row, lifecycle.stopped(why, running=True), report)

    def _stop(self, row: TicketRow, decision: Decision, report: CycleReport | None) -> None:
        """Kill the run (its whole process group, through the backend's cancel switch) and record the decision;
        the card is not moved (a cancelled ticket has no column) and the result, if any comes, is dropped."""
        cancel = self._cancels.get(row.id)
        if cancel is not None:
            cancel.set()
        self.runs.cancel(row.id)  # a run executing in a worker: the worker sees it on the run row
        log.info("run.stopped", ref=row.ref, reason=decision.reason, active=self._is_active(row.id))
        self._apply(row, decision, report)

    def _run_done_after_stop(self, row: TicketRow, done: RunDone) -> bool:
        """A run that ends after its ticket was stopped: the run row is closed, nothing else happens."""
        if row.stage_enum is Stage.RUNNING:
            return False
        usage = done.report.usage if done.report is not None else None
        fields = {"turns": usage.turns, "cost_usd": usage.cost_usd} if usage is not None else {}
        self.store.update_run(done.run_id, status="finished", outcome=RunOutcome.CANCELLED.value,
                              finished_at=utcnow(), reason=row.reason, **fields)  # fmt: skip
        log.info("run.finished", ref=row.ref, outcome=RunOutcome.CANCELLED.value, reason=row.reason)
        return True

    def _retry_agent(self, row: TicketRow, result: RunReport, report: CycleReport | None) -> None:
        decision = lifecycle.agent_interrupted(
            self._view(row),
            result.outcome,
            result.reason,
            max_attempts=self.settings.agent.max_attempts,
            backoff_s=self.settings.bridge.retry_backoff,
            now=self.clock(),
        )
        retry_at = decision.fields.get("retry_at")
        log.warning("run.transient", ref=row.ref, outcome=result.outcome.value, retry_at=str(retry_at))
        self._apply(row, decision, report)

    def _consume_controls(self, report: CycleReport | None) -> None:
        """Carry out `tracker-bridge stop/retry REF` (CLI or web API) recorded in the store, oldest first."""
        for control in self.controls.pending("stop") + self.controls.pending("retry"):
            assert control.ref is not None
            rows = [r for r in (self.store.ticket(t, control.ref) for t in self.trackers) if r is not None]
            for row in rows:
                if control.kind == "stop" and row.stage_enum in (Stage.QUEUED, Stage.RUNNING):
                    running = row.stage_enum is Stage.RUNNING
                    self._stop(row, lifecycle.stop_requested(control.requested_by, running=running), report)
                elif control.kind == "retry":
                    decision = lifecycle.retry_requested(self._view(row), control.requested_by)
                    if decision is not None:
                        self._apply(row, decision, report)
                    else:
                        log.warning("control.ignored", ref=row.ref, kind="retry", stage=row.stage_enum.value)
            if not rows:
                log.warning("control.unknown_ticket", ref=control.ref, kind=control.kind)
            self.controls.mark_done(control.id)
            log.info("control.done", kind=control.kind, ref=control.ref, by=control.requested_by)
    def _open_run(
        self, row: TicketRow, ticket: Ticket, *, folder: str, trace_name: str, budget_left: float, cap: float
    ) -> tuple[AgentBackend, RunRow, Path]:
        """The run row of an agent run (or a plan run): its workspace under `state_dir/<folder>`, its trace file, and
        its share of today's budget set aside: what is left after every other run's reservation, its own dollar
        `cap` when that is less, so concurrent runs together overspend by at most the turn each is in at its cap."""
        assert row.branch is not None
        backend = self.backend_factory(self.settings)
        key = workspaces.workspace_key(ticket.tracker, ticket.key, ticket.tracker in self._colliding)
        run = self.store.start_run(
            row.id,
            backend=backend.name,
            branch=row.branch,
            workspace=str(self.settings.state_dir / folder / key),
            trace_path="",
            reserved_usd=min(budget_left, cap),
        )
        trace_path = self.settings.state_dir / "runs" / key / f"{trace_name}-{run.attempt}.jsonl"
        run = self.store.update_run(run.id, trace_path=str(trace_path))
        return backend, run, trace_path

    # --- the approval workflow (issue 15): plan runs, approvals, the approved plan ---------------------------------

    def _start_plan_run(self, row: TicketRow, decision: Decision, budget_left: float, report: CycleReport) -> None:
        """A mid-score ticket's read-only plan run, capped at `[scoring] plan_max_cost_usd`: its cost is a run's
        (recorded on its run row, so it counts in the daily budget), its result a plan, never a push. It goes
        where agent runs go: with a queue, to a `tracker-bridge worker`."""
        if not self.runs.has_room():
            return  # every worker is busy: the ticket waits, unread, as an agent run does
        try:
            ticket = self.trackers[row.tracker].get_ticket(row.ref)
        except TrackerError as exc:
            log.warning("plan.read_failed", ref=row.ref, error=str(exc))
            return
        row = self._apply(row, decision, report)
        if row.stage_enum is not Stage.RUNNING:
            return
        report.started_runs.append(row.ref)
        assert row.repo is not None and row.branch is not None
        repo = self.settings.repo(row.repo)
        backend, run, trace_path = self._open_run(
            row, ticket, folder="plans", trace_name="plan", budget_left=budget_left,
            cap=self.settings.scoring.plan_max_cost_usd,
        )  # fmt: skip
        log.info("plan.start", ref=ticket.ref, attempt=run.attempt, backend=backend.name)
        plan = RunPlan(
            ticket=ticket,
            repo=repo,
            branch=row.branch,
            workspace=Path(run.workspace),
            trace_path=trace_path,
            feedback=[],
            daily_budget_left_usd=budget_left,
        )
        self._cancels[row.id] = plan.cancel  # a stop reaches a plan run as it reaches an agent run
        host = self.hosts[repo.name]
        ticket_id, run_id = row.id, run.id

        def job() -> None:
            try:
                on_event = partial(_put_progress, self._inbox, ticket_id, run_id)
                result = execute_plan(plan, host=host, backend=backend, settings=self.settings, on_event=on_event)
                self._inbox.put(RunDone(ticket_id, run_id, report=result))
            except RemoteError as exc:
                self._inbox.put(RunDone(ticket_id, run_id, workspace_error=exc))
            except Exception as exc:
                log.exception("plan.crashed", ticket_id=ticket_id)
                self._inbox.put(RunDone(ticket_id, run_id, crash=str(exc)))

        spec = RunSpec(ticket=ticket, repo=repo.name, branch=row.branch, daily_budget_left_usd=budget_left,
                       plan_only=True)  # fmt: skip
        with self._active_lock:
            self.active[ticket_id] = self.runs.submit(ticket_id, run_id, job, spec)

    def _on_plan_done(self, row: TicketRow, run_id: int, result: RunReport, report: CycleReport | None) -> None:
        self.store.finish_run(run_id, result.outcome, result.usage, reason=result.reason, summary=result.summary)
        log.info("plan.finished", ref=row.ref, outcome=result.outcome.value, chars=len(result.summary))
        trigger = self.settings.trigger
        decision = lifecycle.plan_finished(
            result.outcome,
            result.summary,
            result.reason,
            approve_label=trigger.approve_label,
            mention=trigger.approve_mention,
        )
        self._apply(row, decision, report)

    def _approvals(self, tracker: Tracker, ticket: Ticket, plan_id: int) -> list[Approval]:
        """The approvals on a ticket now: the approval label (once per plan and person) and comments that mention
        the bot with `approve` (on trackers that expose comments with their authors)."""
        found: list[Approval] = []
        trigger = self.settings.trigger
        if any(same_name(label, trigger.approve_label) for label in ticket.labels):
            # Who added it, where the tracker can say (the local tracker: `approved_by`); else unknown, which
            # `allowed_actors` refuses.
            actor_of = getattr(tracker, "approval_actor", None)
            actor: str | None = actor_of(ticket) if callable(actor_of) else None
            found.append(Approval(f"label:{plan_id}:{actor or ''}", "label", actor))
        mention = trigger.approve_mention.lower()
        for comment in ticket.discussion:
            body = comment.body.lower()
            if mention in body and re.search(r"\bapprove[ds]?\b", body):
                found.append(Approval(f"comment:{comment.id}", "comment", comment.author))
        return found

    def _used_approvals(self, ticket_id: int) -> set[str]:
        used: set[str] = set()
        for e in self.store.effects(ticket_id):
            if e.kind in ("approval", "approval_refused"):
                used.update(json.loads(e.detail).get("keys", []))
        return used

    def _check_approval(self, row: TicketRow, report: CycleReport) -> None:
        """A ticket awaiting approval: an allowed person's approval queues it with its plan; anyone else's is
        reported on the ticket. Every approval is used once (recorded as an effect before the stage is written)."""
        tracker = self.trackers[row.tracker]
        try:
            ticket = tracker.get_ticket(row.ref)
        except TrackerError as exc:
            log.warning("approval.read_failed", ref=row.ref, error=str(exc))
            return
        why = self._left_the_agent(row, ticket)
        if why is not None:  # closed, or its card moved to Done, while the plan waited for a person
            self._apply(row, lifecycle.stopped(why, running=False), report)
            return
        plan_run = self.store.last_run(row.id)
        approvals = self._approvals(tracker, ticket, plan_run.id if plan_run else 0)
        found = lifecycle.approval_decision(
            approvals, self._used_approvals(row.id), self.settings.trigger.allowed_actors
        )
        if found is None:
            return
        decision, approval = found
        detail: dict[str, object] = {"via": approval.via, "actor": approval.actor, "keys": [approval.key]}
        if decision.stage is Stage.QUEUED:
            # Every approval present now is spent by this one: a second one left on the ticket must not approve a
            # later plan by itself.
            detail["keys"] = [a.key for a in approvals]
            detail["plan"] = plan_run.summary if plan_run else ""
            self.store.record_effect(row.id, "approval", json.dumps(detail))
            if approval.via == "label":
                try:  # so that the label can approve a later plan when a person adds it again
                    tracker.remove_label(row.ref, self.settings.trigger.approve_label)
                except TrackerError as exc:
                    log.warning("approval.unlabel_failed", ref=row.ref, error=str(exc))
        else:
            self.store.record_effect(row.id, "approval_refused", json.dumps(detail))
        log.info("approval.seen", ref=row.ref, via=approval.via, actor=approval.actor, stage=decision.stage.value)
        self._apply(row, decision, report)

    def _approved_plan(self, ticket_id: int) -> str:
        """The plan a person approved for the ticket's current evaluation ("" when none: a new score resets it)."""
        for e in reversed(self.store.effects(ticket_id)):
            if e.kind == "score":
                return ""
            if e.kind == "approval":
                return str(json.loads(e.detail).get("plan") or "")
        return ""

    def _shown_plan(self, row: TicketRow, last: RunRow | None) -> str:
        """The plan shown in the status comment: the one awaiting approval, then the approved one."""
        if row.stage_enum is Stage.AWAITING_APPROVAL:
            return last.summary if last is not None else ""
        if row.stage_enum in (Stage.QUEUED, Stage.RUNNING) and row.phase is not Phase.PLANNING:
            return self._approved_plan(row.id)
        return ""

    # --- shutdown hooks (issue 13): the daemon's signal handling calls these ---------------------------------------

    def stop_dispatch(self) -> None:
        """Start no new run from now on; the runs under way go on."""
        self.dispatch_stopped = True

    def in_flight(self) -> list[str]:
        """References of the tickets whose runs are under way."""
        # Runs executing in `worker` processes go on without this process: a leader stopping does not wait for them.
        return [self._row(i).ref for i in self._active_ids() if not self.runs.elsewhere(i)]

    def interrupt_runs(self) -> int:
        """Give up on the runs still going: recorded interrupted, so the next start resumes them as after a crash."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        return self.store.interrupt_running(keep=self.runs.held_elsewhere())


def _wait_done(futures: list[Future[Any]], timeout: float) -> None:
    """Wait until every future is done or `timeout` passes. In slices: a future cancelled by a pool's shutdown
    (`cancel_futures`) never wakes a `concurrent.futures.wait` already waiting on it, which would hold a daemon
    that was asked to stop for the whole cycle deadline."""
    deadline = time.monotonic() + timeout
    while True:
        pending = [f for f in futures if not f.done()]
        left = deadline - time.monotonic()
        if not pending or left <= 0:
            return
        wait_futures(pending, timeout=min(0.25, left))


def _request_review(host: CodeHost, pr: PullRequest, reviewer: str | None, ref: str) -> list[tuple[str, str]]:
    """Ask the person who triggered the ticket to review its new pull request, where the host can (issue 14). Any
    failure (not a collaborator, no such user on the host, the host down) is a warning: the pull request stands."""
    if not reviewer or not isinstance(host, ReviewRequests):
        return []
    try:
        host.request_review(pr.id, reviewer)
    except Exception as exc:
        log.warning("pr.review_request_failed", ref=ref, pr=pr.url, reviewer=reviewer, error=str(exc))
        return []
    log.info("pr.review_requested", ref=ref, pr=pr.url, reviewer=reviewer)
    return [("review_requested", reviewer)]


def _put_progress(inbox: queue.SimpleQueue[Message], ticket_id: int, run_id: int, event: AgentEvent) -> None:
    inbox.put(Progress(ticket_id, run_id, event))


class _Stopped(Exception):
    """A publish job found its ticket stopped before a remote step: nothing more is pushed or proposed."""


def _tests_word(outcome: str | None) -> str | None:
    if outcome == RunOutcome.SUCCEEDED.value:
        return "passed"
    if outcome == RunOutcome.TESTS_FAILED.value:
        return "failed"
    return None


def build_engine(settings: Settings, store: Store, **kwargs: object) -> Engine:
    """The engine with every configured tracker and code host created through the connector registry."""
    from tracker_bridge_connectors.registry import create_code_host, create_tracker

    trackers = {t.name: create_tracker(t, settings) for t in settings.trackers}
    hosts = {r.name: create_code_host(r, settings) for r in settings.repos}
    return Engine(settings, store, trackers, hosts, **kwargs)  # type: ignore[arg-type]
