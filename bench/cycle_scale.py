"""Does an idle cycle cost the same with 0, 1,000 and 10,000 settled tickets in the store? And `status --json`?

    python bench/cycle_scale.py [--sizes 0,1000,10000] [--cycles 20]

For each size a fresh SQLite store is seeded through the store API (no hand-written SQL) with settled tickets
(done, declined, cancelled, failed without an open pull request), each with a run and a few effects, already shown
on the board. The engine then runs idle cycles against a board on which nothing changed. Printed per size: CPU ms
and SQL statements per idle cycle (statements counted on the store's SQLAlchemy engine), and the wall time of
`tracker-bridge status --json` (in process, through the real CLI). The goal (issue 12): the same statements per
cycle at every size, and CPU at 10,000 within 2x of the figure at 0.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from collections.abc import Mapping
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import event  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from tracker_bridge.cli import app  # noqa: E402
from tracker_bridge.config import load_settings  # noqa: E402
from tracker_bridge.engine import Engine  # noqa: E402
from tracker_bridge.gitutil import git  # noqa: E402
from tracker_bridge.models import PullRequest, PullRequestState, RunOutcome, RunUsage, Stage, Ticket  # noqa: E402
from tracker_bridge.protocols import PollResult, Problem  # noqa: E402
from tracker_bridge.store import Store  # noqa: E402

SETTLED = (Stage.DONE, Stage.DECLINED, Stage.CANCELLED, Stage.FAILED)

CONFIG = """
[bridge]
state = "sqlite:///state.db"
state_dir = "state"

[agent]
backend = "command"
command = "true"
sandbox = "none"
allow_unsandboxed = true

[[trackers]]
name = "board"
kind = "local"
url = "./tickets"
repo = "app"

[[repos]]
name = "app"
host = "local"
url = "./repo"
"""


class IdleBoard:
    """A board on which nothing changed since the last poll: the cycle's cost is the engine's own."""

    name = "board"

    def check(self, columns: Mapping[str, str]) -> list[Problem]:
        return []

    def poll(self, cursor: str | None) -> PollResult:
        return PollResult(tickets=[], cursor="c")

    def get_ticket(self, ref: str) -> Ticket:
        raise AssertionError(f"an idle cycle read {ref}")

    def move(self, ref: str, column: str) -> None:
        raise AssertionError(f"an idle cycle moved {ref}")

    def upsert_status_comment(self, ref: str, body: str) -> None:
        raise AssertionError(f"an idle cycle commented on {ref}")

    def add_label(self, ref: str, label: str) -> None: ...

    def remove_label(self, ref: str, label: str) -> None: ...

    def trigger_actor(self, ticket: Ticket) -> str | None:
        return None

    def link_pull_request(self, ref: str, pr: PullRequest) -> None: ...


def seed(store: Store, n: int) -> None:
    """`n` settled tickets written the way the engine writes them: a ticket, a finished run, its effects."""
    for start in range(0, n, 1000):
        with store.transaction():  # one commit per thousand tickets: seeding 10,000 takes seconds, not minutes
            for i in range(start, min(n, start + 1000)):
                seed_one(store, i)


def seed_one(store: Store, i: int) -> None:
    stage = SETTLED[i % len(SETTLED)]
    row, _ = store.get_or_create_ticket("board", f"OLD-{i}", title=f"old ticket {i}")
    run = store.start_run(row.id, backend="command", branch=f"agent/OLD-{i}", workspace="w", trace_path="t")
    store.finish_run(run.id, RunOutcome.SUCCEEDED, RunUsage(turns=3, cost_usd=0.1))
    store.record_effect(row.id, "move", "Done")
    store.record_effect(row.id, "comment", "x")
    store.update_ticket(
        row.id,
        stage=stage,
        reason="settled",
        score=0.8,
        pr_state=PullRequestState.MERGED if stage is Stage.DONE else PullRequestState.CLOSED,
        column_applied="Done",
        comment_hash="x",
    )
    store.update_ticket(row.id, synced=True)  # the board shows it: what the engine records after converging


def measure(size: int, cycles: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "tickets").mkdir()
        (folder / "repo").mkdir()
        git(folder / "repo", "init", "-q")
        config = folder / "tracker-bridge.toml"
        config.write_text(CONFIG)
        settings = load_settings(config, check_secrets=False)
        store = Store(settings.state_url)
        started = time.perf_counter()
        seed(store, size)
        seeded_s = time.perf_counter() - started
        engine = Engine(settings, store, {"board": IdleBoard()}, {})  # type: ignore[dict-item]
        engine.cycle()  # warm up (first statements compile, the cursor row is created)
        statements = 0

        def count(*_args: object) -> None:
            nonlocal statements
            statements += 1

        event.listen(store.engine, "before_cursor_execute", count)
        cpu = time.process_time()
        for _ in range(cycles):
            engine.cycle()
        cpu_ms = (time.process_time() - cpu) * 1000 / cycles
        event.remove(store.engine, "before_cursor_execute", count)
        engine.shutdown()
        store.close()
        wall = time.perf_counter()
        with redirect_stdout(io.StringIO()):
            result = CliRunner().invoke(app, ["status", "--json", "-c", str(config)])
        status_s = time.perf_counter() - wall
        assert result.exit_code == 0, result.output
        return {
            "size": size,
            "seed_s": seeded_s,
            "cpu_ms": cpu_ms,
            "statements": statements / cycles,
            "status_s": status_s,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0,1000,10000", help="settled tickets in the store, comma-separated")
    parser.add_argument("--cycles", type=int, default=20, help="idle cycles measured per size")
    args = parser.parse_args()
    rows = [measure(int(s), args.cycles) for s in args.sizes.split(",")]
    print(f"{'settled tickets':>16} {'CPU ms/cycle':>13} {'SQL/cycle':>10} {'status --json s':>16} {'seeding s':>10}")
    for r in rows:
        print(
            f"{r['size']:>16,} {r['cpu_ms']:>13.2f} {r['statements']:>10.1f} {r['status_s']:>16.2f} "
            f"{r['seed_s']:>10.1f}"
        )
    base, top = rows[0], rows[-1]
    same_sql = base["statements"] == top["statements"]
    ratio = top["cpu_ms"] / base["cpu_ms"] if base["cpu_ms"] else float("inf")
    print(f"SQL statements per idle cycle the same at {base['size']:,} and {top['size']:,}: {same_sql}")
    print(f"CPU per idle cycle at {top['size']:,} / at {base['size']:,}: {ratio:.2f}x (goal: within 2x)")


if __name__ == "__main__":
    main()
