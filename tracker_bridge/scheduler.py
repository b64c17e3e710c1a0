"""The polling loop on APScheduler 3: one cycle every poll_interval, never two at once, and the daemon's signals.

`Daemon.wake()` runs the next cycle now (a verified webhook calls it): the fast path on top of polling.

Signals, as a service manager expects them:
- SIGTERM or SIGINT: no new run starts; the daemon says which runs it waits for, waits up to
  `[bridge] shutdown_grace` seconds, then interrupts the rest (recorded interrupted, resumed at the next start as
  after a crash) and exits 0. A second SIGTERM or SIGINT exits at once (the agents die with the daemon).
- SIGHUP: the configuration file is read again; a file that does not load keeps the last good configuration running
  and the log says why.
Between cycles, `Engine.tend()` runs every second: it writes what the runs reported (progress, a finished run, a
published change) without polling any tracker, so a long poll interval never delays a run's result.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

import structlog
from apscheduler.schedulers.blocking import BlockingScheduler

from tracker_bridge.config import ConfigError, Settings
from tracker_bridge.control import Controls
from tracker_bridge.engine import Engine
from tracker_bridge.protocols import Trigger

log = structlog.get_logger(__name__)

JOB_ID = "poll"
CLEANUP_EVERY = 600.0  # seconds between workspace cleanups (settled tickets, failed ones past keep_workspaces)

# What a restart is needed for: the store, the folders, the worker pool and the web server are made at start.
RESTART_KEYS = (
    ("bridge", "state"), ("bridge", "state_dir"), ("bridge", "max_concurrent_runs"), ("bridge", "queue"), ("web", None)
)
TEND_JOB_ID = "tend"
TEND_INTERVAL_S = 1.0


class Daemon:
    def __init__(
        self,
        engine: Engine,
        interval: float,
        *,
        shutdown_grace: float = 60.0,
        reload: Callable[[], Settings] | None = None,
    ) -> None:
        self.engine = engine
        self.interval = interval
        self.shutdown_grace = shutdown_grace
        self.reload_settings = reload
        self.controls = Controls(engine.store)
        self._stopping = threading.Event()
        self._paused = False
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
        self.scheduler.add_job(self._cleanup, "interval", id="cleanup", seconds=CLEANUP_EVERY, max_instances=1)
        self.scheduler.add_job(
            self._tend, "interval", id=TEND_JOB_ID, seconds=TEND_INTERVAL_S, max_instances=1, coalesce=True
        )

    def _cleanup(self) -> None:
        from tracker_bridge.workspaces import cleanup

        try:
            cleanup(self.engine.settings, self.engine.store)
        except Exception:  # a folder that cannot be removed now is tried again next time
            log.exception("workspace.cleanup_failed")

    def _tend(self) -> None:
        try:
            self.engine.tend()
        except Exception:
            log.exception("tend.failed")

    def _cycle(self) -> None:
        if self._stopping.is_set():
            return
        began = time.monotonic()
        try:
            self._apply_pause()
            report = self.engine.cycle()
            # A quiet cycle is a debug line; one that started a run, moved a card or failed a poll is info.
            eventful = report.started_runs or report.poll_errors or report.transitions
            (log.info if eventful else log.debug)(
                "cycle", polled=report.polled, started=report.started_runs, errors=report.poll_errors
            )
        except Exception:  # one bad cycle must not stop the daemon; the next one tries again
            log.exception("cycle.failed")
        for listener in self.on_cycle_end:
            listener(time.monotonic() - began)

    def _apply_pause(self) -> None:
        """`tracker-bridge pause` stops dispatch only: polling, reconciliation and pull-request following go on."""
        paused = self.controls.paused()
        if paused != self._paused:
            log.info("dispatch.paused" if paused else "dispatch.resumed")
            self._paused = paused
        self.engine.dispatch_stopped = paused or self._stopping.is_set()

    def wake(self) -> None:
        """Poll now rather than at the next interval (a cycle under way is not interrupted)."""
        self.scheduler.modify_job(JOB_ID, next_run_time=datetime.now(UTC))

    # --- signals ---------------------------------------------------------------------------------------------------

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self._stopping.is_set():
            # The person means it: no more waiting. Agents die with the daemon (their death signal), and the runs
            # left `running` in the store are resumed at the next start, as after a crash.
            log.warning("daemon.exit_now", signal=name, runs=self.engine.in_flight())
            exit_now(128 + signum)
        self._stopping.set()
        log.info("daemon.stopping", signal=name, hint=f"send {name} again to exit at once")
        self.engine.stop_dispatch()
        self.scheduler.shutdown(wait=False)

    def reload(self, _signum: int, _frame: FrameType | None) -> None:
        if self.reload_settings is None:
            return
        try:
            settings = self.reload_settings()
        except ConfigError as exc:
            log.error("config.reload_failed", problems=exc.problems, kept="the last good configuration")
            return
        except Exception as exc:  # a connector that cannot be made from the new file: same, keep the last good one
            log.error("config.reload_failed", problems=[str(exc)], kept="the last good configuration")
            return
        try:
            apply_settings(self.engine, settings)
        except Exception as exc:
            log.error("config.reload_failed", problems=[str(exc)], kept="the last good configuration")
            return
        if settings.bridge.poll_interval != self.interval:
            self.interval = settings.bridge.poll_interval
            self.scheduler.reschedule_job(JOB_ID, trigger="interval", seconds=self.interval)
        log.info("config.reloaded", trackers=list(self.engine.trackers))

    # --- the loop --------------------------------------------------------------------------------------------------

    def run(self) -> bool:
        """Run until SIGTERM/SIGINT; True when every run finished, False when some had to be interrupted."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGHUP, self.reload)
        log.info("daemon.started", interval=self.interval, trackers=list(self.engine.trackers))
        self.scheduler.start()
        return self.drain()

    def drain(self) -> bool:
        """Wait up to shutdown_grace for the runs under way, then interrupt those left."""
        waiting = self.engine.in_flight()
        if waiting:
            log.info("daemon.waiting", runs=waiting, grace_s=self.shutdown_grace)
            deadline = time.monotonic() + self.shutdown_grace
            while waiting and time.monotonic() < deadline:
                time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
                waiting = self.engine.in_flight()
        if not waiting:
            log.info("daemon.stopped")
            return True
        self.engine.interrupt_runs()
        log.warning("daemon.interrupted_runs", runs=waiting, hint="they resume at the next start")
        return False


def apply_settings(engine: Engine, settings: Settings) -> None:
    """Use a reloaded configuration from the next cycle on: triggers, stages, scoring, agent, trackers and hosts.

    Runs under way keep what they started with. Keys made at start (the store, folders, pool, web) are logged as
    needing a restart rather than half-applied.
    """
    from tracker_bridge_connectors.registry import create_code_host, create_tracker

    old = engine.settings
    for section, key in RESTART_KEYS:
        before, after = getattr(old, section), getattr(settings, section)
        if (getattr(before, key) != getattr(after, key)) if key else (before != after):
            log.warning("config.reload_needs_restart", key=f"[{section}] {key}" if key else f"[{section}]")
    trackers = {t.name: create_tracker(t, settings) for t in settings.trackers}
    hosts = {r.name: create_code_host(r, settings) for r in settings.repos}
    # Kept from the running configuration: what cannot change without a restart.
    settings.bridge.state = old.bridge.state
    settings.bridge.state_dir = old.bridge.state_dir
    settings.bridge.max_concurrent_runs = old.bridge.max_concurrent_runs
    settings.bridge.queue = old.bridge.queue  # where runs execute is chosen at start (the engine's run queue)
    settings.web = old.web
    engine.trackers, engine.hosts = trackers, hosts  # type: ignore[assignment]
    engine.trigger = Trigger(settings.trigger.label, settings.trigger.column)
    engine.settings = settings


def exit_now(code: int) -> None:
    """Leave without waiting for worker threads (Python would join them at exit) and without a traceback."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
