"""The polling loop on APScheduler 3: one cycle every poll_interval, never two at once, stopped by SIGINT/SIGTERM.

`Daemon.wake()` runs the next cycle now (a verified webhook calls it): the fast path on top of polling.
Between cycles, `Engine.tend()` runs every second: it writes what the runs reported (progress, a finished run, a
published change) without polling any tracker, so a long poll interval never delays a run's result.
"""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from types import FrameType

import structlog
from apscheduler.schedulers.blocking import BlockingScheduler

from tracker_bridge.engine import Engine

log = structlog.get_logger(__name__)

JOB_ID = "poll"
TEND_JOB_ID = "tend"
TEND_INTERVAL_S = 1.0


class Daemon:
    def __init__(self, engine: Engine, interval: float) -> None:
        self.engine = engine
        self.interval = interval
        self.scheduler = BlockingScheduler(timezone=UTC)
        # max_instances=1 + coalesce: a slow cycle delays the next instead of stacking cycles up.
        self.scheduler.add_job(
            self._cycle,
            "interval",
            id=JOB_ID,
            seconds=interval,
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )
        self.scheduler.add_job(
            self._tend, "interval", id=TEND_JOB_ID, seconds=TEND_INTERVAL_S, max_instances=1, coalesce=True
        )

    def _tend(self) -> None:
        try:
            self.engine.tend()
        except Exception:
            log.exception("tend.failed")

    def _cycle(self) -> None:
        try:
            report = self.engine.cycle()
            log.info("cycle", polled=report.polled, started=report.started_runs, errors=report.poll_errors)
        except Exception:  # one bad cycle must not stop the daemon; the next one tries again
            log.exception("cycle.failed")

    def wake(self) -> None:
        """Poll now rather than at the next interval (a cycle under way is not interrupted)."""
        self.scheduler.modify_job(JOB_ID, next_run_time=datetime.now(UTC))

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        log.info("daemon.stopping", signal=signal.Signals(signum).name)
        self.scheduler.shutdown(wait=False)

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        log.info("daemon.started", interval=self.interval, trackers=list(self.engine.trackers))
        self.scheduler.start()
