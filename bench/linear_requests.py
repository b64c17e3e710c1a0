"""How many GraphQL requests (and complexity points) the Linear connector spends: per idle cycle, per changed issue.

Runs the real connector against the Linear simulator (tests/sims/linear.py), which executes every request against
Linear's official schema and charges Linear's published complexity (objects 1 point, scalars 0.1, connections times
their page size). Linear's budget for an API key is 5,000 requests and 250,000 points an hour. Prints figures; it is
not a timed test. Run from the repository root:

    .venv/bin/python -m bench.linear_requests [--issues 300]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.sims.linear import LinearSim, seed
from tracker_bridge.config import Settings, TrackerConfig, settings_from_dict
from tracker_bridge.demo import VAGUE_TICKET
from tracker_bridge.engine import Engine, build_engine
from tracker_bridge.gitutil import git
from tracker_bridge.models import PullRequest
from tracker_bridge.protocols import STATUS_MARKER
from tracker_bridge.store import Store
from tracker_bridge_connectors.linear import LinearTracker

TOKEN_ENV = "TB_BENCH_LINEAR_KEY"


def tracker_for(sim: LinearSim) -> LinearTracker:
    cfg = TrackerConfig(name="eng", kind="linear", url=sim.url, token_env=TOKEN_ENV, query="ENG")
    return LinearTracker.from_config(cfg, Settings())


def measure(sim: LinearSim, label: str, action: Callable[[], object]) -> tuple[int, float]:
    sim.reset_calls()
    action()
    n = len(sim.server.log)
    points = sum(c.complexity for c in sim.calls)
    ops = ", ".join(str(c.operation) for c in sim.calls)
    print(f"  {label:<52} {n:>3} req {points:>8.1f} pts   {ops[:90]}")
    return n, points


def cycle(engine: Engine) -> None:
    engine.cycle()
    engine.wait()


def label_round_trip(tracker: LinearTracker, ref: str) -> None:
    tracker.add_label(ref, "agent-running")
    tracker.remove_label(ref, "agent-running")


def engine_figures(sim: LinearSim, workdir: Path) -> tuple[int, float]:
    """The daemon's own cycle (engine + connector), warmed up, with triggered issues already handled."""
    repo = workdir / "repo"
    repo.mkdir()
    git(workdir, "init", "-q", "-b", "main", str(repo))
    (repo / "README.md").write_text("x\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "init")
    settings = settings_from_dict(
        {
            "bridge": {"state": f"sqlite:///{workdir / 'state.db'}", "state_dir": str(workdir / "state")},
            "agent": {"backend": "command", "command": "true"},
            "trackers": [{"name": "eng", "kind": "linear", "url": sim.url, "token_env": TOKEN_ENV, "query": "ENG",
                          "repo": "r"}],
            "repos": [{"name": "r", "host": "local", "url": str(repo)}],
        },
        base_dir=workdir,
    )
    store = Store(settings.state_url)
    engine = build_engine(settings, store)
    team = sim.teams[0]
    body = VAGUE_TICKET.split("---", 2)[2].strip()
    vague = sim.add_issue(team, "Improve performance", body, state="Backlog", labels=("agent-ready",))
    print("\nThe daemon's cycle (engine + connector), requests counted at the simulator")
    measure(sim, "first cycle, cold caches (declines 1 vague issue)", lambda: cycle(engine))
    measure(sim, "next cycle (sees its own changes once)", lambda: cycle(engine))
    idle = measure(sim, "idle cycle", lambda: cycle(engine))
    sim.label(vague, "frontend", sim.users[1])
    measure(sim, "cycle after a person relabels a handled issue", lambda: cycle(engine))
    sim.add_issue(team, "Improve caching", body, state="Backlog", labels=("agent-ready",))
    measure(sim, "cycle with 1 newly triggered (vague) issue", lambda: cycle(engine))
    engine.shutdown()
    store.close()
    return idle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--issues", type=int, default=300, help="issues in the team, a third of them triggered")
    args = parser.parse_args()
    os.environ[TOKEN_ENV] = "lin_api_bot"
    with LinearSim() as sim:
        ws = seed(sim)
        for n in range(args.issues):
            labels = ("agent-ready",) if n % 3 == 0 else ("bug",)
            ws.issue(f"Issue {n}", "Some description", labels=labels)
        tracker = tracker_for(sim)
        triggered = len(range(0, args.issues, 3))
        print(f"Linear connector, {args.issues} issues in team ENG, {triggered} triggered "
              f"(page size {tracker.page_size})")
        box: dict[str, str | None] = {}

        def first() -> None:
            box["cursor"] = tracker.poll(None).cursor

        measure(sim, "first poll, cursor None (all triggered, paged)", first)
        idle = measure(sim, "idle poll, same process", lambda: tracker.poll(box["cursor"]))
        cold = measure(
            sim, "idle poll, new process with the stored cursor", lambda: tracker_for(sim).poll(box["cursor"])
        )
        issue = sim.find_issue("ENG-7")
        sim.add_comment(issue, "Clarified the expected value.", ws.alice)
        sim.label(issue, "frontend", ws.alice)

        def changed() -> None:
            box["cursor"] = tracker.poll(box["cursor"]).cursor

        measure(sim, "poll with 1 changed issue", changed)
        ref = issue.identifier
        pr = PullRequest(id="1", url="https://github.com/acme/app/pull/1", branch="agent/ENG-7-x", base="main")
        total_n, total_pts = 0, 0.0
        for label, action in [
            ("trigger_actor (issue history)", lambda: tracker.trigger_actor(tracker.get_ticket(ref))),
            ("get_ticket (with comments)", lambda: tracker.get_ticket(ref)),
            ("move to In Progress, cold (state + team cache + move)", lambda: tracker.move(ref, "In Progress")),
            ("move to In Review, warm", lambda: tracker.move(ref, "In Review")),
            ("move to where it is (no-op)", lambda: tracker.move(ref, "In Review")),
            ("first status comment (find + create)",
             lambda: tracker.upsert_status_comment(ref, f"{STATUS_MARKER}\nStage: running")),
            ("status comment edit", lambda: tracker.upsert_status_comment(ref, f"{STATUS_MARKER}\nStage: review")),
            ("status comment edit, new process (store lost)",
             lambda: tracker_for(sim).upsert_status_comment(ref, f"{STATUS_MARKER}\nStage: done")),
            ("status comment unchanged body",
             lambda: tracker.upsert_status_comment(ref, f"{STATUS_MARKER}\nStage: done")),
            ("add label (cold: look-up) + remove label",
             lambda: label_round_trip(tracker, ref)),
            ("link pull request (attachment keyed by url)", lambda: tracker.link_pull_request(ref, pr)),
        ]:
            n, pts = measure(sim, label, action)
            total_n, total_pts = total_n + n, total_pts + pts
        with tempfile.TemporaryDirectory() as tmp:
            sim.reset()
            seed(sim)
            engine_idle = engine_figures(sim, Path(tmp))
        print()
        print(f"requests per idle cycle: {idle[0]} ({idle[1]:.0f} points) same process, "
              f"{cold[0]} ({cold[1]:.0f} points) new process; daemon idle cycle: {engine_idle[0]} "
              f"({engine_idle[1]:.0f} points)")
        print(f"requests per changed issue (the calls above, together): {total_n} ({total_pts:.0f} points)")
        per_hour = 3600 / 30 * engine_idle[1]
        print(f"idle at poll_interval = 30 s: {3600 / 30:.0f} requests and {per_hour:.0f} points an hour "
              f"(of 5,000 and 250,000)")


if __name__ == "__main__":
    main()
