"""The commands of the contract: run, score, status, doctor, demo (and trace).

Exit status: 0 ok, 2 bad configuration or usage (with a message naming the key and the fix), 1 any other failure.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import re
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import OperationalError

from tracker_bridge import __version__, checks, logs, secrets
from tracker_bridge.config import ConfigError, Settings, load_settings, state_problem
from tracker_bridge.protocols import Problem, TrackerError
from tracker_bridge.routing import route
from tracker_bridge.schema import SchemaTooNew
from tracker_bridge.state_url import check_state_url, unreachable
from tracker_bridge.store import Store, utcnow
from tracker_bridge.views import rejected_summaries, ticket_summaries

app = typer.Typer(
    name="tracker-bridge",
    help="Hand tickets to an autonomous coding agent from the tracker your team already uses.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True, soft_wrap=True)

ConfigOption = Annotated[
    Path | None, typer.Option("-c", "--config", help="configuration file (default: ./tracker-bridge.toml)")
]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]
log = structlog.get_logger(__name__)


def _print_version(value: bool) -> None:
    if value:
        print(f"tracker-bridge {__version__}")
        raise typer.Exit(0)


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit"),
    ] = False,
) -> None:
    """Hand tickets to an autonomous coding agent from the tracker your team already uses."""


def _settings(config: Path | None, *, check_secrets: bool = True) -> Settings:
    try:
        settings = load_settings(config, check_secrets=check_secrets)
        check_state_url(settings.state_url)  # a wrong URL or a missing driver: exit 2 here, not a traceback later
        _check_queue_engine(settings)
        return settings
    except ConfigError as exc:
        err.print("[bold red]configuration error[/]", highlight=False)
        for line in exc.problems:
            err.print(f"  - {line}", highlight=False, markup=False)
        raise typer.Exit(2) from exc


def _check_queue_engine(settings: Settings) -> None:
    """`[bridge] queue` names a PostgreSQL queue: procrastinate must be installed (exit 2 with the fix, not later)."""
    if settings.bridge.queue == "local":
        return
    try:
        import procrastinate  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            [f"[bridge] queue = a PostgreSQL URL needs procrastinate, which is not installed ({exc}). "
             "Fix: pip install 'tracker-bridge[postgres]', or set queue = \"local\""]
        ) from exc  # fmt: skip


def _open_store(settings: Settings) -> Store:
    """The state store, or exit 2 naming `[bridge] state` (a bad URL or a missing driver is configuration)."""
    try:
        return Store(settings.state_url)
    except OperationalError as exc:  # a server that is down is worth waiting for (exit 1); a wrong URL is not (2)
        status, message = unreachable(exc)
        err.print(message, markup=False, highlight=False)
        raise typer.Exit(status) from exc
    except SchemaTooNew as exc:  # written by a newer release: running on could corrupt it
        err.print(f"[bold red]state store too new[/]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from exc
    except Exception as exc:  # any other driver error here is a configuration problem to report, not a crash
        err.print("[bold red]configuration error[/]", highlight=False)
        err.print(f"  - {state_problem(settings, exc)}", highlight=False, markup=False)
        raise typer.Exit(2) from exc


# A service that rate-limits or fails at start-up is not a configuration mistake: the start-up checks are tried
# again after these pauses, and if they still fail that way the daemon says so and exits 1, not 2.
STARTUP_RETRY_DELAYS_S = (5.0, 15.0, 45.0)
_TRANSIENT = re.compile(
    r"\b(429|500|502|503|504)\b|rate.?limit|too many requests|timed? ?out|temporar|service unavailable|"
    r"bad gateway|internal server error|try again",
    re.IGNORECASE,
)


def is_transient(problem: Problem) -> bool:
    """Whether a start-up problem is a service's passing trouble (rate limit, 5xx, time-out) rather than a fix."""
    return bool(_TRANSIENT.search(problem.message))


def _startup_checks(settings: Settings, engine: Any) -> checks.Findings:
    """The start-up checks (`doctor`'s that would fail tickets), tried again with backoff while every problem they
    find is transient."""
    found = checks.start_up(settings, engine)
    for delay in STARTUP_RETRY_DELAYS_S:
        if not found.problems or not all(is_transient(p) for p in found.problems):
            break
        err.print(f"a service is failing for now; checking again in {delay:g} s", highlight=False)
        time.sleep(delay)
        found = checks.start_up(settings, engine)
    return found


def _print_problems(problems: list[Problem]) -> None:
    for p in problems:
        err.print(f"  - {p}", highlight=False, markup=False)


@app.command()
def run(
    config: ConfigOption = None,
    once: Annotated[bool, typer.Option("--once", help="one poll-and-act cycle; exit when its runs finish")] = False,
    standby: Annotated[
        bool, typer.Option("--standby", help="when another daemon holds the state store, wait and take over")
    ] = False,
) -> None:
    """Run the daemon: poll the trackers, score, run the agent, follow the pull requests."""
    from tracker_bridge.agents.command import secret_env_names

    settings = _settings(config)
    logs.configure(settings.bridge.log_format, level=settings.bridge.log_level)
    # Read once, then out of the daemon's environment block: an unsandboxed agent cannot find them in
    # /proc/<daemon pid>/environ, and no child process inherits them.
    secrets.seal(secret_env_names(settings))
    try:
        _run(settings, config, once=once, standby=standby)
    finally:
        secrets.unseal()


def _run(settings: Settings, config: Path | None, *, once: bool, standby: bool) -> None:
    from tracker_bridge.engine import build_engine
    from tracker_bridge.lease import Lease, LeaseHeld, LeaseKeeper
    from tracker_bridge.scheduler import exit_now

    store = _open_store(settings)
    # One daemon per state store, taken before the engine looks at the store (it resumes runs it finds `running`).
    lease = Lease(store, settings.bridge.lease_seconds)
    try:
        lease.acquire(standby=standby)
    except LeaseHeld as exc:
        store.close()
        err.print(f"[bold red]tracker-bridge cannot start:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        store.close()
        raise typer.Exit(130) from None
    keeper = LeaseKeeper(lease, on_lost=lambda: exit_now(1)).start()
    clean = True
    try:
        _queue_ready(settings)
        engine = build_engine(settings, store)
        # Every check of `doctor` that would otherwise fail the tickets it takes, before the daemon touches one.
        found = _startup_checks(settings, engine)
        if found.problems and all(is_transient(p) for p in found.problems):
            engine.shutdown()
            err.print(
                "[bold red]tracker-bridge cannot start yet:[/] a service keeps answering with a temporary error "
                "(rate limit, server error or time-out). This is not a configuration problem: start it again later "
                "(a service manager restarting it on exit status 1 does that)."
            )
            _print_problems(found.problems)
            raise typer.Exit(1)
        if found.problems:
            engine.shutdown()
            err.print("[bold red]tracker-bridge cannot start:[/]")
            _print_problems(found.problems)
            raise typer.Exit(2)
        for notice in found.notices:
            log.warning("start.notice", message=notice)
        _clean_workspaces(settings, store)
        try:
            if once:
                from tracker_bridge.control import Controls

                engine.dispatch_stopped = Controls(store).paused()  # `tracker-bridge pause` holds for --once too
                engine.cycle()
                engine.wait()
            else:
                from tracker_bridge.scheduler import Daemon

                daemon = Daemon(
                    engine,
                    settings.bridge.poll_interval,
                    shutdown_grace=settings.bridge.shutdown_grace,
                    reload=lambda: load_settings(config),
                )
                if settings.web.enabled:
                    _start_web(settings, store, daemon)
                clean = daemon.run()
        finally:
            engine.shutdown()
    finally:
        keeper.stop()
        lease.release()
        store.close()
    if not clean:
        exit_now(0)  # the interrupted runs' threads are not waited for; their agents die with this process


def _queue_ready(settings: Settings) -> None:
    """`[bridge] queue`: its schema applied (once), or exit 1 naming the key when its server cannot be reached."""
    if settings.bridge.queue == "local":
        return
    from tracker_bridge.jobs import ensure_schema

    try:
        ensure_schema(settings.bridge.queue)
    except Exception as exc:  # psycopg's errors: a server down, a wrong database or password
        err.print("[bold red]tracker-bridge cannot start:[/]", highlight=False)
        err.print(f"  - [bridge] queue: cannot reach the queue's database: {_one_line(exc)}. "
                  "Fix: check the URL and that PostgreSQL is running", highlight=False, markup=False)  # fmt: skip
        raise typer.Exit(1) from exc


def _one_line(exc: Exception) -> str:
    """A driver's error on one line, cut short (psycopg's messages span lines and can be long)."""
    return " ".join(str(exc).split())[:300]


def _clean_workspaces(settings: Settings, store: Store) -> None:
    """At start: remove the workspaces of settled tickets, of failed ones past keep_workspaces, and orphans."""
    from tracker_bridge.workspaces import cleanup

    try:
        cleanup(settings, store, at_start=True)
    except Exception as exc:  # never a reason not to start; the daemon tries again later
        err.print(f"workspace cleanup failed: {exc}", highlight=False)


def _start_web(settings: Settings, store: Store, daemon: Any) -> None:
    """Listen first, then say so: a port that cannot be bound stops the start with exit 2 and the fix."""
    from tracker_bridge.loop_health import LoopHealth
    from tracker_bridge.web import WebBindError, bind_socket, create_app, security_warnings, serve_in_thread

    try:
        sock = bind_socket(settings.web.host, settings.web.port)
    except WebBindError as exc:
        err.print("[bold red]tracker-bridge cannot start:[/]")
        err.print(f"  - {exc}", highlight=False, markup=False)
        raise typer.Exit(2) from exc
    for warning in security_warnings(settings):
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    health = LoopHealth(settings.bridge.poll_interval)
    daemon.on_cycle_end.append(health.cycle_finished)
    serve_in_thread(create_app(settings, store, wake=daemon.wake, loop=health), sock)
    log.info(f"dashboard on http://{settings.web.listen}/", url=f"http://{settings.web.listen}/")


@app.command()
def score(
    ref: Annotated[str, typer.Argument(help="ticket reference: PAY-12, ENG-7, owner/repo#12, group/proj#3, DEMO-1")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
    tracker: Annotated[str | None, typer.Option("--tracker", help="name of the tracker (default: try each)")] = None,
) -> None:
    """Score one ticket and explain the score, without acting on it."""
    from tracker_bridge.scoring import render_score_markdown, score_ticket
    from tracker_bridge_connectors.registry import create_code_host, create_tracker

    settings = _settings(config)
    logs.configure(settings.bridge.log_format, level=logging.WARNING)
    candidates = [settings.tracker(tracker)] if tracker else settings.trackers
    ticket = None
    errors: list[str] = []
    for tcfg in candidates:
        try:
            ticket = create_tracker(tcfg, settings).get_ticket(ref)
            break
        except TrackerError as exc:
            errors.append(f"{tcfg.name}: {exc}")
    if ticket is None:
        err.print(f"[red]ticket {ref} not found[/]: " + "; ".join(errors), highlight=False)
        raise typer.Exit(1)
    repo_name = route(ticket, settings.tracker(ticket.tracker), settings.repos).repo
    with tempfile.TemporaryDirectory(prefix="tb-score-") as scratch:
        repo_dir = None
        if repo_name and settings.scoring.repo_analysis:
            repo = settings.repo(repo_name)
            if repo.host == "local":
                repo_dir = settings.path(repo.url)
            else:
                repo_dir = Path(scratch) / "repo"  # removed with the folder once the ticket is scored
                create_code_host(repo, settings).clone(repo_dir)
        result = score_ticket(ticket, settings.scoring, repo_dir)
    if as_json:
        payload = {"ref": ticket.ref, "tracker": ticket.tracker, "accepted": result.accepted, **result.model_dump()}
        print(json.dumps(payload, indent=2))
        return
    out.print(f"[bold]{ticket.ref}[/] {ticket.title}", highlight=False)
    out.print(render_score_markdown(result), markup=False, highlight=False)


@app.command()
def status(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Tickets and runs known to the state store."""
    settings = _settings(config, check_secrets=False)
    store = _open_store(settings)
    try:
        rows = ticket_summaries(settings, store)
        if as_json:
            print(json.dumps(rows, indent=2))
            return
        table = Table(title="tracker-bridge")
        for col in ("ref", "tracker", "stage", "column", "score", "cost", "pull request", "why"):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(
                r["ref"],
                r["tracker"],
                r["stage"],
                r["column"] or "",
                f"{r['score']:.2f}" if r["score"] is not None else "",
                f"${r['cost_usd']:.2f}",
                r["pr_url"] or "",
                r["reason"],
            )
        out.print(table)
        _print_daemon_state(settings, store)
        for c in store.cursors():
            if c.last_error:
                err.print(f"[red]last poll of {c.tracker} failed[/] at {c.error_at:%Y-%m-%d %H:%M}Z: {c.last_error}")
        for rejected in rejected_summaries(store):
            err.print(
                f"[yellow]skipped {rejected['tracker']}/{rejected['ref']}[/]: {rejected['reason']}", highlight=False
            )
    finally:
        store.close()


def _print_daemon_state(settings: Settings, store: Store) -> None:
    """Which daemon holds the state store, and whether dispatch is paused."""
    from tracker_bridge.control import Controls
    from tracker_bridge.lease import Lease

    holder = Lease(store, settings.bridge.lease_seconds).holder()
    if holder is not None and holder.expires_at > utcnow():
        out.print(f"daemon: {holder.describe()}", highlight=False, soft_wrap=True)
    else:
        out.print("daemon: none running on this state store", highlight=False)
    if Controls(store).paused():
        out.print("dispatch is paused: no new run starts until `tracker-bridge resume`", highlight=False)
    if settings.bridge.queue != "local":
        from tracker_bridge.remote_runs import worker_lines

        for line in worker_lines(store, settings):
            out.print(line, highlight=False, soft_wrap=True, markup=False)


@app.command()
def doctor(config: ConfigOption = None) -> None:
    """Check configuration, credentials, columns, repositories and the sandbox; say how to fix each problem."""
    settings = _settings(config)
    problems: list[Problem] = []
    notices: list[str] = []
    for part in (checks.trackers(settings), checks.repos(settings), checks.agent(settings), checks.sandbox(settings)):
        for line in part.lines:
            out.print(line, highlight=False, soft_wrap=True)
        problems.extend(part.problems)
        notices.extend(part.notices)
    from tracker_bridge.scoring.model import describe_weights, load_weights

    share = settings.scoring.clarity_share
    out.print(f"scoring: {describe_weights(load_weights(settings.state_dir), share)}", markup=False, highlight=False)
    try:
        store = Store(settings.state_url)
        out.print(f"state store: [green]ok[/] ({settings.state_url})", highlight=False)
        try:
            _doctor_queue(settings, store, problems, notices)
        finally:
            store.close()
    except Exception as exc:  # any driver error is a configuration problem to report, not a crash
        problems.append(state_problem(settings, exc))
    for notice in notices:
        err.print(f"[yellow]note:[/] {escape(notice)}", highlight=False)
    if problems:
        err.print(f"[bold red]{len(problems)} problem(s):[/]")
        _print_problems(problems)
        raise typer.Exit(2)
    out.print("[bold green]all checks passed[/]")


def _doctor_queue(settings: Settings, store: Store, problems: list[Problem], notices: list[str]) -> None:
    """`[bridge] queue`: the engine installed, its database reachable, and which workers are alive."""
    if settings.bridge.queue == "local":
        out.print("queue: local (agent runs execute inside `run`)", highlight=False)
        return
    # procrastinate is installed: `_settings` exits 2 with the fix otherwise.
    from tracker_bridge.jobs import ensure_schema
    from tracker_bridge.remote_runs import live_workers, worker_lines

    try:
        ensure_schema(settings.bridge.queue)
    except Exception as exc:  # a wrong URL or a server that is down
        problems.append(Problem("[bridge] queue", f"cannot reach the queue: {_one_line(exc)}",
                                "check the URL and that the PostgreSQL server is running"))  # fmt: skip
        return
    out.print("queue: [green]ok[/] (procrastinate)", highlight=False)
    for line in worker_lines(store, settings):
        out.print(line, highlight=False, soft_wrap=True, markup=False)
    if not live_workers(store, settings):
        notices.append("no `tracker-bridge worker` is alive: queued tickets wait until one starts")


@app.command()
def calibrate(
    config: ConfigOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show before/after, write nothing")] = False,
) -> None:
    """Refit the scoring weights from finished tickets (merged = success; failed, closed or Needs Human = failure)."""
    from tracker_bridge.scoring.calibrate import figures, outcomes_from_rows, refit, write_weights
    from tracker_bridge.scoring.model import SHIPPED, describe_weights, load_weights, parse_weights

    settings = _settings(config, check_secrets=False)
    store = Store(settings.state_url)
    try:
        outcomes = outcomes_from_rows(store.tickets())
    finally:
        store.close()
    # Always refit from the shipped table: refitting a calibrated table on the same history would count it twice.
    shipped = parse_weights(SHIPPED.read_text(encoding="utf-8"), "shipped")
    in_use = load_weights(settings.state_dir)
    share = settings.scoring.clarity_share
    out.print(f"in use: {describe_weights(in_use, share)}", markup=False, highlight=False)
    if share is not None:  # the configured share overrides any table's split of clarity and scope
        in_use = in_use.with_clarity_share(share)
    if not outcomes:
        out.print("no finished tickets yet (merged, failed, closed unmerged or Needs Human): nothing to learn from")
        return
    new = refit(shipped, outcomes)
    threshold = settings.scoring.threshold
    table = Table("weights", "outcomes", "success rate", "accepted", "accepted success", "AUC", "blend")
    effective = new if share is None else new.with_clarity_share(share)  # what the daemon will score with
    for name, w in (("in use", in_use), ("refitted", effective)):
        f = figures(w, outcomes, threshold)
        blend = ", ".join(f"{k} {v:.2f}" for k, v in w.blend.items())
        table.add_row(
            name,
            str(f.outcomes),
            f"{f.success_rate:.2f}",
            str(f.accepted),
            f"{f.accepted_success_rate:.2f}",
            f"{f.auc:.2f}",
            blend,
        )
    out.print(table)
    if dry_run:
        out.print("dry run: nothing written")
        return
    path = write_weights(new, settings.state_dir)
    out.print(f"wrote {path} ({describe_weights(new)}); the daemon reads it at the next ticket", highlight=False)


@app.command()
def trace(
    ref: Annotated[str, typer.Argument(help="ticket reference")],
    config: ConfigOption = None,
    attempt: Annotated[int | None, typer.Option("--attempt", help="which run (default: the last)")] = None,
) -> None:
    """Show the trace of a ticket's agent run: events, tool calls, tokens and cost."""
    from tracker_bridge.agents import trace as trace_mod

    settings = _settings(config, check_secrets=False)
    store = _open_store(settings)
    try:
        row = store.find_ticket(ref)
        runs = store.runs(row.id) if row else []
        if attempt is not None:
            runs = [r for r in runs if r.attempt == attempt]
        if not runs:
            err.print(f"no run is recorded for {ref}")
            raise typer.Exit(1)
        path = Path(runs[-1].trace_path)
        render = getattr(trace_mod, "render_trace", None)
        if render is not None:
            out.print(render(path))
        else:
            for event in trace_mod.read_trace(path):
                out.print(json.dumps(event), markup=False, highlight=False)
    finally:
        store.close()


# --- operator control: requests a running daemon carries out (see tracker_bridge.control) ----------------------------

RefArgument = Annotated[str, typer.Argument(help="ticket reference, as `status` shows it")]


def _request(config: Path | None, kind: str, ref: str | None, what: str) -> None:
    from tracker_bridge.control import Controls
    from tracker_bridge.lease import Lease

    settings = _settings(config, check_secrets=False)
    store = Store(settings.state_url)
    try:
        if ref is not None and store.find_ticket(ref) is None:
            known = ", ".join(r.ref for r in store.tickets()[-10:]) or "none yet"
            err.print(f"no ticket {ref} in the state store ({settings.state_url}); known: {known}", highlight=False)
            raise typer.Exit(2)
        try:
            who = getpass.getuser()
        except (KeyError, OSError):  # no user name for this uid (some containers)
            who = str(os.getuid())
        Controls(store).request(kind, ref, by=f"cli:{who}@{socket.gethostname()}")
        holder = Lease(store, settings.bridge.lease_seconds).holder()
        live = holder is not None and holder.expires_at > utcnow()
        when = (
            f"the daemon on {holder.host} (pid {holder.pid}) will act at its next cycle"
            if live and holder is not None
            else "no daemon holds this state store now: the next `tracker-bridge run` will act"
        )
        out.print(f"{what}; {when}.", highlight=False, soft_wrap=True)
    finally:
        store.close()


@app.command()
def stop(ref: RefArgument, config: ConfigOption = None) -> None:
    """Stop the agent's run on a ticket (or take it off the queue); the card goes to Needs Human."""
    _request(config, "stop", ref, f"stop requested for {ref}: its run is stopped, or it leaves the queue")


@app.command()
def retry(ref: RefArgument, config: ConfigOption = None) -> None:
    """Queue a failed, declined or cancelled ticket again, without touching the tracker."""
    _request(config, "retry", ref, f"retry requested for {ref}: it is queued again for a new run")


@app.command()
def pause(config: ConfigOption = None) -> None:
    """Start no new agent run; polling, reconciliation and pull-request following go on."""
    _request(config, "pause", None, "pause requested: no new run starts until `tracker-bridge resume`")


@app.command()
def resume(config: ConfigOption = None) -> None:
    """Start agent runs again after `pause`."""
    _request(config, "resume", None, "resume requested: queued tickets start again")


@app.command()
def demo(
    workdir: Annotated[
        Path | None, typer.Option("--dir", help="where to build the demo (default: a new temporary folder)")
    ] = None,
) -> None:
    """The whole journey locally: a sample repository, two tickets, the daemon, no accounts needed."""
    from tracker_bridge.demo import run_demo

    raise typer.Exit(run_demo(workdir, out))


@app.command()
def worker(
    config: ConfigOption = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="agent runs at the same time")] = 1,
) -> None:
    """Execute agent runs from the queue (`[bridge] queue`) for the leading `run`; SIGTERM drains."""
    from tracker_bridge.agents.command import secret_env_names
    from tracker_bridge.worker import serve

    settings = _settings(config)
    logs.configure(settings.bridge.log_format, level=settings.bridge.log_level)
    if settings.bridge.queue == "local":
        err.print("[bold red]configuration error[/]", highlight=False)
        err.print(
            '  - [bridge] queue = "local": agent runs execute inside `run`, there is nothing for a worker to take. '
            "Fix: set [bridge] queue to the PostgreSQL URL of the queue (usually the same as [bridge] state) for "
            "`run` and every worker",
            highlight=False, markup=False,
        )  # fmt: skip
        raise typer.Exit(2)
    store = _open_store(settings)
    _queue_ready(settings)
    secrets.seal(secret_env_names(settings))
    try:
        serve(settings, store, concurrency)
    finally:
        secrets.unseal()
        store.close()


@app.command()
def migrate(config: ConfigOption = None) -> None:
    """Bring the state store's schema up to this release (every command also does it at start)."""
    settings = _settings(config, check_secrets=False)
    store = _open_store(settings)
    done = store.upgrade
    store.close()
    if settings.bridge.queue != "local":
        from tracker_bridge.jobs import ensure_schema

        out.print(f"queue: {ensure_schema(settings.bridge.queue).describe()}", highlight=False)
    if done.before is None:
        out.print(f"state store: created at schema revision {done.after}", highlight=False)
    elif done.changed:
        out.print(f"state store: upgraded from schema revision {done.before} to {done.after}", highlight=False)
    else:
        out.print(f"state store: already at schema revision {done.after} (the newest)", highlight=False)


def main() -> None:
    try:
        app(prog_name="tracker-bridge")
    except KeyboardInterrupt:
        sys.exit(130)
    except ConfigError as exc:  # raised past a command's own handling (e.g. while building the engine)
        err.print("[bold red]configuration error[/]", highlight=False)
        for line in exc.problems:
            err.print(f"  - {line}", highlight=False, markup=False)
        sys.exit(2)
    except OperationalError as exc:  # the state store would not open or went away: say so, not a traceback
        status, message = unreachable(exc)
        err.print(message, markup=False, highlight=False)
        sys.exit(status)


if __name__ == "__main__":
    main()
