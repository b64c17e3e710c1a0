"""The `claude-code` backend: the Claude Code CLI, headless, its stream-json output read as the run goes.

`claude -p --output-format stream-json --verbose` prints one JSON object per line: `system/init`, then `assistant`
messages (text and tool_use blocks, with usage), `user` messages (tool results), and a final `result` with the
turn count, usage, `total_cost_usd` and any permission denials. Each line becomes a trace record; progress goes to
`on_event` at most every few seconds. The CLI's own `--max-turns` and `--max-budget-usd` are set, and the daemon
checks every cap itself too and kills the whole process group when one is reached.

The CLI runs in the sandbox with a throwaway home and a clean environment: the Anthropic key (the agent's own
credential) and nothing else of the daemon's; it needs the network to reach the API, so its tools have it too.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
from collections.abc import Callable
from typing import Any

from tracker_bridge.agents import process
from tracker_bridge.agents.caps import CapMeter, Throttle, cost_usd, price_of
from tracker_bridge.agents.command import agent_credentials, daily_budget_spent, run_home
from tracker_bridge.agents.sandbox import Sandbox
from tracker_bridge.agents.trace import TraceWriter
from tracker_bridge.config import ModelPrice, Settings
from tracker_bridge.models import RunOutcome, RunUsage
from tracker_bridge.protocols import AgentEvent, AgentRequest, AgentResult

TRACE_CLIP = 4000
POLL_S = 0.2


def _clip(value: Any, limit: int = TRACE_CLIP) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + f"… ({len(value) - limit} more characters)"
    return value


def _result_text(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
    return str(content or "")


class StreamState:
    """What the stream-json lines have told so far: turns, usage, tool calls, the final result."""

    def __init__(self, price: ModelPrice | None) -> None:
        self.price = price
        self.messages: dict[str, dict[str, int]] = {}  # message id -> its usage, counted once
        self.tool_calls = 0
        self.last_text = ""
        self.result: dict[str, Any] | None = None
        self.model = ""

    def usage(self) -> RunUsage:
        """The result's figures when it came; until then an estimate from the messages seen (priced locally)."""
        if self.result is not None:
            u = self.result.get("usage") or {}
            inp = int(u.get("input_tokens", 0)) + int(u.get("cache_creation_input_tokens", 0))
            inp += int(u.get("cache_read_input_tokens", 0))
            cost = self.result.get("total_cost_usd")
            return RunUsage(
                turns=int(self.result.get("num_turns") or len(self.messages)),
                input_tokens=inp,
                output_tokens=int(u.get("output_tokens", 0)),
                cost_usd=float(cost) if cost is not None else self._cost(),
            )
        return RunUsage(
            turns=len(self.messages),
            input_tokens=sum(m["input"] + m["cache_write"] + m["cache_read"] for m in self.messages.values()),
            output_tokens=sum(m["output"] for m in self.messages.values()),
            cost_usd=round(self._cost(), 6),
        )

    def _cost(self) -> float:
        return sum(
            cost_usd(
                self.price,
                input_tokens=m["input"],
                output_tokens=m["output"],
                cache_write_tokens=m["cache_write"],
                cache_read_tokens=m["cache_read"],
            )
            for m in self.messages.values()
        )

    def feed(self, obj: dict[str, Any], trace: TraceWriter) -> AgentEvent | None:
        """Record one stream line; returns the progress event it is worth, if any."""
        kind = obj.get("type")
        if kind == "system" and obj.get("subtype") == "init":
            self.model = str(obj.get("model", ""))
            trace.write("agent_init", model=self.model, tools=obj.get("tools"), cwd=obj.get("cwd"),
                        permission_mode=obj.get("permissionMode"), session=obj.get("session_id"))  # fmt: skip
            return None
        if kind == "assistant":
            msg = obj.get("message") or {}
            mid = str(msg.get("id") or len(self.messages))
            u = msg.get("usage") or {}
            seen = self.messages.setdefault(mid, {"input": 0, "output": 0, "cache_write": 0, "cache_read": 0})
            new_turn = not any(seen.values())
            seen["input"] = max(seen["input"], int(u.get("input_tokens") or 0))
            seen["output"] = max(seen["output"], int(u.get("output_tokens") or 0))
            seen["cache_write"] = max(seen["cache_write"], int(u.get("cache_creation_input_tokens") or 0))
            seen["cache_read"] = max(seen["cache_read"], int(u.get("cache_read_input_tokens") or 0))
            if new_turn:
                usage = self.usage().model_dump()
                trace.write("turn", turn=len(self.messages), input_tokens=seen["input"], usage=usage)
            event: AgentEvent | None = None
            for block in msg.get("content") or []:
                if block.get("type") == "text" and block.get("text"):
                    self.last_text = str(block["text"])
                    trace.write("text", text=_clip(self.last_text))
                elif block.get("type") == "tool_use":
                    self.tool_calls += 1
                    trace.write("tool_call", tool=block.get("name"), id=block.get("id"), input=block.get("input"))
                    event = AgentEvent(kind="tool_call", message=f"{block.get('name')}", usage=self.usage(),
                                       data={"tool": block.get("name"), "tool_calls": self.tool_calls})  # fmt: skip
            return event or AgentEvent(kind="turn", usage=self.usage())
        if kind == "user":
            for block in (obj.get("message") or {}).get("content") or []:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    trace.write("tool_result", id=block.get("tool_use_id"), is_error=bool(block.get("is_error")),
                                output=_clip(_result_text(block.get("content"))))  # fmt: skip
            return None
        if kind == "result":
            self.result = obj
            for denial in obj.get("permission_denials") or []:
                trace.write("permission_denied", tool=denial.get("tool_name"), input=denial.get("tool_input"))
            trace.write("agent_final", subtype=obj.get("subtype"), is_error=obj.get("is_error"),
                        result=_clip(str(obj.get("result") or "")), num_turns=obj.get("num_turns"),
                        total_cost_usd=obj.get("total_cost_usd"), usage=self.usage().model_dump(),
                        permission_denials=len(obj.get("permission_denials") or []))  # fmt: skip
            return None
        return None


class ClaudeCodeBackend:
    name = "claude-code"

    def __init__(
        self,
        *,
        claude_path: str,
        model: str,
        allowed_tools: list[str],
        prices: dict[str, ModelPrice],
        sandbox: Sandbox,
        env: dict[str, str],
        event_interval: float = 5.0,
    ) -> None:
        self.claude_path = claude_path
        self.model = model
        self.allowed_tools = allowed_tools
        self.prices = prices
        self.sandbox = sandbox
        self.env = env
        self.event_interval = event_interval

    @classmethod
    def from_settings(cls, settings: Settings) -> ClaudeCodeBackend:
        a = settings.agent
        return cls(
            claude_path=a.claude_path,
            model=a.model,
            allowed_tools=list(a.allowed_tools),
            prices=a.prices,
            sandbox=Sandbox.for_settings(settings),
            env=agent_credentials(settings),
        )

    def argv(self, request: AgentRequest, dollar_limit: float) -> list[str]:
        argv = [self.claude_path, "-p", "--output-format", "stream-json", "--verbose", "--model", self.model,
                "--max-turns", str(request.max_turns), "--max-budget-usd", f"{max(dollar_limit, 0.0001):.4f}",
                "--permission-mode", "acceptEdits", "--strict-mcp-config", "--no-session-persistence"]  # fmt: skip
        if self.allowed_tools:
            argv += ["--allowedTools", ",".join(self.allowed_tools)]
        return argv

    def environment(self, request: AgentRequest) -> dict[str, str]:
        env = {
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
            **self.env,
            **request.extra_env,
        }
        if os.geteuid() == 0:
            env.setdefault("IS_SANDBOX", "1")  # the CLI refuses to run as root otherwise
        return env

    def run(self, request: AgentRequest, on_event: Callable[[AgentEvent], None]) -> AgentResult:
        trace = TraceWriter(request.trace_path)
        spent = daily_budget_spent(request)
        if spent:
            trace.write("cap_reached", reason=spent)
            return AgentResult(outcome=RunOutcome.CAP_REACHED, usage=RunUsage(), reason=spent)
        meter = CapMeter.for_request(request)
        emit = Throttle(on_event, self.event_interval)
        state = StreamState(price_of(self.prices, self.model))
        argv = self.argv(request, meter.dollar_limit)
        trace.write("agent_start", backend=self.name, model=self.model, command=argv, caps=meter.progress())
        emit(AgentEvent(kind="start", message=f"Claude Code ({self.model}) started", usage=meter.usage), force=True)
        try:
            proc = self.sandbox.start(argv, workspace=request.workspace, home=run_home(request), network=True,
                                      extra_env=self.environment(request))  # fmt: skip
        except OSError as exc:
            reason = f"could not start Claude Code ({self.claude_path}): {exc}. Fix: install it (npm install -g " \
                     "@anthropic-ai/claude-code) or set [agent] claude_path"  # fmt: skip
            trace.write("stopped", reason=reason)
            return AgentResult(outcome=RunOutcome.AGENT_FAILED, usage=RunUsage(), reason=reason)
        assert proc.stdin is not None and proc.stdout is not None
        stdin, stdout = proc.stdin, proc.stdout

        def feed() -> None:
            try:
                stdin.write(request.prompt.encode())
                stdin.close()
            except BrokenPipeError:
                pass

        lines: queue.Queue[bytes | None] = queue.Queue()

        def read() -> None:
            for line in iter(stdout.readline, b""):
                lines.put(line)
            lines.put(None)

        threading.Thread(target=feed, daemon=True).start()
        threading.Thread(target=read, daemon=True).start()
        other: list[str] = []  # lines that are not JSON (errors the CLI printed)
        cap: str | None = None
        done = False
        last_line = meter.elapsed
        while not done:
            try:
                raw = lines.get(timeout=POLL_S)
            except queue.Empty:
                raw = b""
            else:
                last_line = meter.elapsed
            stop = _stopped(request, meter.elapsed - last_line)
            if stop is not None:
                process.kill_group(proc)  # the CLI, its tools, everything it started
                trace.write(stop[0].value, reason=stop[1], usage=state.usage().model_dump())
                emit(AgentEvent(kind=stop[0].value, message=stop[1], usage=state.usage()), force=True)
                return AgentResult(outcome=stop[0], usage=state.usage(), reason=stop[1])
            if raw is None:
                done = True
            elif raw.strip():
                try:
                    obj = json.loads(raw)
                except ValueError:
                    other.append(raw.decode(errors="replace").rstrip())
                    trace.write("output", text=_clip(other[-1]))
                else:
                    if isinstance(obj, dict):
                        event = state.feed(obj, trace)
                        meter.set(state.usage())
                        if event is not None:
                            event.message = "; ".join(m for m in (event.message, meter.progress()) if m)
                            emit(event)
            if state.result is not None and meter.time_left <= 0:
                process.kill_group(proc)  # it gave its result but lingers: it must not outlive the run
                break
            if state.result is None:
                cap = meter.exceeded()
                if cap is None and state.usage().turns > request.max_turns:
                    cap = f"turn cap reached: {state.usage().turns} turns of max_turns = {request.max_turns}"
                if cap:
                    process.kill_group(proc)  # the CLI, its tools, everything it started
                    break
        if cap is None:
            try:
                proc.wait(timeout=max(meter.time_left, 5.0))
            except subprocess.TimeoutExpired:
                process.kill_group(proc)  # it closed its output but lingers: it must not outlive the run
        return self._outcome(request, trace, emit, meter, state, cap, proc.returncode, other)

    def _outcome(
        self,
        request: AgentRequest,
        trace: TraceWriter,
        emit: Throttle,
        meter: CapMeter,
        state: StreamState,
        cap: str | None,
        code: int | None,
        other: list[str],
    ) -> AgentResult:
        usage = state.usage()
        meter.set(usage)
        result = state.result or {}
        subtype = str(result.get("subtype") or "")
        denials = result.get("permission_denials") or []
        summary = str(result.get("result") or state.last_text or "")
        if denials:
            names = ", ".join(sorted({str(d.get("tool_name")) for d in denials}))
            summary += f"\n(permission denied {len(denials)} time(s): {names})"
        if cap is None and subtype == "error_max_turns":
            cap = f"turn cap reached: {usage.turns} turns of max_turns = {request.max_turns}"
        if cap is None and subtype == "error_max_budget_usd":
            cap = meter.exceeded() or (
                f"dollar cap reached: ${usage.cost_usd:.2f} of max_cost_usd = {request.max_cost_usd:g}"
                if meter.dollar_limit >= request.max_cost_usd
                else f"DAILY BUDGET reached: this run's ${usage.cost_usd:.2f} uses up what today's daily_budget_usd "
                "still allowed"
            )
        if cap is None and state.result is not None and not result.get("is_error"):
            cap = meter.exceeded()  # finished, but the last turn went over a spending cap
        if cap is not None:
            trace.write("cap_reached", reason=cap, usage=usage.model_dump())
            emit(AgentEvent(kind="cap_reached", message=cap, usage=usage), force=True)
            return AgentResult(outcome=RunOutcome.CAP_REACHED, usage=usage, summary=summary, reason=cap)
        if state.result is None or result.get("is_error") or code not in (0, None):
            detail = str(result.get("result") or "") or "; ".join(other[-5:]) or f"exit status {code}"
            reason = f"Claude Code failed ({subtype or 'no result'}): {detail[:500]}"
            trace.write("stopped", reason=reason, usage=usage.model_dump())
            emit(AgentEvent(kind="failed", message=reason, usage=usage), force=True)
            return AgentResult(outcome=RunOutcome.AGENT_FAILED, usage=usage, summary=summary, reason=reason)
        emit(AgentEvent(kind="finished", message=summary[:200], usage=usage,
                        data={"permission_denials": len(denials)}), force=True)  # fmt: skip
        return AgentResult(outcome=RunOutcome.SUCCEEDED, usage=usage, summary=summary.strip())


def _stopped(request: AgentRequest, silent_s: float) -> tuple[RunOutcome, str] | None:
    """Why the CLI must be stopped now: the run was cancelled, or it printed nothing for `stall_timeout_s`."""
    if request.cancel.is_set():
        return RunOutcome.CANCELLED, "the run was cancelled"
    stall = request.stall_timeout_s
    if stall is not None and silent_s >= stall:
        return RunOutcome.STALLED, f"Claude Code printed nothing for {stall:g} s and was stopped"
    return None
