"""One agent run from start to a commit: fresh workspace, prompt, agent, guards, the daemon's own test run, commit.

The engine calls `execute_run` in a worker thread and publishes (push, pull request) only a SUCCEEDED report.
Nothing here talks to a tracker or pushes: a run that is repeated after a crash repeats no remote side effect.

Two folders per run: `plan.workspace` is the daemon's own clone (what the engine pushes), which the agent never
sees; the agent works in a separate clone next to it (`handover.agent_workspace`). After the agent, its work tree is
copied into the daemon's clone as plain content and committed there (`handover`): nothing the agent wrote in its
`.git` (hooks, fsmonitor, filters, includes) ever runs outside the sandbox. Whatever the outcome, the agent's work
is committed on the run's branch in the daemon's clone, so a person can look at partial work; only a SUCCEEDED
report (with `commit_sha`) is proposed as a pull request.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from threading import Event

from tracker_bridge.agents.caps import CapMeter
from tracker_bridge.agents.handover import agent_workspace, import_work_tree, make_agent_workspace
from tracker_bridge.agents.prompt import build_prompt
from tracker_bridge.agents.sandbox import Sandbox, SandboxError
from tracker_bridge.agents.setup import exclude_paths, remove_workspace, run_setup
from tracker_bridge.agents.trace import TraceWriter
from tracker_bridge.config import RepoConfig, Settings
from tracker_bridge.conflicts import start_merge
from tracker_bridge.gitutil import git
from tracker_bridge.lifecycle import CONFLICT_FEEDBACK, asks_merge, listed
from tracker_bridge.models import RunOutcome, RunUsage, Ticket
from tracker_bridge.protocols import AgentBackend, AgentEvent, AgentRequest, AgentResult, CodeHost

TEST_OUTPUT_TAIL = 3000


@dataclass
class RunReport:
    outcome: RunOutcome
    usage: RunUsage
    summary: str = ""
    reason: str = ""
    commit_sha: str | None = None
    test_output: str = ""


@dataclass
class RunPlan:
    ticket: Ticket
    repo: RepoConfig
    branch: str
    workspace: Path
    trace_path: Path
    feedback: list[str]
    daily_budget_left_usd: float | None = None
    approved_plan: str = ""  # the plan a person approved (issue 15): the agent is asked to carry it out
    cancel: Event = field(default_factory=Event)  # set by the engine to stop the run (see AgentRequest.cancel)


def prepare_workspace(host: CodeHost, workspace: Path, branch: str) -> str:
    """A fresh clone on `branch` (continuing the host's branch when it exists); returns the starting commit."""
    if workspace.exists():
        shutil.rmtree(workspace)
    workspace.parent.mkdir(parents=True, exist_ok=True)
    host.clone(workspace, branch=branch)
    if git(workspace, "rev-parse", "--abbrev-ref", "HEAD") != branch:
        git(workspace, "checkout", "-q", "-B", branch)
    return git(workspace, "rev-parse", "HEAD")


def run_tests(workspace: Path, command: str, timeout: float, sandbox: Sandbox) -> tuple[bool, str]:
    """Run the repository's test command the way the daemon trusts: its own process, its own verdict, sandboxed."""
    if not command.strip():
        return True, "(no test command configured)"
    code, output = sandbox.run(command, workspace=workspace, timeout=timeout, network=False)
    if code is None:
        return False, f"the test command did not finish within {timeout:g} s\n{output[-TEST_OUTPUT_TAIL:]}"
    return code == 0, output[-TEST_OUTPUT_TAIL:]


def commit_all(workspace: Path, message: str) -> None:
    """Commit everything in `workspace`: only ever the daemon's own clone, never a folder the agent wrote in."""
    git(workspace, "add", "-A")
    if git(workspace, "status", "--porcelain"):
        git(workspace, "commit", "-q", "--no-verify", "-m", message)


# --- guards on the result -----------------------------------------------------------------------------------------


@cache
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Glob with `**` (any number of path segments), `*` and `?` (within one segment), anchored at the repo root."""
    out, i = "", 0
    pattern = pattern.strip().lstrip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    if pattern.endswith("/"):
        out += ".*"  # a folder: everything under it
    return re.compile(out + r"\Z")


def forbidden_changes(paths: Sequence[str], patterns: Sequence[str]) -> list[tuple[str, str]]:
    """(path, pattern) for every changed path a forbidden pattern matches."""
    return [(p, pat) for p in paths for pat in patterns if _glob_regex(pat).match(p)]


def changed_paths(workspace: Path, since: str) -> list[str]:
    # --no-renames: a file moved out of a forbidden folder changes that folder too.
    out = git(workspace, "diff", "--name-only", "--no-renames", since, "HEAD")
    return [line for line in out.splitlines() if line]


def diff_lines(workspace: Path, since: str) -> int:
    """Lines added plus removed since `since` (a binary file counts as one line)."""
    total = 0
    for line in git(workspace, "diff", "--numstat", "--no-renames", since, "HEAD").splitlines():
        added, removed, _ = line.split("\t", 2)
        total += (int(added) + int(removed)) if added != "-" else 1
    return total


def check_guards(workspace: Path, since: str, settings: Settings) -> str | None:
    """Why the result may not be proposed (forbidden path, diff too large), or None."""
    hits = forbidden_changes(changed_paths(workspace, since), settings.agent.forbidden_paths)
    if hits:
        listed = ", ".join(f"{p} (matches {pat!r})" for p, pat in hits[:5])
        return f"the agent changed a path it may not change: {listed}; see [agent] forbidden_paths"
    size = diff_lines(workspace, since)
    if size > settings.agent.max_diff_lines:
        limit = settings.agent.max_diff_lines
        return f"the diff is too large: {size} lines changed, more than max_diff_lines = {limit}"
    return None


def unresolved(workspace: Path, conflicted: Sequence[str]) -> str | None:
    """Why a conflict iteration's result may not be proposed: a file still holding git's conflict markers."""
    left = [f for f in conflicted if (workspace / f).is_file() and _MARKERS.search((workspace / f).read_bytes())]
    if left:
        return f"conflict markers are left in {listed(left)}: the merge conflict was not resolved"
    return None


_MARKERS = re.compile(rb"^(<{7} |>{7} )", re.MULTILINE)


# --- the run ------------------------------------------------------------------------------------------------------


def _sum(a: RunUsage, b: RunUsage) -> RunUsage:
    return RunUsage(
        turns=a.turns + b.turns,
        input_tokens=a.input_tokens + b.input_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        cost_usd=round(a.cost_usd + b.cost_usd, 6),
    )


def _remaining(request: AgentRequest, used: RunUsage, elapsed: float) -> AgentRequest | str:
    """The request for one more agent pass within what the caps still allow, or why there is no room left."""
    meter = CapMeter.for_request(request)
    meter.set(used)
    meter.started -= elapsed
    reason = meter.before_turn()
    if reason:
        return reason
    return replace(
        request,
        max_turns=request.max_turns - used.turns,
        max_cost_usd=request.max_cost_usd - used.cost_usd,
        timeout_s=request.timeout_s - elapsed,
        max_tokens=None if request.max_tokens is None else request.max_tokens - used.tokens,
        daily_budget_left_usd=(
            None if request.daily_budget_left_usd is None else request.daily_budget_left_usd - used.cost_usd
        ),
    )


def agent_request(plan: RunPlan, work: Path, prompt: str, settings: Settings, *, max_cost_usd: float) -> AgentRequest:
    """What the backend is asked to do for `plan` in the agent's clone `work`: the `[agent]` limits, the run's own
    cost cap, and the plan's cancel switch (the engine's stop) for runs and plan runs alike."""
    agent = settings.agent
    return AgentRequest(
        ticket=plan.ticket,
        workspace=work,
        prompt=prompt,
        branch=plan.branch,
        test_command=plan.repo.test_command,
        trace_path=plan.trace_path,
        max_turns=agent.max_turns,
        max_cost_usd=max_cost_usd,
        timeout_s=agent.timeout,
        max_tokens=agent.max_tokens,
        daily_budget_left_usd=plan.daily_budget_left_usd,
        cancel=plan.cancel,
        stall_timeout_s=agent.stall_timeout,
    )


def execute_run(
    plan: RunPlan,
    *,
    host: CodeHost,
    backend: AgentBackend,
    settings: Settings,
    secrets: list[str],
    on_event: Callable[[AgentEvent], None],
) -> RunReport:
    """Run the agent on one ticket. `secrets` are the daemon's secret variable names (kept out of every command)."""
    trace = TraceWriter(plan.trace_path)
    agent = settings.agent
    try:
        sandbox = Sandbox.for_settings(settings)
    except SandboxError as exc:
        trace.write("result", outcome=RunOutcome.ERROR.value, reason=str(exc))
        return RunReport(RunOutcome.ERROR, RunUsage(), reason=str(exc))
    work = agent_workspace(plan.workspace)
    # The previous run's: teardown_command where set-up ran (the agent's clone), then both clones go.
    teardown = remove_workspace(work, plan.repo, sandbox)
    if teardown is not None:
        trace.write("teardown", exit_code=teardown[0], output=teardown[1][-TEST_OUTPUT_TAIL:])
    start_sha = prepare_workspace(host, plan.workspace, plan.branch)
    make_agent_workspace(plan.workspace, work, plan.branch)
    trace.write("workspace", path=str(work), branch=plan.branch, start=start_sha, publish_from=str(plan.workspace))
    guard_since = start_sha
    feedback = list(plan.feedback)
    conflicted: list[str] = []
    if asks_merge(plan.feedback):
        # A conflict iteration: the base is merged into the branch in the daemon's clone (hardened git, never in
        # the agent's folder); the merged files, conflict markers included, become the agent's work tree, and the
        # merge stays in progress there so that committing the agent's result makes the merge commit.
        base = plan.repo.base_branch
        guard_since, conflicted = start_merge(plan.workspace, base)  # guards judge the change against the new base
        import_work_tree(plan.workspace, work)
        trace.write("merge", base=base, base_sha=guard_since, conflicts=conflicted)
        feedback.append(
            f"{CONFLICT_FEEDBACK}: after merging `{base}`, these files have conflict markers in your workspace: "
            f"{listed(conflicted)}" if conflicted else f"{CONFLICT_FEEDBACK}: `{base}` merged without conflicts "
            "this time; check that the merged code still works"
        )
    trace.write("sandbox", mode=sandbox.mode, message=sandbox.message, secrets_withheld=sorted(secrets))
    # In the agent's clone, where the agent and the tests run; before the agent: a failure spends no agent token.
    setup = run_setup(work, plan.repo, sandbox)
    exclude_paths(plan.workspace, setup.made)  # what set-up made is copied over with the work tree, never committed
    if setup.ran:
        trace.write("setup", ok=setup.ok, steps=[vars(s) for s in setup.steps], output=setup.output)
    if not setup.ok:
        trace.write("result", outcome=RunOutcome.ERROR.value, reason=setup.reason)
        return RunReport(RunOutcome.ERROR, RunUsage(), reason=setup.reason, test_output=setup.output)
    template = None
    if agent.prompt_template:
        template = settings.path(agent.prompt_template).read_text(encoding="utf-8")
    prompt = build_prompt(
        plan.ticket, work, plan.repo.test_command, template=template, feedback=feedback, plan=plan.approved_plan
    )
    request = agent_request(plan, work, prompt, settings, max_cost_usd=agent.max_cost_usd)
    title = f"{plan.ticket.ref}: {plan.ticket.title}"
    clock = CapMeter.for_request(request)  # only its clock: the wall time a retry still has
    usage = RunUsage()
    summary = ""

    def finish(report: RunReport) -> RunReport:
        trace.write("result", outcome=report.outcome.value, reason=report.reason, usage=report.usage.model_dump(),
                    commit=report.commit_sha)  # fmt: skip
        return report

    def report_progress(event: AgentEvent) -> None:
        # a later pass starts counting from zero: report the run's totals
        if event.usage is not None and usage.turns:
            event = replace(event, usage=_sum(usage, event.usage))
        on_event(event)

    def take_over(message: str) -> None:
        """The agent's work tree, as content, committed in the daemon's clone."""
        skipped = import_work_tree(work, plan.workspace)
        if skipped:
            trace.write("handover", skipped=skipped[:50])
        commit_all(plan.workspace, message)

    current: AgentRequest = request
    for attempt in range(agent.test_retries + 1):
        if plan.cancel.is_set():  # stopped while the workspace was prepared: the agent never starts
            return finish(RunReport(RunOutcome.CANCELLED, usage, summary, "the run was cancelled"))
        result: AgentResult = backend.run(current, report_progress)
        usage = _sum(usage, result.usage)
        summary = result.summary or summary
        trace.write("agent_result", attempt=attempt + 1, outcome=result.outcome.value, reason=result.reason,
                    usage=usage.model_dump())  # fmt: skip
        if result.outcome is not RunOutcome.SUCCEEDED:
            take_over(f"{title} (partial work, not proposed: {result.outcome.value})")
            return finish(RunReport(result.outcome, usage, summary, result.reason))
        take_over(title if attempt == 0 else f"{title} (after failing tests)")
        if git(plan.workspace, "rev-parse", "HEAD") == start_sha:
            nothing = "the agent finished without changing anything"
            return finish(RunReport(RunOutcome.NO_CHANGES, usage, summary, nothing))
        refusal = check_guards(plan.workspace, guard_since, settings) or unresolved(plan.workspace, conflicted)
        if refusal:
            trace.write("guard", refused=True, reason=refusal)
            return finish(RunReport(RunOutcome.REFUSED, usage, summary, refusal))
        on_event(AgentEvent(kind="tests", message=f"running `{plan.repo.test_command}`", usage=usage))
        # the daemon's own verdict is not the agent's time: the test run gets the whole `timeout` for itself
        passed, output = run_tests(work, plan.repo.test_command, agent.timeout, sandbox)
        trace.write("tests", attempt=attempt + 1, command=plan.repo.test_command, passed=passed, output=output)
        if passed:
            head = git(plan.workspace, "rev-parse", "HEAD")
            return finish(RunReport(RunOutcome.SUCCEEDED, usage, summary, commit_sha=head, test_output=output))
        failed = RunReport(
            RunOutcome.TESTS_FAILED,
            usage,
            summary,
            f"the test command `{plan.repo.test_command}` failed after the agent's change",
            test_output=output,
        )
        if attempt == agent.test_retries:
            return finish(failed)
        nxt = _remaining(request, usage, clock.elapsed)
        if isinstance(nxt, str):
            failed.reason += f"; no retry: {nxt}"
            return finish(failed)
        retry_prompt = build_prompt(
            plan.ticket,
            work,
            plan.repo.test_command,
            template=template,
            plan=plan.approved_plan,
            feedback=[*feedback, f"The test command `{plan.repo.test_command}` failed after your change:\n"
                      f"{output[-TEST_OUTPUT_TAIL:]}"],
        )  # fmt: skip
        current = replace(nxt, prompt=retry_prompt)
        trace.write("retry", attempt=attempt + 2, reason="tests failed; the agent gets the failing output")
    raise AssertionError("unreachable")  # pragma: no cover
