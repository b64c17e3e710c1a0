"""Make a fresh workspace ready for the agent and the tests: the repository's set-up commands, and its teardown.

Why: a fresh clone rarely runs its tests as it is: dependencies must be installed (uv sync, pip install, npm ci).
The agent runs with no network for its tools and the daemon's own test run has none either, so whatever the tests
need is fetched here, first, with the network, in the same sandbox (workspace writable, the rest read-only), so it
lands in the workspace (a .venv, node_modules, a --target folder) and nowhere else on the machine.

Order: `[[repos]] setup_command` (the operator's), then `.tracker-bridge/setup.sh` when the repository has one (the
repository's own choice, run with `sh`). They share one budget, `setup_timeout` seconds. A failing or timed-out
step fails the run before the agent starts, so no agent token is spent on a workspace that cannot test.

What set-up creates is kept out of the agent's commit: every untracked path it leaves is added to the clone's
`.git/info/exclude`, so a `.venv` or `node_modules` never reaches the pull request.

`teardown_command` runs in the workspace before the daemon removes it (a new run of the same ticket starts from a
fresh clone), for what set-up started outside the workspace's files.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from tracker_bridge.agents.sandbox import Sandbox
from tracker_bridge.config import RepoConfig
from tracker_bridge.gitutil import git

REPO_SETUP_SCRIPT = ".tracker-bridge/setup.sh"
OUTPUT_TAIL_CHARS = 4000  # kept in the trace and the report
REASON_TAIL_LINES = 15  # shown on the ticket


@dataclass
class SetupStep:
    name: str  # "setup_command" or the script's path
    command: str
    exit_code: int | None = None  # None: killed at the timeout
    seconds: float = 0.0


@dataclass
class SetupResult:
    ok: bool
    steps: list[SetupStep] = field(default_factory=list)
    output: str = ""  # the tail of everything the steps printed
    reason: str = ""  # for the ticket when not ok: which step, how it ended, its output's last lines
    made: list[str] = field(default_factory=list)  # untracked paths set-up created: never part of the change

    @property
    def ran(self) -> bool:
        return bool(self.steps)


def setup_steps(workspace: Path, repo: RepoConfig) -> list[SetupStep]:
    """The configured command first, then the repository's script when the clone has one."""
    steps: list[SetupStep] = []
    if repo.setup_command.strip():
        steps.append(SetupStep("setup_command", repo.setup_command))
    if (workspace / REPO_SETUP_SCRIPT).is_file():
        steps.append(SetupStep(REPO_SETUP_SCRIPT, f"sh {REPO_SETUP_SCRIPT}"))
    return steps


def _tail_lines(text: str, n: int) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def run_setup(workspace: Path, repo: RepoConfig, sandbox: Sandbox) -> SetupResult:
    """Run the set-up steps in `workspace`, sandboxed, with the network, within `repo.setup_timeout` seconds."""
    steps = setup_steps(workspace, repo)
    if not steps:
        return SetupResult(ok=True)
    deadline = time.monotonic() + repo.setup_timeout
    outputs: list[str] = []
    for step in steps:
        started = time.monotonic()
        left = deadline - started
        if left <= 0:
            step.exit_code = None
            output = ""
        else:
            step.exit_code, output = sandbox.run(step.command, workspace=workspace, timeout=left, network=True)
        step.seconds = round(time.monotonic() - started, 2)
        outputs.append(f"$ {step.command}\n{output}")
        if step.exit_code != 0:
            how = (
                f"did not finish within setup_timeout = {repo.setup_timeout:g} s"
                if step.exit_code is None
                else f"exited with status {step.exit_code}"
            )
            tail = _tail_lines(output, REASON_TAIL_LINES)
            reason = f"set-up failed before the agent started: {step.name} `{step.command}` {how}"
            if tail:
                reason += f"; its output ends with:\n{tail}"
            return SetupResult(False, steps, "\n".join(outputs)[-OUTPUT_TAIL_CHARS:], reason)
    made = exclude_untracked(workspace)
    return SetupResult(True, steps, "\n".join(outputs)[-OUTPUT_TAIL_CHARS:], made=made)


def exclude_untracked(workspace: Path) -> list[str]:
    """Add every untracked path of the clone to .git/info/exclude (what set-up made is not the agent's work)."""
    listing = git(workspace, "ls-files", "--others", "--exclude-standard", "--directory", "--no-empty-directory")
    paths = [p for p in listing.splitlines() if p.strip()]
    exclude_paths(workspace, paths)
    return paths


def exclude_paths(workspace: Path, paths: list[str]) -> None:
    """Append `paths` (relative to the clone) to its .git/info/exclude."""
    if paths:
        exclude = workspace / ".git" / "info" / "exclude"
        exclude.parent.mkdir(parents=True, exist_ok=True)
        lines = "".join(f"/{p}\n" for p in paths)
        with exclude.open("a", encoding="utf-8") as fh:
            fh.write("# made by tracker-bridge's set-up, not part of the change\n" + lines)


def run_teardown(workspace: Path, repo: RepoConfig, sandbox: Sandbox) -> tuple[int | None, str] | None:
    """`teardown_command` in the workspace, sandboxed, with the network; None when there is none to run."""
    if not repo.teardown_command.strip() or not workspace.is_dir():
        return None
    return sandbox.run(repo.teardown_command, workspace=workspace, timeout=repo.setup_timeout, network=True)


def remove_workspace(workspace: Path, repo: RepoConfig, sandbox: Sandbox) -> tuple[int | None, str] | None:
    """Run the teardown (when configured and the workspace exists), then delete the workspace; the teardown's
    (exit code, output) or None. A failing teardown does not keep the workspace: the next run needs a fresh one."""
    result = run_teardown(workspace, repo, sandbox)
    if workspace.exists():
        shutil.rmtree(workspace)
    return result
