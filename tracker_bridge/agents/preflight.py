"""Is the agent able to run at all? The checks `doctor` and the daemon's start-up share.

Why run the CLI inside the sandbox rather than look it up on PATH: the sandbox mounts a private /tmp and rebuilds
the environment, so a Claude Code CLI that `shutil.which` finds (say, unpacked under /tmp) can still be missing
where the agent runs (`bwrap: execvp ...: No such file or directory`), and every run would fail after the ticket
was already taken. Running `<claude_path> --version` the way a run starts it finds that out before.

Models: a model past (or near) its end of life is a warning with the fix, not a refusal to start, because an
operator may have a grace arrangement; the table and its source are in tracker_bridge/claude_models.py.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from tracker_bridge import claude_models
from tracker_bridge.config import Settings
from tracker_bridge.protocols import Problem

CLI_CHECK_TIMEOUT_S = 60.0


@dataclass
class AgentCheck:
    """`problems` stop `doctor` (exit 2) and the daemon; `warnings` are printed and the daemon goes on."""

    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def model_warnings(settings: Settings, today: date | None = None) -> list[str]:
    """End-of-life warnings for the models this configuration uses (the agent's, and the scoring judge's)."""
    day = today or datetime.now(UTC).date()
    found: list[str] = []
    if settings.agent.backend in ("claude-code", "anthropic"):
        warning = claude_models.model_warning(settings.agent.model, day, key="[agent] model")
        if warning:
            found.append(warning)
    if settings.scoring.llm:
        warning = claude_models.model_warning(settings.scoring.llm_model, day, key="[scoring] llm_model")
        if warning:
            found.append(warning)
    return found


def claude_cli_problem(settings: Settings) -> Problem | None:
    """None when `[agent] claude_path` starts inside the sandbox the runs use; else what is wrong and the fix."""
    from tracker_bridge.agents.sandbox import Sandbox, SandboxError

    path = settings.agent.claude_path
    key = f"[agent] claude_path = {path!r}"
    install = "npm install -g @anthropic-ai/claude-code (it lands in /usr/local/bin or /usr/bin)"
    if shutil.which(path) is None:
        return Problem(key, "the Claude Code CLI is not on PATH", f"{install}, or set [agent] claude_path")
    try:
        sandbox = Sandbox.for_settings(settings)
    except SandboxError as exc:
        return Problem("[agent] sandbox", str(exc), 'install bubblewrap, or set [agent] sandbox = "auto"')
    with tempfile.TemporaryDirectory(prefix="tb-cli-check-") as scratch:
        workspace = Path(scratch)
        code, output = sandbox.run([path, "--version"], workspace=workspace, timeout=CLI_CHECK_TIMEOUT_S)
    if code == 0:
        return None
    tail = " ".join(output.strip().splitlines()[-3:]) or f"exit status {code}"
    where = "inside the sandbox (bubblewrap: read-only root, private /tmp)" if sandbox.isolated else "in a clean env"
    return Problem(
        key,
        f"the Claude Code CLI cannot run {where}: {tail}",
        f"{install}, or install it outside /tmp and point claude_path at it (the sandbox mounts its own /tmp)",
    )


def check_agent(settings: Settings, today: date | None = None) -> AgentCheck:
    """Everything about the agent backend `doctor` and start-up report: the CLI runs sandboxed, models are current."""
    check = AgentCheck(warnings=model_warnings(settings, today))
    if settings.agent.backend == "claude-code":
        problem = claude_cli_problem(settings)
        if problem is not None:
            check.problems.append(problem)
    return check
