"""The polling loop on APScheduler 3: one cycle every poll_interval, never two at once, stopped by SIGINT/SIGTERM.

`Daemon.wake()` runs the next cycle now (a verified webhook calls it): the fast path on top of polling.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

import structlog
from apscheduler.schedulers.blocking import BlockingScheduler

from tracker_bridge.engine import Engine

log = structlog.get_logger(__name__)

JOB_ID = "poll"


class Daemon:
    def __init__(self, engine: Engine, interval: float) -> None:
        self.engine = engine
        self.interval = interval
        self.scheduler = BlockingScheduler(timezone=UTC)
        # Told the duration of every cycle that ended, failed or not (the web's /healthz and metrics listen).
        self.on_cycle_end: list[Callable[[float], None]] = []
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

    def _cycle(self) -> None:
        began = time.monotonic()
        try:
            report = self.engine.cycle()
            log.info("cycle", polled=report.polled, started=report.started_runs, errors=report.poll_errors)
        except Exception:  # one bad cycle must not stop the daemon; the next one tries again
            log.exception("cycle.failed")
        for listener in self.on_cycle_end:
            listener(time.monotonic() - began)

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
