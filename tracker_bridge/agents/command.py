"""The `command` backend: any CLI agent, started through the shell in the workspace, inside the sandbox.

Contract (PRODUCT.md): the prompt is on standard input and in the file named by $TRACKER_BRIDGE_PROMPT_FILE, the
ticket reference in $TRACKER_BRIDGE_TICKET; exit status 0 means the agent finished. A CLI agent reports no usage we
can read, so its caps are the wall time (and a daily budget already spent stops it before it starts).
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from tracker_bridge import secrets
from tracker_bridge.agents import process
from tracker_bridge.agents.caps import CapMeter
from tracker_bridge.agents.sandbox import Sandbox
from tracker_bridge.agents.trace import TraceWriter
from tracker_bridge.config import Settings
from tracker_bridge.models import RunOutcome, RunUsage
from tracker_bridge.protocols import AgentEvent, AgentRequest, AgentResult

OUTPUT_TAIL = 4000


def secret_env_names(settings: Settings) -> list[str]:
    """Names of every environment variable that holds a secret the agent's commands must not see."""
    names = {t.token_env for t in settings.trackers if t.token_env}
    names |= {r.token_env for r in settings.repos if r.token_env}
    names |= {settings.agent.api_key_env, settings.scoring.api_key_env, settings.web.webhook_secret_env}
    names.add(settings.web.api_token_env)
    return sorted(n for n in names if n)


def agent_credentials(settings: Settings) -> dict[str, str]:
    """What an agent CLI needs to reach its model: the Anthropic key and base URL, and the variables `[agent]
    pass_env` names (another provider's key, Bedrock or Vertex settings); never a tracker or host token (the
    configuration refuses a token_env in pass_env)."""
    env: dict[str, str] = {}
    withheld = {t.token_env for t in settings.trackers} | {r.token_env for r in settings.repos}
    for name in settings.agent.pass_env:
        value = secrets.get(name)
        if value is not None and name not in withheld:
            env[name] = value
    key = secrets.get(settings.agent.api_key_env)
    if key:
        env["ANTHROPIC_API_KEY"] = key
    if settings.agent.base_url:
        env["ANTHROPIC_BASE_URL"] = settings.agent.base_url
    return env


def run_home(request: AgentRequest) -> Path:
    """A throwaway, writable home for the agent process, next to the run's trace."""
    return request.trace_path.with_name(request.trace_path.stem + ".home")


def daily_budget_spent(request: AgentRequest) -> str | None:
    left = request.daily_budget_left_usd
    if left is not None and left <= 0:
        return f"DAILY BUDGET reached: nothing of today's daily_budget_usd is left (${left:.2f}); the run did not start"
    return None


def wait_for(
    proc: subprocess.Popen[bytes], request: AgentRequest, meter: CapMeter, last_output: list[float]
) -> tuple[RunOutcome, str] | None:
    """Wait for the agent's process; None when it exited by itself, else why it must be stopped now: the run was
    cancelled, it hit its wall time, or it printed nothing for `stall_timeout_s` (checked a few times a second)."""
    while True:
        try:
            proc.wait(timeout=0.2)
            return None
        except subprocess.TimeoutExpired:
            pass
        if request.cancel.is_set():
            return RunOutcome.CANCELLED, "the run was cancelled"
        if meter.elapsed >= request.timeout_s:
            return RunOutcome.CAP_REACHED, meter.wall_time_reason()
        stall = request.stall_timeout_s
        if stall is not None and meter.elapsed - last_output[0] >= stall:
            return RunOutcome.STALLED, f"the agent printed nothing for {stall:g} s and was stopped"


class CommandBackend:
    name = "command"

    def __init__(self, command: str, sandbox: Sandbox, env: dict[str, str] | None = None) -> None:
        self.command = command
        self.sandbox = sandbox
        self.env = env or {}

    @classmethod
    def from_settings(cls, settings: Settings) -> CommandBackend:
        return cls(settings.agent.command or "", Sandbox.for_settings(settings), agent_credentials(settings))

    def run(self, request: AgentRequest, on_event: Callable[[AgentEvent], None]) -> AgentResult:
        trace = TraceWriter(request.trace_path)
        spent = daily_budget_spent(request)
        if spent:
            trace.write("cap_reached", reason=spent)
            return AgentResult(outcome=RunOutcome.CAP_REACHED, usage=RunUsage(), reason=spent)
        meter = CapMeter.for_request(request)
        home = run_home(request)
        home.mkdir(parents=True, exist_ok=True)
        prompt_file = home / "prompt.md"  # in the run's home: visible inside the sandbox
        prompt_file.write_text(request.prompt, encoding="utf-8")
        env = {
            **self.env,
            "TRACKER_BRIDGE_PROMPT_FILE": str(prompt_file),
            "TRACKER_BRIDGE_TICKET": request.ticket.ref,
            **request.extra_env,
        }
        trace.write("agent_start", backend=self.name, command=self.command, sandbox=self.sandbox.mode)
        on_event(AgentEvent(kind="start", message=f"running `{self.command}`"))
        # The CLI agent reaches its model over the network; its files are confined to the workspace and its home.
        proc = self.sandbox.start(self.command, workspace=request.workspace, home=home, network=True, extra_env=env)
        assert proc.stdin is not None and proc.stdout is not None
        stdin, stdout = proc.stdin, proc.stdout

        def feed() -> None:
            try:
                stdin.write(request.prompt.encode())
                stdin.close()
            except BrokenPipeError:
                pass  # the agent need not read its prompt from stdin

        chunks: list[bytes] = []
        last_output = [meter.elapsed]  # when the agent last printed something: silence that lasts is a stall

        def read() -> None:
            for chunk in iter(lambda: os.read(stdout.fileno(), 4096), b""):
                chunks.append(chunk)
                last_output[0] = meter.elapsed

        reader = threading.Thread(target=read, daemon=True)
        threading.Thread(target=feed, daemon=True).start()
        reader.start()
        stopped = wait_for(proc, request, meter, last_output)
        if stopped is not None:
            outcome, reason = stopped
            process.kill_group(proc)  # the whole process group: the agent and everything it started
            reader.join(timeout=5)
            output = b"".join(chunks).decode(errors="replace")[-OUTPUT_TAIL:]
            trace.write(outcome.value, reason=reason, output=output)
            on_event(AgentEvent(kind=outcome.value, message=reason))
            return AgentResult(outcome=outcome, usage=RunUsage(turns=1), reason=reason)
        code = proc.returncode
        # nothing the agent started may go on changing the workspace after it returned (its work is taken now)
        process.kill_group(proc)
        reader.join(timeout=5)
        output = b"".join(chunks).decode(errors="replace")[-OUTPUT_TAIL:]
        trace.write("agent_exit", code=code, seconds=round(meter.elapsed, 3), output=output)
        usage = RunUsage(turns=1)
        if code != 0:
            return AgentResult(
                outcome=RunOutcome.AGENT_FAILED,
                usage=usage,
                reason=f"the agent command exited with status {code}",
                summary=output.strip()[-500:],
            )
        return AgentResult(outcome=RunOutcome.SUCCEEDED, usage=usage, summary=output.strip()[-500:])
