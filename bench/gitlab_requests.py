"""How many GitLab API requests tracker-bridge spends: per idle cycle, per changed ticket, per card move and note.

Runs the GitLab connectors against the simulator (tests/sims/gitlab.py) and prints the request counts; it is not a
timed test. Run from the repository root:

    .venv/bin/python bench/gitlab_requests.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.sims.gitlab import BOT_TOKEN, GitLabSim, make_world
from tracker_bridge.config import RepoConfig, Settings, TrackerConfig, settings_from_dict
from tracker_bridge.store import Store
from tracker_bridge_connectors.gitlab import GitLabHost, GitLabTracker
from tracker_bridge_connectors.gitlab.client import forget_projects

API = "/api/v4"


def measure(sim: GitLabSim, label: str, action: object) -> int:
    sim.server.reset_log()
    assert callable(action)
    action()
    n = sim.server.count(path_prefix=API)
    methods = sorted({f"{r.method} {r.path.split('/api/v4')[1]}" for r in sim.server.log})
    print(f"{label:<52} {n:>3} request(s)   {'; '.join(methods)}")
    return n


def engine_idle_cycle(sim: GitLabSim, tmp: Path) -> int:
    """Requests of one engine cycle when nothing changed (the daemon's real idle cost)."""
    from tracker_bridge.engine import Engine, build_engine

    settings = settings_from_dict(
        {
            "bridge": {"state": f"sqlite:///{tmp / 'state.db'}", "state_dir": str(tmp / "state")},
            "trackers": [
                {
                    "name": "shop",
                    "kind": "gitlab",
                    "url": sim.url,
                    "token_env": "GITLAB_TOKEN",
                    "query": "acme/shop",
                    "repo": "shop",
                }
            ],
            "repos": [
                {
                    "name": "shop",
                    "host": "gitlab",
                    "url": f"{sim.url}/acme/shop.git",
                    "api_url": sim.url,
                    "token_env": "GITLAB_TOKEN",
                }
            ],
            "scoring": {"repo_analysis": False},
        },
        base_dir=tmp,
    )
    store = Store(settings.state_url)
    engine: Engine = build_engine(settings, store)
    try:
        # The first cycle reads the board and every open issue and answers the triggered ones (moves, notes); the
        # second sees those edits of its own come back once; from then on nothing changes.
        for _ in range(2):
            engine.cycle()
            engine.wait()
        sim.server.reset_log()
        engine.cycle()
        return sim.server.count(path_prefix=API)
    finally:
        engine.shutdown()
        store.close()


def main() -> None:
    os.environ["GITLAB_TOKEN"] = BOT_TOKEN
    with GitLabSim() as sim, tempfile.TemporaryDirectory() as tmp:
        world = make_world(sim)
        for n in range(150):
            world.issue(f"Background issue {n}", labels=["bug"])
        sim.age(timedelta(hours=2))  # a board in use for a while, not one filled a millisecond ago
        world.issue("Fix rounding", "calc.add subtracts", labels=["agent-ready"])
        sim.age(timedelta(hours=1))
        cfg = TrackerConfig(name="shop", kind="gitlab", url=sim.url, token_env="GITLAB_TOKEN", query="acme/shop")
        tracker = GitLabTracker.from_config(cfg, Settings(base_dir=Path(tmp)))
        cursor: list[str | None] = [None]

        def poll() -> None:
            cursor[0] = tracker.poll(cursor[0]).cursor

        print("GitLab connector, 151 open issues, 1 triggered (simulator)")
        measure(sim, "first poll (board + every open issue, 2 pages)", poll)
        idle = measure(sim, "idle poll", poll)
        sim.label(world.project, 3, "agent-ready", by=world.alice)
        measure(sim, "poll after one issue got the trigger label", poll)
        measure(sim, "poll after that (idle again)", poll)
        measure(sim, "get_ticket", lambda: tracker.get_ticket("acme/shop#151"))
        measure(sim, "move to In Progress", lambda: tracker.move("acme/shop#151", "In Progress"))
        measure(sim, "move to In Progress again (no-op)", lambda: tracker.move("acme/shop#151", "In Progress"))
        measure(
            sim,
            "status note, first write (+ who am I, once)",
            lambda: tracker.upsert_status_comment("acme/shop#151", "queued"),
        )
        measure(sim, "status note, edit in place", lambda: tracker.upsert_status_comment("acme/shop#151", "running"))
        measure(sim, "status note, unchanged", lambda: tracker.upsert_status_comment("acme/shop#151", "running"))
        ticket = tracker.get_ticket("acme/shop#151")
        measure(sim, "trigger_actor", lambda: tracker.trigger_actor(ticket))
        sim.comment(world.project, 3, "It also happens on refunds", by=world.alice)
        measure(sim, "poll after a person commented on a triggered issue", poll)

        repo = RepoConfig(
            name="shop", host="gitlab", url=f"{sim.url}/acme/shop.git", api_url=sim.url, token_env="GITLAB_TOKEN"
        )
        host = GitLabHost.from_config(repo, Settings(base_dir=Path(tmp)))
        measure(sim, "find_pull_request (none yet)", lambda: host.find_pull_request("agent/x"))
        measure(sim, "open_pull_request", lambda: host.open_pull_request("agent/x", "x", "body"))
        measure(
            sim,
            "get_pull_request (passing pipeline)",
            lambda: (sim.set_pipeline(world.project, 1, "success"), host.get_pull_request("1")),
        )
        sim.review_comment(world.project, 1, "Please add a test", by=world.alice)
        measure(sim, "get_pull_request (with a review thread)", lambda: host.get_pull_request("1"))
        measure(
            sim,
            "get_pull_request (review thread, failing pipeline)",
            lambda: (sim.set_pipeline(world.project, 1, "failed", {"pytest": "failed"}), host.get_pull_request("1")),
        )
        measure(sim, "failed_check_logs (1 failed job: MR, jobs, trace)", lambda: host.failed_check_logs("1"))
        forget_projects()  # as in a new process
        columns = Settings(base_dir=Path(tmp)).stages.as_mapping()
        fresh_tracker = GitLabTracker.from_config(cfg, Settings(base_dir=Path(tmp)))
        fresh_host = GitLabHost.from_config(repo, Settings(base_dir=Path(tmp)))
        startup = measure(
            sim, "start-up checks (new tracker + code host)", lambda: (fresh_tracker.check(columns), fresh_host.check())
        )

        engine_idle = engine_idle_cycle(sim, Path(tmp))
        print(f"{'engine idle cycle (whole daemon, nothing changed)':<52} {engine_idle:>3} request(s)")
        print(f"\nidle cycle budget: at most 2 requests -> tracker {idle}, engine {engine_idle}")
        print(f"idle `run --once` budget: at most 6 requests -> start-up {startup} + cycle {engine_idle}")


if __name__ == "__main__":
    main()
