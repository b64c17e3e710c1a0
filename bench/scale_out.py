"""Throughput of agent runs with 1, 2 and 4 `tracker-bridge worker` processes on this machine (issue 16).

A board of N triggered tickets (40 by default) on the local tracker, a local git repository, a `command` agent that
sleeps 3 s and edits a file, the state and the procrastinate queue in one PostgreSQL server started from the
distribution's binaries (tests/pg.py), one `tracker-bridge run` and W workers (concurrency 1 each), all real
processes. For each W it prints tickets per minute (from the first run a worker starts to the last ticket in
review) and the counts of branches, pull requests and status comments per ticket, which must be exactly one each.

Needs: pip install -e '.[postgres]'; PostgreSQL server binaries (apt install postgresql).
Usage: python bench/scale_out.py [--tickets 40] [--workers 1 2 4]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the PostgreSQL starter and the journey builders of the tests

AGENT_SECONDS = 3.0
STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z")


def first_stamp(logs: list[Path], needle: str) -> float | None:
    """The earliest time (epoch seconds) a line containing `needle` was logged in any of `logs`."""
    found: list[float] = []
    for log in logs:
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            m = STAMP.match(line)
            if m and needle in line:
                found.append(datetime.fromisoformat(m.group(1) + "+00:00").timestamp())
                break
    return min(found) if found else None


def measure(workdir: Path, server: object, tickets: int, workers: int) -> dict[str, object]:
    from tests import pg
    from tests.journey_helpers import make_journey
    from tracker_bridge.demo import GOOD_TICKET, SLUG_FIXED, STAND_IN_AGENT

    assert isinstance(server, pg.PostgresServer)
    keys = [f"DEMO-{i}" for i in range(1, tickets + 1)]
    agent = workdir / "agent.py"
    agent.write_text(f"import time\ntime.sleep({AGENT_SECONDS})\n" + STAND_IN_AGENT.format(fixed=SLUG_FIXED))
    board = {k: GOOD_TICKET.replace("title: slugify()", f"title: {k} slugify()") for k in keys}
    url = server.new_database()
    journey = make_journey(workdir, tickets=board, agent_command=f"{sys.executable} {agent}", state_url=url)
    text = journey.config.read_text().replace(
        "poll_interval = 5", f"poll_interval = 1\nlease_seconds = 10\nqueue = {url!r}\ncycle_deadline = 30"
    )
    unconfined = 'timeout = 300\nsandbox = "none"\nallow_unsandboxed = true'  # the bench's own agent
    journey.config.write_text(text.replace("timeout = 300", unconfined))

    def start(name: str, *args: str) -> tuple[subprocess.Popen[str], Path]:
        log = workdir / f"{name}.log"
        cmd = [sys.executable, "-m", "tracker_bridge.cli", *args, "-c", str(journey.config)]
        return subprocess.Popen(cmd, cwd=workdir, stdout=log.open("w"), stderr=subprocess.STDOUT, text=True), log

    procs = [start(f"worker-{i}", "worker") for i in range(workers)]
    procs.append(start("run", "run"))
    try:
        deadline = time.monotonic() + 60 + tickets * (AGENT_SECONDS + 8) / workers
        while not all(journey.column(k) == "In Review" for k in keys):
            if time.monotonic() > deadline:
                raise SystemExit(f"{workers} worker(s): the board did not reach review in time; see {workdir}")
            time.sleep(0.5)
        finished = time.time()
        time.sleep(2)  # a few more cycles: nothing may be made afterwards either
    finally:
        for p, _ in procs:
            p.terminate()
        for p, _ in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    began = first_stamp([log for _, log in procs[:-1]], "worker.run_start")
    assert began is not None
    branches = journey.agent_branches()
    per_branch = Counter(k for b in branches for k in keys if f"/{k}-" in b)
    per_pr = Counter(k for p in journey.pull_requests() for k in keys if f"/{k}-" in p["branch"])
    comments = {k: journey.comment_count(k) for k in keys}
    return {
        "workers": workers,
        "minutes": (finished - began) / 60,
        "tickets_per_min": tickets / ((finished - began) / 60),
        "branches": sorted(Counter(per_branch[k] for k in keys).items()),
        "prs": sorted(Counter(per_pr[k] for k in keys).items()),
        "comments": sorted(Counter(comments.values()).items()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=40)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    from tests import pg

    try:
        server = pg.start()
    except pg.Unavailable as exc:
        print(f"scale_out: skipped ({exc})")
        return
    results = []
    try:
        for workers in args.workers:
            with tempfile.TemporaryDirectory(prefix=f"scale-out-{workers}-") as tmp:
                r = measure(Path(tmp), server, args.tickets, workers)
            results.append(r)
            print(f"{workers} worker(s): {r['tickets_per_min']:.1f} tickets/min ({args.tickets} tickets in "
                  f"{r['minutes']:.2f} min); per ticket (count: tickets) branches {r['branches']}, pull requests "
                  f"{r['prs']}, status comments {r['comments']}", flush=True)  # fmt: skip
    finally:
        server.stop()
    base = next((r for r in results if r["workers"] == 1), None)
    if base is not None:
        for r in results:
            if r is not base:
                ratio = float(r["tickets_per_min"]) / float(base["tickets_per_min"])  # type: ignore[arg-type]
                print(f"{r['workers']} workers vs 1: {ratio:.2f}x")


if __name__ == "__main__":
    main()
