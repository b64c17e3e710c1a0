"""How fast the dashboard answers with a large store: 10,000 tickets, 12,000 runs over 30 days, 40,000 effects.

    .venv/bin/python bench/dashboard.py [TICKETS]

Seeds a SQLite store in a temporary folder (bulk inserts, not the engine), then prints the median and worst wall
time of each page and of /metrics over 7 requests through the ASGI app (no network), and the size of each page.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from starlette.testclient import TestClient

from tracker_bridge.config import settings_from_dict
from tracker_bridge.models import Stage
from tracker_bridge.store import EffectRow, RunRow, Store, TicketRow, utcnow
from tracker_bridge.web import create_app

STAGES = [Stage.DONE, Stage.REVIEW, Stage.DECLINED, Stage.FAILED, Stage.QUEUED, Stage.SCORED, Stage.SEEN]


def seed(store: Store, n: int) -> None:
    rnd = random.Random(7)
    now = utcnow()
    with store.session() as s:
        tickets = [
            TicketRow(
                tracker="pay",
                ref=f"PAY-{i}",
                title=f"Ticket number {i} about something specific",
                stage=(Stage.RUNNING if i < 3 else rnd.choice(STAGES)).value,
                score=rnd.random(),
                reason="a reason",
                updated_at=now - timedelta(minutes=rnd.randrange(60 * 24 * 30)),
                created_at=now - timedelta(days=30),
            )
            for i in range(1, n + 1)
        ]
        s.add_all(tickets)
        s.flush()
        runs = []
        for t in tickets[: int(n * 1.2)] + tickets[: int(n * 0.2)]:
            started = now - timedelta(minutes=rnd.randrange(60 * 24 * 30))
            running = t.stage == Stage.RUNNING.value
            runs.append(
                RunRow(
                    ticket_id=t.id,
                    status="running" if running else "finished",
                    outcome=None if running else rnd.choice(["succeeded", "tests_failed", "cap_reached"]),
                    backend="claude-code",
                    branch=f"agent/{t.ref}",
                    workspace="",
                    trace_path="",
                    turns=rnd.randrange(1, 40),
                    input_tokens=rnd.randrange(10_000, 400_000),
                    output_tokens=rnd.randrange(1_000, 40_000),
                    cost_usd=rnd.random() * 3,
                    started_at=started,
                    finished_at=None if running else started + timedelta(seconds=rnd.randrange(60, 1800)),
                )
            )
        s.add_all(runs)
        s.add_all(EffectRow(ticket_id=t.id, kind="move", detail="In Review") for t in tickets for _ in range(4))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "tickets").mkdir()
        settings = settings_from_dict(
            {
                "bridge": {"state": f"sqlite:///{root / 'state.db'}"},
                "trackers": [{"name": "pay", "kind": "local", "url": "tickets"}],
            },
            base_dir=root,
        )
        store = Store(settings.state_url)
        t0 = time.perf_counter()
        seed(store, n)
        print(f"seeded {n:,} tickets in {time.perf_counter() - t0:.1f}s")
        http = TestClient(create_app(settings, store))
        paths = ["/", "/fragments/now", "/tickets", f"/tickets?page={n // 50}", "/tickets?stage=done&page=20",
                 f"/tickets/pay/PAY-{n // 2}", "/metrics", "/api/tickets?page=3", "/readyz"]
        print(f"{'path':36} {'median ms':>10} {'max ms':>8} {'KiB':>7}")
        for path in paths:
            samples = []
            size = 0
            for _ in range(7):
                t = time.perf_counter()
                response = http.get(path)
                samples.append((time.perf_counter() - t) * 1000)
                assert response.status_code in (200, 503), (path, response.status_code)
                size = len(response.content)
            print(f"{path:36} {statistics.median(samples):10.1f} {max(samples):8.1f} {size / 1024:7.1f}")
        store.close()


if __name__ == "__main__":
    main()
