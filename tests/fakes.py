"""In-memory stand-ins for the engine's unit tests: a tracker board, a code host and a scripted agent.

The connectors have their own tests against the service simulators; here the subject is the engine's journey, so
the remotes are plain Python objects that record every call and can be told to fail (an outage, a 503, a refused
move) for a given number of calls. Workspaces stay real git repositories (the run pipeline commits in them), and
the agent spends money per turn through the real `CapMeter`, as every backend does, so budget rules are exercised
the way a real run exercises them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from tracker_bridge.agents.caps import CapMeter
from tracker_bridge.config import Settings, TrackerConfig
from tracker_bridge.engine import Engine
from tracker_bridge.gitutil import git
from tracker_bridge.models import PullRequest, RunOutcome, Score, Ticket
from tracker_bridge.protocols import (
    AgentEvent,
    AgentRequest,
    AgentResult,
    CodeHostError,
    PollResult,
    Problem,
    RejectedTicket,
    RemoteError,
    TrackerError,
)
from tracker_bridge.store import Store, TicketRow


class Faults:
    """Errors to raise on the next calls of a named operation: `faults.add("push", CodeHostError("503"), times=2)`."""

    def __init__(self) -> None:
        self._queued: dict[str, list[Exception]] = {}
        self._lock = threading.Lock()

    def add(self, op: str, error: Exception, times: int = 1) -> None:
        with self._lock:
            self._queued.setdefault(op, []).extend([error] * times)

    def clear(self, op: str) -> None:
        with self._lock:
            self._queued.pop(op, None)

    def check(self, op: str) -> None:
        with self._lock:
            pending = self._queued.get(op)
            error = pending.pop(0) if pending else None
        if error is not None:
            raise error


@dataclass
class FakeTracker:
    """A board in memory. `poll` returns every triggered ticket (no cursor): the engine's content hash makes a
    repeated ticket a no-op, as with a real tracker whose cursor window overlaps."""

    name: str = "board"
    tickets: dict[str, Ticket] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    rejected: list[RejectedTicket] = field(default_factory=list)
    actors: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)

    def add(self, ref: str, *, title: str = "Fix the bug", labels: tuple[str, ...] = ("agent-ready",),
            repo: str | None = None, column: str = "Backlog") -> Ticket:  # fmt: skip
        ticket = Ticket(ref=ref, tracker=self.name, title=title, labels=labels, repo=repo, column=column)
        self.tickets[ref] = ticket
        self.columns[ref] = column
        return ticket

    def _current(self, ref: str) -> Ticket:
        return self.tickets[ref].model_copy(update={"column": self.columns.get(ref)})

    def check(self, columns: Mapping[str, str]) -> list[Problem]:
        return []

    def poll(self, cursor: str | None) -> PollResult:
        self.calls.append(("poll", cursor or ""))
        self.faults.check("poll")
        return PollResult(
            tickets=[self._current(ref) for ref in self.tickets], cursor="c", rejected=list(self.rejected)
        )

    def get_ticket(self, ref: str) -> Ticket:
        self.calls.append(("get_ticket", ref))
        self.faults.check("get_ticket")
        return self._current(ref)

    def move(self, ref: str, column: str) -> None:
        self.calls.append(("move", f"{ref}->{column}"))
        self.faults.check("move")
        self.columns[ref] = column

    def upsert_status_comment(self, ref: str, body: str) -> None:
        self.calls.append(("comment", ref))
        self.faults.check("comment")
        self.comments[ref] = body

    def add_label(self, ref: str, label: str) -> None:
        t = self.tickets[ref]
        self.tickets[ref] = t.model_copy(update={"labels": (*t.labels, label)})

    def remove_label(self, ref: str, label: str) -> None:
        t = self.tickets[ref]
        self.tickets[ref] = t.model_copy(update={"labels": tuple(x for x in t.labels if x != label)})

    def trigger_actor(self, ticket: Ticket) -> str | None:
        return self.actors.get(ticket.ref)

    def link_pull_request(self, ref: str, pr: PullRequest) -> None:
        self.calls.append(("link", ref))
        self.links[ref] = pr.url


@dataclass
class FakeCodeHost:
    """A code host in memory: a clone is a fresh local git repository with one file; a push records the branch
    head; pull requests are dicts keyed by branch."""

    root: Path
    name: str = "app"
    pushed: dict[str, str] = field(default_factory=dict)
    pulls: dict[str, PullRequest] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self) -> list[Problem]:
        return []

    def clone(self, dest: Path, branch: str | None = None) -> None:
        self.calls.append(("clone", str(dest)))
        self.faults.check("clone")
        dest.mkdir(parents=True, exist_ok=True)
        git(dest, "init", "-q", "-b", "main")
        (dest / "app.py").write_text("def answer():\n    return 41\n")
        git(dest, "add", "-A")
        git(dest, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "start")

    def push(self, workspace: Path, branch: str) -> None:
        self.calls.append(("push", branch))
        self.faults.check("push")
        with self._lock:
            self.pushed[branch] = git(workspace, "rev-parse", branch)
            pr = self.pulls.get(branch)
            if pr is not None:
                self.pulls[branch] = pr.model_copy(update={"head_sha": self.pushed[branch]})

    def branch_exists(self, branch: str) -> bool:
        return branch in self.pushed

    def find_pull_request(self, branch: str) -> PullRequest | None:
        self.calls.append(("find_pr", branch))
        self.faults.check("find_pr")
        return self.pulls.get(branch)

    def open_pull_request(self, branch: str, title: str, body: str) -> PullRequest:
        self.calls.append(("open_pr", branch))
        self.faults.check("open_pr")
        with self._lock:
            number = str(len(self.pulls) + 1)
            pr = PullRequest(id=number, url=f"https://code.test/pr/{number}", branch=branch, base="main",
                             title=title, head_sha=self.pushed.get(branch))  # fmt: skip
            self.pulls[branch] = pr
            return pr

    def get_pull_request(self, pr_id: str) -> PullRequest:
        self.faults.check("get_pr")
        return next(p for p in self.pulls.values() if p.id == pr_id)

    def set_pr(self, branch: str, **changes: object) -> None:
        self.pulls[branch] = self.pulls[branch].model_copy(update=changes)


@dataclass
class ScriptedAgent:
    """An agent backend that takes `turns` turns costing `cost_per_turn` each, stopping at the request's caps
    (the daily budget left included) the way real backends do, and edits `app.py` so there is a change."""

    turns: int = 2
    cost_per_turn: float = 0.10
    outcome: RunOutcome = RunOutcome.SUCCEEDED
    gate: threading.Event | None = None  # when set, each run waits for it before its first turn
    name: str = "scripted"
    requests: list[AgentRequest] = field(default_factory=list)

    def run(self, request: AgentRequest, on_event: Callable[[AgentEvent], None]) -> AgentResult:
        self.requests.append(request)
        if self.gate is not None:
            self.gate.wait(30)
        meter = CapMeter.for_request(request)
        for turn in range(self.turns):
            stop = meter.before_turn()
            if stop is not None:
                return AgentResult(RunOutcome.CAP_REACHED, meter.usage, reason=stop)
            meter.add(turns=1, input_tokens=100, output_tokens=50, cost=self.cost_per_turn)
            on_event(AgentEvent("turn", f"turn {turn + 1}", usage=meter.usage))
        if self.outcome is RunOutcome.SUCCEEDED:
            (request.workspace / "app.py").write_text("def answer():\n    return 42\n")
        return AgentResult(self.outcome, meter.usage, summary="Made answer() return 42.",
                           reason="" if self.outcome is RunOutcome.SUCCEEDED else "the agent gave up")  # fmt: skip


class Clock:
    """The engine's clock (naive UTC, as the store keeps times), moved by hand: retry delays without sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 9, 0, 0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def always_accept(ticket: Ticket, config: object, repo_dir: object) -> Score:
    return Score(value=0.9, threshold=0.6, reasons=["a clear ticket"])


def settings_for(tmp: Path, **bridge: object) -> Settings:
    return Settings.model_validate(
        {
            "bridge": {"state": "sqlite:///state.db", "state_dir": "state", "max_concurrent_runs": 2, **bridge},
            "agent": {
                "sandbox": "none",
                "allow_unsandboxed": True,
                "daily_budget_usd": 50.0,
                "max_cost_usd": 3.0,
                "test_retries": 0,
            },
            "scoring": {"repo_analysis": False},
            "trackers": [{"name": "board", "kind": "local", "url": "./tickets", "repo": "app"}],
            "repos": [{"name": "app", "host": "local", "url": "./repo", "test_command": ""}],
            "base_dir": tmp,
        }
    )


@dataclass
class World:
    """An engine wired to the fakes; `step()` is one `tracker-bridge run --once` (a cycle, then wait)."""

    settings: Settings
    store: Store
    tracker: FakeTracker
    host: FakeCodeHost
    agent: ScriptedAgent
    engine: Engine
    clock: Clock

    def step(self) -> None:
        self.engine.cycle()
        self.engine.wait()

    def stage(self, ref: str) -> str:
        row = self.store.ticket(self.tracker.name, ref)
        assert row is not None
        return row.stage.value

    def restart(self) -> None:
        """A new engine on the same store and remotes, as after the daemon was stopped and started."""
        self.engine.shutdown()
        self.engine = make_engine(self.settings, self.store, self.tracker, self.host, self.agent,
                                  clock=self.clock, scorer=self.engine.scorer)  # fmt: skip

    def row(self, ref: str) -> TicketRow:
        row = self.store.ticket(self.tracker.name, ref)
        assert row is not None
        return row


def make_engine(settings: Settings, store: Store, tracker: FakeTracker, host: FakeCodeHost, agent: ScriptedAgent,
                *, others: tuple[FakeTracker, ...] = (), **kwargs: object) -> Engine:  # fmt: skip
    return Engine(
        settings,
        store,
        {t.name: t for t in (tracker, *others)},  # type: ignore[misc]
        {host.name: host},  # type: ignore[dict-item]
        backend_factory=lambda _s: agent,  # type: ignore[arg-type,return-value]
        **{"scorer": always_accept, **kwargs},  # type: ignore[arg-type]
    )


def make_world(
    tmp: Path,
    *,
    agent: ScriptedAgent | None = None,
    scorer: Callable[..., Score] = always_accept,
    agent_config: Mapping[str, object] | None = None,
    others: tuple[FakeTracker, ...] = (),
    **bridge: object,
) -> World:
    settings = settings_for(tmp, **bridge)
    for other in others:  # more boards, each with its own [[trackers]] entry
        settings.trackers.append(TrackerConfig(name=other.name, kind="local", url=f"./{other.name}", repo="app"))
    if agent_config:
        settings.agent = settings.agent.model_copy(update=dict(agent_config))
    store = Store(settings.state_url)
    tracker = FakeTracker()
    host = FakeCodeHost(tmp / "host")
    agent = agent or ScriptedAgent()
    clock = Clock()
    engine = make_engine(settings, store, tracker, host, agent, others=others, clock=clock, scorer=scorer)
    return World(settings, store, tracker, host, agent, engine, clock)


def outage(message: str = "503 Service Unavailable") -> RemoteError:
    return CodeHostError(message, transient=True)


def tracker_outage(message: str = "503 Service Unavailable") -> TrackerError:
    return TrackerError(message, transient=True)
