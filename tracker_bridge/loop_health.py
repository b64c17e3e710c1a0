"""Is the poll loop alive? The daemon tells this object when each cycle ends; `/healthz` and the metrics read it.

Liveness is about the loop, not about the trackers: a tracker that answers 500 is the tracker's problem (`/readyz`
says so), and restarting a daemon whose loop is fine would not fix it. A loop that has not finished a cycle for
three poll intervals is stuck, and that is what a liveness probe should restart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from prometheus_client import Histogram

STALL_INTERVALS = 3  # cycles that may be missed before the loop counts as stalled

# Cycle durations from a fast local poll to a slow multi-tracker cycle with scoring and clones.
CYCLE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class LoopHealth:
    def __init__(self, interval: float, *, clock: Callable[[], float] | None = None) -> None:
        self.interval = interval
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self.started = self._clock()
        self.last_finished: float | None = None  # monotonic seconds
        self.last_finished_wall: float | None = None  # unix seconds, for the metrics and the page
        self.last_duration: float | None = None
        self.cycles = 0
        self.duration = Histogram(
            "tracker_bridge_cycle_duration_seconds",
            "Wall time of one poll-and-act cycle",
            buckets=CYCLE_BUCKETS,
            registry=None,
        )

    def cycle_finished(self, seconds: float) -> None:
        with self._lock:
            self.last_finished = self._clock()
            self.last_finished_wall = time.time()
            self.last_duration = seconds
            self.cycles += 1
        self.duration.observe(seconds)

    def seconds_since_progress(self) -> float:
        """Since the last cycle ended, or since start when none has yet (the first cycle gets the same grace)."""
        with self._lock:
            ref = self.last_finished if self.last_finished is not None else self.started
        return self._clock() - ref

    @property
    def limit(self) -> float:
        return STALL_INTERVALS * self.interval

    def alive(self) -> bool:
        return self.seconds_since_progress() <= self.limit

