"""How many HTTP requests the Jira connector spends: per idle poll cycle, and per changed ticket.

Runs the real connector (and the `jira` package) against the Jira simulator on loopback and counts the requests the
simulator receives. Prints figures; it is not a timed test.

    .venv/bin/python bench/jira_requests.py [--tickets 500]
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable as `python bench/jira_requests.py` too

from tests.sims.jira import JiraSim
from tracker_bridge.config import Settings, TrackerConfig
from tracker_bridge.models import PullRequest
from tracker_bridge_connectors.jira import JiraTracker

TOKEN_ENV = "TB_BENCH_JIRA_TOKEN"


def tracker_for(sim: JiraSim) -> JiraTracker:
    cfg = TrackerConfig(
        name="pay", kind="jira", url=sim.url, user="bot@acme.test", token_env=TOKEN_ENV, query="project = PAY"
    )
    return JiraTracker.from_config(cfg, Settings())


def measure(sim: JiraSim, label: str, action: object) -> int:
    sim.server.reset_log()
    action()  # type: ignore[operator]
    n = len(sim.server.log)
    paths = sorted({f"{r.method} {r.path.split('/rest/api/3/')[-1]}" for r in sim.server.log})
    print(f"  {label:<58} {n:>4}   {', '.join(paths)[:110]}")
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=500, help="triggered tickets in the project")
    args = parser.parse_args()
    os.environ[TOKEN_ENV] = "s3cret"
    with JiraSim() as sim:
        alice = sim.add_user("alice", "alice@acme.test", "Alice")
        for n in range(args.tickets):
            issue = sim.create_issue("PAY", f"Ticket {n}", "Some description")
            sim.add_label(issue.key, "agent-ready", by=alice)
            sim.touch(issue.key, sim.now() - timedelta(minutes=30))
        tracker = tracker_for(sim)
        print(f"Jira connector, {args.tickets} triggered tickets in scope (requests counted at the simulator)")
        print("  first poll (no cursor): all tickets, paged")
        box: dict[str, str | None] = {}

        def first() -> None:
            box["cursor"] = tracker.poll(None).cursor

        measure(sim, "first poll, cursor None", first)
        idle = measure(sim, "idle cycle (nothing changed), same process", lambda: tracker.poll(box["cursor"]))
        cold = measure(
            sim, "idle cycle, new process with the stored cursor", lambda: tracker_for(sim).poll(box["cursor"])
        )

        key = "PAY-7"
        sim.comment(key, "Clarified the expected value.", by=alice)

        def changed() -> None:
            box["cursor"] = tracker.poll(box["cursor"]).cursor

        measure(sim, "poll with 1 changed ticket", changed)
        pr = PullRequest(id="1", url="https://git.example/pr/1", branch="agent/PAY-7-x", base="main", title="Fix")
        per_ticket = 0
        per_ticket += measure(
            sim, "get_ticket + trigger_actor (changelog)", lambda: tracker.trigger_actor(tracker.get_ticket(key))
        )
        per_ticket += measure(sim, "move to In Progress (read + transition)", lambda: tracker.move(key, "In Progress"))
        per_ticket += measure(
            sim,
            "first status comment (lookup, create, remember)",
            lambda: tracker.upsert_status_comment(key, "**Stage:** running"),
        )
        per_ticket += measure(
            sim, "status comment edit, same process", lambda: tracker.upsert_status_comment(key, "**Stage:** review")
        )
        per_ticket += measure(
            sim,
            "status comment edit, new process (state store lost)",
            lambda: tracker_for(sim).upsert_status_comment(key, "**Stage:** done"),
        )
        per_ticket += measure(
            sim, "status comment unchanged body", lambda: tracker.upsert_status_comment(key, "**Stage:** review")
        )
        per_ticket += measure(
            sim, "add label + remove label", lambda: [f(key, "a") for f in (tracker.add_label, tracker.remove_label)]
        )
        per_ticket += measure(sim, "link pull request", lambda: tracker.link_pull_request(key, pr))
        per_ticket += measure(sim, "get_ticket", lambda: tracker.get_ticket(key))
        print()
        print(f"requests per idle cycle: {idle} (same process), {cold} (new process with stored cursor)")
        print(f"requests per changed ticket (the calls above, together): {per_ticket}")


if __name__ == "__main__":
    main()
