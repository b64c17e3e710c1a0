"""Which distributed task engine should run agent runs? Measured here, on this machine, with real servers.

Candidates: procrastinate (jobs in the PostgreSQL that already holds the state) and Celery on Redis (acks-late,
reject-on-worker-lost, prefetch 1: the settings long jobs need). The job is a toy agent run: it logs that it
started, sleeps in small steps (an agent run is mostly waiting on a model), writes its result file and returns it.

What is measured (docs/scaling.md reads these figures):
  (a) a worker SIGKILLed mid-job (its whole process group, like a lost machine) while a second worker is idle:
      is the job lost, taken over, executed twice, and after how long?
  (b) long jobs: the job outlives the engine's failure-detection window (visibility timeout for Celery, worker
      heartbeat for procrastinate), scaled down so that 30-minute semantics show in seconds: executed twice?
  (c) cancelling a running job from another process: does it stop, and how fast?
  (d) throughput of short jobs with 1 and 2 worker processes;
  (e) footprint: extra servers, processes and resident memory;
  (f) draining: a worker sent SIGTERM mid-job (systemctl stop) while the failure detection runs: executed once?

Needs: pip install -e '.[queue-bench]' (procrastinate, celery[redis], psycopg); PostgreSQL server binaries
(as for the tests, see tests/pg.py) and /usr/bin/redis-server. Whatever is missing is skipped, saying why.

    python bench/queue_candidates.py [--jobs 200]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the PostgreSQL starter of the tests (tests/pg.py)

# --- the toy agent run, shared by both engines -------------------------------------------------------------------


def _log(out: str, line: str) -> None:
    # O_APPEND writes of one short line are atomic: several workers can share the log.
    with open(Path(out) / "log", "a", encoding="utf-8") as f:
        f.write(line + "\n")


def toy_run(run_id: str, seconds: float, out: str, should_abort: Callable[[], bool] = lambda: False) -> dict[str, Any]:
    _log(out, f"start {run_id} {os.getpid()} {time.time():.3f}")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if should_abort():
            _log(out, f"aborted {run_id} {os.getpid()} {time.time():.3f}")
            return {"run_id": run_id, "outcome": "aborted"}
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    result = {"run_id": run_id, "outcome": "succeeded", "pid": os.getpid()}
    (Path(out) / f"result-{run_id}.json").write_text(json.dumps(result))
    _log(out, f"done {run_id} {os.getpid()} {time.time():.3f}")
    return result


def read_log(out: Path) -> list[tuple[str, str, int, float]]:
    path = out / "log"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        kind, run_id, pid, at = line.split()
        rows.append((kind, run_id, int(pid), float(at)))
    return rows


def count(out: Path, kind: str, run_id: str | None = None) -> int:
    return sum(1 for k, r, _, _ in read_log(out) if k == kind and (run_id is None or r == run_id))


def wait_for(check: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return check()


# --- the engines, behind one small interface ---------------------------------------------------------------------


def procrastinate_app(conninfo: str) -> Any:
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))

    @app.task(name="toy_run", pass_context=True)  # type: ignore[misc]
    def _toy(context: Any, run_id: str, seconds: float, out: str) -> dict[str, Any]:
        return toy_run(run_id, seconds, out, should_abort=context.should_abort)

    return app


def celery_app(redis_url: str, visibility: float) -> Any:
    from celery import Celery

    app = Celery("bench", broker=redis_url, backend=redis_url)
    app.conf.update(
        task_acks_late=True,  # ack after the job, so a dead worker's job is delivered again
        task_reject_on_worker_lost=True,  # ... also when the pool child dies
        worker_prefetch_multiplier=1,  # a worker holds only the job it runs
        broker_transport_options={
            "visibility_timeout": visibility,  # unacked for this long: delivered again
            # Sweep for such jobs every second (default: every 10 s x 1 sweep in 10 = 100 s).
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        },
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )

    @app.task(name="toy_run")  # type: ignore[misc]
    def _toy(run_id: str, seconds: float, out: str) -> dict[str, Any]:
        return toy_run(run_id, seconds, out)

    return app


@dataclass
class Settings:
    heartbeat: float = 1.0  # procrastinate: worker heartbeat interval
    stalled: float = 3.0  # procrastinate: a worker silent this long is dead, its jobs are retried
    visibility: float = 10.0  # Celery/Redis: an unacked job is delivered again after this long


class Engine:
    name = ""
    extra_servers = ""

    def __init__(self, url: str, settings: Settings) -> None:
        self.url, self.settings = url, settings
        self.workers: list[subprocess.Popen[bytes]] = []

    def start_worker(self, concurrency: int = 1) -> subprocess.Popen[bytes]:
        args = [sys.executable, __file__, "_worker", self.name, self.url, str(concurrency),
                json.dumps(self.settings.__dict__)]
        proc = subprocess.Popen(args, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.workers.append(proc)
        return proc

    def kill_worker(self, proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop_workers(self) -> None:
        for p in self.workers:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        for p in self.workers:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill_worker(p)
        self.workers.clear()

    # Implemented per engine:
    def enqueue(self, run_id: str, seconds: float, out: Path) -> Any: ...
    def cancel(self, handle: Any) -> None: ...
    def enqueue_many(self, kwargs: list[dict[str, Any]]) -> None: ...
    def tick(self) -> None:
        """What the leader does every second besides polling trackers (procrastinate: retry stalled jobs)."""

    def close(self) -> None: ...


class Procrastinate(Engine):
    name = "procrastinate"
    extra_servers = "none (PostgreSQL is already the state store)"

    def __init__(self, url: str, settings: Settings) -> None:
        super().__init__(url, settings)
        self.app = procrastinate_app(url)
        self.app.open()
        with contextlib.suppress(Exception):  # already applied by a previous measurement
            self.app.schema_manager.apply_schema()
        self.retried = 0
        self._last_tick = 0.0

    def enqueue(self, run_id: str, seconds: float, out: Path) -> Any:
        return self.app.tasks["toy_run"].defer(run_id=run_id, seconds=seconds, out=str(out))

    def cancel(self, handle: Any) -> None:
        self.app.job_manager.cancel_job_by_id(handle, abort=True)

    def tick(self) -> None:
        import asyncio

        async def retry() -> None:
            # The sync-opened app cannot run the async job manager: a short-lived async app does the reaping.
            async with procrastinate_app(self.url).open_async() as app:
                jobs = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=self.settings.stalled)
                for job in jobs:
                    await app.job_manager.retry_job(job)
                    self.retried += 1

        now = time.monotonic()
        if now - self._last_tick >= 1.0:
            self._last_tick = now
            asyncio.run(retry())

    def enqueue_many(self, kwargs: list[dict[str, Any]]) -> None:
        self.app.tasks["toy_run"].batch_defer(*kwargs)

    def close(self) -> None:
        self.app.close()


class CeleryRedis(Engine):
    name = "celery"
    extra_servers = "Redis (broker and result backend)"

    def __init__(self, url: str, settings: Settings) -> None:
        super().__init__(url, settings)
        self.app = celery_app(url, settings.visibility)

    def enqueue(self, run_id: str, seconds: float, out: Path) -> Any:
        return self.app.send_task("toy_run", kwargs={"run_id": run_id, "seconds": seconds, "out": str(out)}).id

    def cancel(self, handle: Any) -> None:
        self.app.control.revoke(handle, terminate=True, signal="SIGTERM")

    def enqueue_many(self, kwargs: list[dict[str, Any]]) -> None:
        for kw in kwargs:
            self.app.send_task("toy_run", kwargs=kw)

    def close(self) -> None:
        self.app.close()


def worker_main(engine: str, url: str, concurrency: int, settings_json: str) -> None:
    settings = Settings(**json.loads(settings_json))
    if engine == "procrastinate":
        app = procrastinate_app(url)
        with app.open():
            app.run_worker(
                concurrency=concurrency,
                update_heartbeat_interval=settings.heartbeat,
                stalled_worker_timeout=settings.stalled,
                abort_job_polling_interval=0.5,
            )
    else:
        app = celery_app(url, settings.visibility)
        app.worker_main(["worker", "--pool=prefork", f"--concurrency={concurrency}", "--loglevel=WARNING",
                         "--without-gossip", "--without-mingle", "-n", f"w{os.getpid()}@%h"])


# --- the measurements ----------------------------------------------------------------------------------------------


def ready(engine: Engine, out: Path, n_workers: int = 1, concurrency: int = 1) -> None:
    """Start workers and wait until each has executed a warm-up job (so start-up time is not measured)."""
    for _ in range(n_workers):
        engine.start_worker(concurrency)
    for i in range(n_workers * concurrency):
        engine.enqueue(f"warm{i}", 0.3, out)
    if not wait_for(lambda: count(out, "done") >= n_workers * concurrency, 90):
        raise RuntimeError(f"{engine.name}: workers did not start")


def with_ticks(engine: Engine, check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        engine.tick()
        if check():
            return True
        time.sleep(0.2)
    return check()


def measure_kill(engine: Engine, out: Path) -> dict[str, Any]:
    ready(engine, out, n_workers=2)
    engine.enqueue("run", 6.0, out)
    wait_for(lambda: count(out, "start", "run") == 1, 30)
    victim_pid = next(pid for k, r, pid, _ in read_log(out) if k == "start" and r == "run")
    victim = next(p for p in engine.workers if p.pid in (victim_pid, os.getpgid(victim_pid)))
    engine.kill_worker(victim)
    killed_at = time.time()
    with_ticks(engine, lambda: count(out, "done", "run") >= 1, 60)
    time.sleep(1.0)
    starts = [at for k, r, _, at in read_log(out) if k == "start" and r == "run"]
    taken_over = starts[1] - killed_at if len(starts) > 1 else None
    return {"executions_started": len(starts), "completed": count(out, "done", "run"),
            "takeover_s": round(taken_over, 1) if taken_over is not None else None}


def measure_drain(engine: Engine, out: Path) -> dict[str, Any]:
    """SIGTERM (systemctl stop) a worker mid-job: it should finish the job and take no other, executed once."""
    ready(engine, out, n_workers=2)
    engine.enqueue("drain", 8.0, out)
    wait_for(lambda: count(out, "start", "drain") == 1, 30)
    pid = next(pid for k, r, pid, _ in read_log(out) if k == "start" and r == "drain")
    victim = next(p for p in engine.workers if p.pid in (pid, os.getpgid(pid)))
    os.kill(victim.pid, signal.SIGTERM)
    with_ticks(engine, lambda: count(out, "done", "drain") >= 1, 40)
    with_ticks(engine, lambda: False, 4.0)  # a late duplicate would show here
    exited = wait_for(lambda: victim.poll() is not None, 10)
    return {"executions_started": count(out, "start", "drain"), "completed": count(out, "done", "drain"),
            "drained_worker_exited": exited}


def measure_long(engine: Engine, out: Path, seconds: float) -> dict[str, Any]:
    ready(engine, out, n_workers=2)
    engine.enqueue("long", seconds, out)
    with_ticks(engine, lambda: count(out, "done", "long") >= 1, seconds + 30)
    with_ticks(engine, lambda: False, 4.0)  # a late duplicate would show here
    return {"job_s": seconds, "executions_started": count(out, "start", "long"),
            "completed": count(out, "done", "long")}


def measure_cancel(engine: Engine, out: Path) -> dict[str, Any]:
    ready(engine, out, n_workers=1)
    handle = engine.enqueue("cancel", 30.0, out)
    wait_for(lambda: count(out, "start", "cancel") == 1, 30)
    pid = next(pid for k, r, pid, _ in read_log(out) if k == "start" and r == "cancel")
    asked = time.monotonic()
    engine.cancel(handle)

    def stopped() -> bool:
        if count(out, "aborted", "cancel"):
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return engine.name == "celery" and _is_zombie_or_new(pid)

    ok = wait_for(stopped, 20)
    return {"stopped": ok, "stop_s": round(time.monotonic() - asked, 2) if ok else None,
            "completed_anyway": count(out, "done", "cancel")}


def _is_zombie_or_new(pid: int) -> bool:
    # Celery replaces a terminated pool child: the old pid is gone or a zombie until reaped.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def measure_throughput(engine: Engine, out: Path, n_workers: int, jobs: int) -> dict[str, Any]:
    ready(engine, out, n_workers=n_workers)
    single = 20  # one by one, as the leader enqueues a run; the rest in one batch, so enqueueing is not the limit
    t0 = time.monotonic()
    for i in range(single):
        engine.enqueue(f"t{i}", 0.0, out)
    enqueue_rate = single / (time.monotonic() - t0)
    engine.enqueue_many([{"run_id": f"t{i}", "seconds": 0.0, "out": str(out)} for i in range(single, jobs)])
    wait_for(lambda: sum(1 for k, r, _, _ in read_log(out) if k == "done" and r.startswith("t")) >= jobs, 300, 0.02)
    total = time.monotonic() - t0
    rss = sum(tree_rss_kib(p.pid) for p in engine.workers)
    procs = sum(len(tree_pids(p.pid)) for p in engine.workers)
    return {"workers": n_workers, "jobs": jobs, "enqueue_one_per_s": round(enqueue_rate), "jobs_per_s":
            round(jobs / total, 1), "worker_processes": procs, "worker_rss_mib": round(rss / 1024, 1)}


def tree_pids(pid: int) -> list[int]:
    pids = [pid]
    for child_file in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in child_file.read_text().split():
            pids.extend(tree_pids(int(child)))
    return pids


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kib(pid: int) -> int:
    return sum(rss_kib(p) for p in tree_pids(pid))


# --- servers -------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def redis_server() -> Iterator[tuple[str, int]]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        raise RuntimeError("redis-server not found (apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = tempfile.mkdtemp(prefix="tb-redis-")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", folder], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(port=port)
        wait_for(lambda: _pings(client), 10)
        yield f"redis://127.0.0.1:{port}/0", proc.pid
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _pings(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


def run_all(kind: str, url_factory: Callable[[], str], jobs: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    cls: type[Engine] = Procrastinate if kind == "procrastinate" else CeleryRedis

    def one(label: str, settings: Settings, fn: Callable[[Engine, Path], dict[str, Any]]) -> None:
        engine = cls(url_factory(), settings)
        out = Path(tempfile.mkdtemp(prefix=f"tb-{kind}-"))
        try:
            results[label] = fn(engine, out)
        except Exception as exc:
            results[label] = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            engine.stop_workers()
            engine.close()
            shutil.rmtree(out, ignore_errors=True)
        print(f"  {kind:13} {label:14} {json.dumps(results[label])}", flush=True)

    fast = Settings(heartbeat=1.0, stalled=3.0, visibility=10.0)
    one("a_kill", fast, measure_kill)
    # Long: the job lasts 4x the failure-detection window (3 s stall window; 3 s visibility timeout).
    one("b_long", Settings(heartbeat=1.0, stalled=3.0, visibility=3.0), lambda e, o: measure_long(e, o, 12.0))
    one("c_cancel", fast, measure_cancel)
    one("f_drain", fast, measure_drain)
    one("d_1_worker", fast, lambda e, o: measure_throughput(e, o, 1, jobs))
    one("d_2_workers", fast, lambda e, o: measure_throughput(e, o, 2, jobs))
    return results


def measure_procrastinate(jobs: int) -> None:
    try:
        import procrastinate  # noqa: F401

        from tests import pg
    except ImportError as exc:
        print(f"procrastinate: skipped ({exc}); pip install -e '.[queue-bench]'")
        return
    try:
        server = pg.start()
    except pg.Unavailable as exc:
        print(f"procrastinate: skipped ({exc})")
        return
    try:
        # A fresh database for each measurement, so no job of one is left over for the next.
        run_all("procrastinate", lambda: server.new_database().replace("postgresql+psycopg://", "postgresql://", 1),
                jobs)
        print("  procrastinate footprint       extra servers: none (its tables live in the state store's PostgreSQL)")
    finally:
        server.stop()


def main() -> None:
    import logging

    logging.getLogger("procrastinate").setLevel(logging.ERROR)  # "App is instantiated in the main module": intended
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=200, help="short jobs for the throughput figures")
    parser.add_argument("--only", choices=["procrastinate", "celery"], help="measure one candidate")
    args = parser.parse_args()
    print(f"queue candidates on {os.cpu_count()} cores; figures below are this machine's")

    if args.only in (None, "procrastinate"):
        measure_procrastinate(args.jobs)
    if args.only in (None, "celery"):
        try:
            import celery  # noqa: F401
            import redis  # noqa: F401

            ctx = redis_server()
            url, redis_pid = ctx.__enter__()
        except (ImportError, RuntimeError) as exc:
            print(f"celery: skipped ({exc}); pip install -e '.[queue-bench]', apt-get install redis-server")
        else:
            try:
                counter = iter(range(1, 16))
                run_all("celery", lambda: url.rsplit("/", 1)[0] + f"/{next(counter)}", args.jobs)
                print(f"  celery         footprint      extra servers: Redis, RSS {rss_kib(redis_pid) / 1024:.1f} MiB")
            finally:
                ctx.__exit__(None, None, None)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        worker_main(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        main()
