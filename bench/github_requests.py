"""What polling a GitHub Projects (v2) board costs: requests and GraphQL points per idle cycle and per changed item.

    .venv/bin/python bench/github_requests.py [ITEMS]

Runs the real connector against the GitHub simulator (loopback HTTP) on a project with ITEMS items (default 1000),
ten of them in the Agent column, and prints what each kind of cycle sent: HTTP requests, how many were answered
304 (free: conditional requests do not count against the rate limit), REST rate-limit points used and GraphQL
points. The budget: an idle cycle costs at most 2 requests and no GraphQL points.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.sims.github import GitHubSim
from tests.sims.github.scenario import acme_board
from tracker_bridge.protocols import Trigger
from tracker_bridge_connectors.github import GitHubHost
from tracker_bridge_connectors.github.client import GitHubClient
from tracker_bridge_connectors.github_projects import GitHubProjectsTracker, ProjectScope


class Meter:
    def __init__(self, gh: GitHubSim) -> None:
        self.gh = gh
        self.mark()

    def mark(self) -> None:
        self.n = len(self.gh.server.log)
        self.core = self.gh.world.core.used
        self.points = self.gh.world.graphql_points

    def row(self, label: str) -> None:
        sent = self.gh.server.log[self.n :]
        not_modified = sum(1 for r in sent if r.headers.get("if-none-match"))
        gql = sum(1 for r in sent if r.path == "/graphql")
        core = self.gh.world.core.used - self.core
        points = self.gh.world.graphql_points - self.points
        print(f"{label:<44} {len(sent):>8} {gql:>8} {not_modified:>12} {core:>10} {points:>8}")
        self.mark()


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    tmp = Path(tempfile.mkdtemp(prefix="tb-gh-bench-"))
    with GitHubSim(tmp / "gh") as gh:
        board = acme_board(gh, tmp)
        items = []
        for n in range(total):
            issue = gh.create_issue(board.repo, f"Issue {n}", "text")
            items.append(gh.add_to_project(board.project, issue, status="Agent" if n < 10 else "Todo"))
        client = GitHubClient(gh.url, gh.token)
        tracker = GitHubProjectsTracker("bench", ProjectScope.parse("acme/1"), client, Trigger("agent-ready", "Agent"))
        meter = Meter(gh)
        print(f"project with {total} items, 10 in Agent")
        print(f"{'cycle':<44} {'requests':>8} {'graphql':>8} {'conditional':>12} {'core pts':>10} {'gql pts':>8}")
        first = tracker.poll(None)
        meter.row(f"first poll (no cursor, {len(first.tickets)} triggered)")
        cursor = first.cursor
        for i in range(3):
            result = tracker.poll(cursor)
            cursor = result.cursor
            meter.row(f"idle poll #{i + 1} ({len(result.tickets)} tickets)")
        gh.set_status(items[500], "Agent", by="alice")
        result = tracker.poll(cursor)
        meter.row(f"one card moved to Agent ({len(result.tickets)} ticket)")
        cursor = result.cursor
        gh.add_label(items[600].issue, "agent-ready", by="alice")
        result = tracker.poll(cursor)
        meter.row(f"one issue labelled ({len(result.tickets)} ticket)")
        ref = f"acme/widgets#{items[500].issue.number}"
        tracker.move(ref, "In Progress")
        meter.row("move a card")
        tracker.move(ref, "In Progress")
        meter.row("move a card already there")
        tracker.upsert_status_comment(ref, "first")
        meter.row("create the status comment")
        tracker.upsert_status_comment(ref, "second")
        meter.row("edit the status comment")
        host = GitHubHost("w", gh.clone_url("acme/widgets"), gh.token, api_url=gh.url)
        pr = gh.open_pull(board.repo, "main", "t")
        host.get_pull_request(str(pr.number))
        meter.row("follow a pull request (first look)")
        host.get_pull_request(str(pr.number))
        meter.row("follow a pull request (unchanged)")


if __name__ == "__main__":
    main()
