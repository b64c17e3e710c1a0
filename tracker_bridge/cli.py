"""The commands of the contract: run, score, status, doctor, demo (and trace).

Exit status: 0 ok, 2 bad configuration or usage (with a message naming the key and the fix), 1 any other failure.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import OperationalError

from tracker_bridge import logs
from tracker_bridge.config import ConfigError, Settings, load_settings
from tracker_bridge.protocols import Problem, TrackerError
from tracker_bridge.state_url import check_state_url, unreachable
from tracker_bridge.store import Store
from tracker_bridge.views import ticket_summaries

app = typer.Typer(
    name="tracker-bridge",
    help="Hand tickets to an autonomous coding agent from the tracker your team already uses.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True, soft_wrap=True)

ConfigOption = Annotated[
    Path | None, typer.Option("-c", "--config", help="configuration file (default: ./tracker-bridge.toml)")
]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _settings(config: Path | None, *, check_secrets: bool = True) -> Settings:
    try:
        settings = load_settings(config, check_secrets=check_secrets)
        check_state_url(settings.state_url)  # a wrong URL or a missing driver: exit 2 here, not a traceback later
        return settings
    except ConfigError as exc:
        err.print("[bold red]configuration error[/]", highlight=False)
        for line in exc.problems:
            err.print(f"  - {line}", highlight=False, markup=False)
        raise typer.Exit(2) from exc


def _preflight(engine: Any) -> list[Problem]:
    """What must hold before the daemon acts: every mapped column on every board, every repository usable."""
    problems: list[Problem] = []
    columns = engine.settings.stages.as_mapping()
    for name, tracker in engine.trackers.items():
        try:
            problems.extend(tracker.check(columns))
        except TrackerError as exc:
            problems.append(Problem(f"trackers.{name}", str(exc), "check the url, token and permissions"))
    for host in engine.hosts.values():
        problems.extend(host.check())
    return problems


def _print_problems(problems: list[Problem]) -> None:
    for p in problems:
        err.print(f"  - {p}", highlight=False, markup=False)


@app.command()
def run(
    config: ConfigOption = None,
    once: Annotated[bool, typer.Option("--once", help="one poll-and-act cycle; exit when its runs finish")] = False,
) -> None:
    """Run the daemon: poll the trackers, score, run the agent, follow the pull requests."""
    from tracker_bridge.engine import build_engine

    settings = _settings(config)
    logs.configure(settings.bridge.log_format)
    store = Store(settings.state_url)
    engine = build_engine(settings, store)
    problems = _preflight(engine)
    if problems:
        err.print("[bold red]tracker-bridge cannot start:[/]")
        _print_problems(problems)
        raise typer.Exit(2)
    try:
        if once:
            engine.cycle()
            engine.wait()
        else:
            from tracker_bridge.scheduler import Daemon

            daemon = Daemon(engine, settings.bridge.poll_interval)
            if settings.web.enabled:
                from tracker_bridge.web import create_app, serve_in_thread

                app_ = create_app(settings, store, wake=daemon.wake)
                serve_in_thread(app_, settings.web.host, settings.web.port)
                err.print(f"dashboard on http://{settings.web.listen}/", highlight=False)
            daemon.run()
    finally:
        engine.shutdown()
        store.close()


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
    repo_name = ticket.repo or settings.tracker(ticket.tracker).repo
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
    store = Store(settings.state_url)
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
        for c in store.cursors():
            if c.last_error:
                err.print(f"[red]last poll of {c.tracker} failed[/] at {c.error_at:%Y-%m-%d %H:%M}Z: {c.last_error}")
    finally:
        store.close()


@app.command()
def doctor(config: ConfigOption = None) -> None:
    """Check configuration, credentials, columns, repositories and the sandbox; say how to fix each problem."""
    from tracker_bridge_connectors.registry import ConnectorUnavailable, create_code_host, create_tracker

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        err.print("[bold red]configuration error[/]")
        for line in exc.problems:
            err.print(f"  - {line}", markup=False, highlight=False)
        raise typer.Exit(2) from exc
    problems: list[Problem] = []
    columns = settings.stages.as_mapping()
    for t in settings.trackers:
        try:
            found = create_tracker(t, settings).check(columns)
        except (TrackerError, ConnectorUnavailable) as exc:
            found = [Problem(f"trackers.{t.name}", str(exc), "check the url, token and permissions")]
        problems.extend(found)
        out.print(f"tracker {t.name} ({t.kind}): " + ("[green]ok[/]" if not found else "[red]problems[/]"))
    for r in settings.repos:
        try:
            found = create_code_host(r, settings).check()
        except ConnectorUnavailable as exc:
            found = [Problem(f"repos.{r.name}", str(exc), "install the connector")]
        if r.test_command:
            program = shlex.split(r.test_command)[0]
            if shutil.which(program) is None and not (settings.path(r.url) / program).exists():
                found.append(
                    Problem(
                        f'repos.{r.name}.test_command = "{r.test_command}"',
                        f"{program!r} is not on PATH",
                        "install it or use a command available on this machine",
                    )
                )
        problems.extend(found)
        out.print(f"repository {r.name} ({r.host}): " + ("[green]ok[/]" if not found else "[red]problems[/]"))
    if settings.agent.backend == "claude-code":
        if shutil.which(settings.agent.claude_path) is None:
            problems.append(
                Problem(
                    '[agent] backend = "claude-code"',
                    f"the Claude Code CLI ({settings.agent.claude_path!r}) is not on PATH",
                    "npm install -g @anthropic-ai/claude-code, or set [agent] claude_path",
                )
            )
        if not os.environ.get(settings.agent.api_key_env):
            # Each run gets a throwaway HOME, so a `claude login` on the machine is not used.
            problems.append(
                Problem(
                    f"[agent] api_key_env = {settings.agent.api_key_env!r}",
                    "the environment variable is not set, and Claude Code runs need it",
                    f"export {settings.agent.api_key_env}=<your Anthropic API key>",
                )
            )
    try:
        from tracker_bridge.agents.sandbox import sandbox_status

        ok, message = sandbox_status(settings)
        out.print(f"sandbox: {'[green]' if ok else '[yellow]'}{message}[/]", highlight=False)
    except ImportError:
        pass
    try:
        Store(settings.state_url).close()
        out.print(f"state store: [green]ok[/] ({settings.state_url})", highlight=False)
    except Exception as exc:  # any driver error is a configuration problem to report, not a crash
        problems.append(Problem("[bridge] state", f"cannot open {settings.state_url}: {exc}", "check the URL"))
    if problems:
        err.print(f"[bold red]{len(problems)} problem(s):[/]")
        _print_problems(problems)
        raise typer.Exit(2)
    out.print("[bold green]all checks passed[/]")


@app.command()
def trace(
    ref: Annotated[str, typer.Argument(help="ticket reference")],
    config: ConfigOption = None,
    attempt: Annotated[int | None, typer.Option("--attempt", help="which run (default: the last)")] = None,
) -> None:
    """Show the trace of a ticket's agent run: events, tool calls, tokens and cost."""
    from tracker_bridge.agents import trace as trace_mod

    settings = _settings(config, check_secrets=False)
    store = Store(settings.state_url)
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


@app.command()
def demo(
    workdir: Annotated[
        Path | None, typer.Option("--dir", help="where to build the demo (default: a new temporary folder)")
    ] = None,
) -> None:
    """The whole journey locally: a sample repository, two tickets, the daemon, no accounts needed."""
    from tracker_bridge.demo import run_demo

    raise typer.Exit(run_demo(workdir, out))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except OperationalError as exc:  # the state store would not open or went away: say so, not a traceback
        status, message = unreachable(exc)
        err.print(message, markup=False, highlight=False)
        sys.exit(status)


if __name__ == "__main__":
    main()
