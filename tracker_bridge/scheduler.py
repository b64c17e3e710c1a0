"""The polling loop on APScheduler 3: one cycle every poll_interval, never two at once, stopped by SIGINT/SIGTERM."""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from types import FrameType

import structlog
from apscheduler.schedulers.blocking import BlockingScheduler

from tracker_bridge.engine import Engine

log = structlog.get_logger(__name__)


def run_forever(engine: Engine, interval: float) -> None:
    scheduler = BlockingScheduler(timezone=UTC)

    def cycle() -> None:
        try:
            report = engine.cycle()
            log.info("cycle", polled=report.polled, started=report.started_runs, errors=report.poll_errors)
        except Exception:  # one bad cycle must not stop the daemon; the next one tries again
            log.exception("cycle.failed")

    # max_instances=1 + coalesce: a slow cycle delays the next instead of stacking cycles up.
    scheduler.add_job(
        cycle, "interval", seconds=interval, max_instances=1, coalesce=True, next_run_time=datetime.now(UTC)
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("daemon.stopping", signal=signal.Signals(signum).name)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("daemon.started", interval=interval, trackers=list(engine.trackers))
    scheduler.start()
