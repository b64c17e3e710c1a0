"""Where agent runs execute: the seam between the engine, which decides and writes, and what runs the agent.

`[bridge] queue = "local"` (the default) keeps today's behaviour: the run is a closure on the engine's thread pool
that puts its progress and its result on the engine's inbox. A PostgreSQL URL hands agent runs to `tracker-bridge
worker` processes through procrastinate instead (`remote_runs.RemoteRunQueue`): the engine's side stays the same
(a future per ticket, `Progress` and `RunDone` messages drained by the loop thread, the only writer), so the
lifecycle, the budget and publishing do not know where a run executed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from tracker_bridge.models import Ticket


@dataclass(frozen=True)
class RunSpec:
    """What a run needs besides the configuration, as the leader decided it: enough for a worker on another machine
    to rebuild the `RunPlan` (its own workspace and trace paths) without asking the tracker."""

    ticket: Ticket
    repo: str
    branch: str
    feedback: list[str] = field(default_factory=list)
    daily_budget_left_usd: float | None = None
    approved_plan: str = ""
    ci_pr: str | None = None  # an iteration on a pull request: the worker adds its failed checks' logs
    plan_only: bool = False  # a mid-score ticket's read-only plan run: its result is the plan, never a commit

    def to_json(self) -> str:
        data = asdict(self)
        data["ticket"] = self.ticket.model_dump(mode="json")
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        data: dict[str, Any] = json.loads(text)
        data["ticket"] = Ticket.model_validate(data["ticket"])
        return cls(**data)


class RunQueue(Protocol):
    """Executes agent runs for the engine. Results come back as the engine's inbox messages."""

    def recover(self, active: dict[int, Future[None]]) -> int:
        """At start: what to do with runs a previous leader left `running` (a remote queue adopts those executing
        on workers, adding their futures to `active` by ticket id); returns how many were interrupted."""
        ...

    def submit(self, ticket_id: int, run_id: int, job: Callable[[], None], spec: RunSpec) -> Future[None]:
        """Start the run: `job` executes it here (local queue); a remote queue uses `spec` and the run id."""
        ...

    def has_room(self) -> bool:
        """Whether another run may start now (the local pool's limit is checked by the engine)."""
        ...

    def elsewhere(self, ticket_id: int) -> bool:
        """Whether the ticket's run executes in another process (a leader stopping does not wait for it)."""
        ...

    def held_elsewhere(self) -> set[int]:
        """Run ids executing in other processes (not interrupted when this one stops)."""
        ...

    def cancel(self, ticket_id: int) -> None:
        """Stop the ticket's run wherever it executes (the local run is stopped by its cancel event)."""
        ...

    def poll(self) -> None:
        """Bring back what runs elsewhere reported (progress, results) as inbox messages; take over dead runs."""
        ...

    def shutdown(self) -> None:
        ...


class LocalRunQueue:
    """Today's in-process pool: no server, the run executes in a thread of the daemon."""

    def __init__(self, pool: ThreadPoolExecutor, interrupt_running: Callable[[], int]) -> None:
        self.pool = pool
        self._interrupt_running = interrupt_running

    def recover(self, active: dict[int, Future[None]]) -> int:
        return self._interrupt_running()

    def submit(self, ticket_id: int, run_id: int, job: Callable[[], None], spec: RunSpec) -> Future[None]:
        return self.pool.submit(job)

    def has_room(self) -> bool:
        return True

    def elsewhere(self, ticket_id: int) -> bool:
        return False

    def held_elsewhere(self) -> set[int]:
        return set()

    def cancel(self, ticket_id: int) -> None:
        pass

    def poll(self) -> None:
        pass

    def shutdown(self) -> None:
        pass
