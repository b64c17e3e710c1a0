"""The checks shared by `doctor` and `run`'s start-up: one list, so the daemon never starts on a setup that `doctor`
would have failed and that would otherwise fail every ticket it takes (no agent CLI, no sandbox, a missing column,
an unusable repository).

Each check returns `Problem`s (key, what is wrong, the fix). Findings that do not stop the daemon (ticket files it
will skip, a sandbox that falls back to resource limits) are `Notice`s: shown by `doctor`, logged by `run`.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.markup import escape

from tracker_bridge import secrets
from tracker_bridge.config import Settings
from tracker_bridge.protocols import Problem, RejectedTicket, TrackerError


@dataclass
class Findings:
    problems: list[Problem] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # per-part verdicts for doctor ("tracker demo (local): ok")


def _verdict(found: list[Problem]) -> str:
    return "[green]ok[/]" if not found else "[red]problems[/]"


def trackers(settings: Settings, built: Mapping[str, Any] | None = None, *, skipped_tickets: bool = True) -> Findings:
    """Columns, credentials and scope of every tracker; with `skipped_tickets`, the tickets a tracker will skip
    (unreadable files of a local board) as notices."""
    from tracker_bridge_connectors.registry import ConnectorUnavailable, create_tracker

    result = Findings()
    columns = settings.stages.as_mapping()
    for t in settings.trackers:
        tracker: Any = None
        try:
            tracker = built[t.name] if built and t.name in built else create_tracker(t, settings)
            found = list(tracker.check(columns))
        except (TrackerError, ConnectorUnavailable) as exc:
            found = [Problem(f"trackers.{t.name}", str(exc), "check the url, token and permissions")]
        result.problems.extend(found)
        result.lines.append(f"tracker {t.name} ({t.kind}): {_verdict(found)}")
        unreadable = getattr(tracker, "unreadable", None)
        if skipped_tickets and unreadable is not None and not found:
            skipped: list[RejectedTicket] = unreadable()
            for r in skipped:
                result.notices.append(f"tracker {t.name}: ticket {r.ref} is skipped: {r.reason}")
    return result


def repos(settings: Settings, built: Mapping[str, Any] | None = None) -> Findings:
    """Every repository reachable with its base branch, and its test command installed."""
    from tracker_bridge_connectors.registry import ConnectorUnavailable, create_code_host

    result = Findings()
    for r in settings.repos:
        try:
            host = built[r.name] if built and r.name in built else create_code_host(r, settings)
            found = list(host.check())
        except ConnectorUnavailable as exc:
            found = [Problem(f"repos.{r.name}", str(exc), "install the connector")]
        if r.test_command and not r.setup_command:  # with a set-up, the test program may be one it installs
            try:
                program = shlex.split(r.test_command)[0]
            except (ValueError, IndexError):
                program = r.test_command
            if shutil.which(program) is None and not (settings.path(r.url) / program).exists():
                found.append(
                    Problem(
                        f'repos.{r.name}.test_command = "{r.test_command}"',
                        f"{program!r} is not on PATH",
                        "install it or use a command available on this machine",
                    )
                )
        result.problems.extend(found)
        result.lines.append(f"repository {r.name} ({r.host}): {_verdict(found)}")
    return result


def agent(settings: Settings) -> Findings:
    """The agent backend can start: its CLI is installed, runs inside the sandbox and its key is set; the models
    are not past (or within 30 days of) their end of life (a warning)."""
    from tracker_bridge.agents.preflight import check_agent

    result = Findings()
    preflight = check_agent(settings)
    result.problems.extend(preflight.problems)
    result.notices.extend(f"warning: {w}" for w in preflight.warnings)
    if settings.agent.backend == "claude-code" and not secrets.get(settings.agent.api_key_env):
        # Each run gets a throwaway HOME, so a `claude login` on the machine is not used.
        result.problems.append(
            Problem(
                f"[agent] api_key_env = {settings.agent.api_key_env!r}",
                "the environment variable is not set, and Claude Code runs need it",
                f"export {settings.agent.api_key_env}=<your Anthropic API key>",
            )
        )
    return result


def sandbox(settings: Settings) -> Findings:
    """bubblewrap works, or the operator accepted an unconfined agent (`[agent] allow_unsandboxed = true`, then the
    lines say what it can reach); and which `pass_env` variables the agent is handed."""
    result = Findings()
    try:
        from tracker_bridge.agents.sandbox import sandbox_status, unsandboxed_reach
    except ImportError:
        return result
    ok, message = sandbox_status(settings)
    result.lines.append(f"sandbox: {'[green]' if ok else '[yellow]'}{escape(message)}[/]")
    if not ok and settings.agent.sandbox == "bubblewrap":
        # Asked for by name: every run would fail, whatever allow_unsandboxed says.
        reason, _, fix = message.partition(". Fix: ")
        result.problems.append(Problem('[agent] sandbox = "bubblewrap"', reason, fix or "install bubblewrap"))
    elif not ok and settings.agent.allow_unsandboxed:
        result.lines.append(escape("the agent runs unsandboxed ([agent] allow_unsandboxed = true); it can reach:"))
        result.lines.extend(f"  - {escape(line)}" for line in unsandboxed_reach(settings))
    elif not ok:
        result.problems.append(
            Problem(
                "[agent] sandbox",
                f"{message}; agent runs would stop with an error rather than run unconfined",
                "install bubblewrap where it can create namespaces, or set [agent] allow_unsandboxed = true to "
                "accept an agent that can read the state folder, the configuration and the network",
            )
        )
    if settings.agent.pass_env:
        shown = ", ".join(f"{n} ({'set' if secrets.get(n) else 'not set'})" for n in settings.agent.pass_env)
        result.lines.append(escape(f"agent environment: pass_env hands the agent {shown}"))
    return result


def start_up(settings: Settings, engine: Any) -> Findings:
    """What `run` checks before it acts, on the engine's own trackers and code hosts."""
    result = Findings()
    for part in (
        # Unreadable tickets are not listed here: the first poll reads the board anyway and logs each one.
        trackers(settings, getattr(engine, "trackers", None), skipped_tickets=False),
        repos(settings, getattr(engine, "hosts", None)),
        agent(settings),
        sandbox(settings),
    ):
        result.problems.extend(part.problems)
        result.notices.extend(part.notices)
    return result

