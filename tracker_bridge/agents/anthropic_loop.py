"""The `anthropic` backend: a small agent loop on the Anthropic Messages API, run by the daemon itself.

The model runs in the daemon; only the commands it asks for run, in the sandbox, with no network and a clean
environment. Files are read and written by the daemon, confined to the workspace. Tokens are priced per model from
`[agent.prices]`; the system prompt and the tool definitions are marked for prompt caching.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic

from tracker_bridge import secrets
from tracker_bridge.agents.caps import CapMeter, Throttle, cost_usd, price_of
from tracker_bridge.agents.sandbox import Sandbox
from tracker_bridge.agents.trace import TraceWriter
from tracker_bridge.config import ModelPrice, Settings
from tracker_bridge.models import RunOutcome
from tracker_bridge.protocols import AgentEvent, AgentRequest, AgentResult

MAX_OUTPUT_TOKENS = 8192
TOOL_OUTPUT_LIMIT = 12_000
COMMAND_TIMEOUT = 300.0
MAX_LIST = 500
MAX_MATCHES = 100

SYSTEM = """You are an autonomous software engineer working in a git repository checked out in your working
directory. Use the tools to read, change and test the code. Paths are relative to the repository root; you cannot
reach anything outside it, and commands run without network access. Make the smallest change that does what the
ticket asks, keep the tests passing, and call `finish` with a short summary when you are done. Do not commit or push:
the daemon does that."""

TOOLS: list[dict[str, Any]] = [
    {
        "name": "read_file",
        "description": "Read a text file of the repository. Returns numbered lines.",
        "input_schema": {
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "offset": {"type": "integer", "description": "first line (1-based)", "minimum": 1},
                "limit": {"type": "integer", "description": "number of lines", "minimum": 1},
            },
            "required": ["path"],
        },
    },
    {
        "name": "write_file",
        "description": "Create or overwrite a file with the given content.",
        "input_schema": {
            "type": "object",
            "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
            "required": ["path", "content"],
        },
    },
    {
        "name": "edit_file",
        "description": "Replace exactly one occurrence of old_text with new_text in a file (old_text must be unique).",
        "input_schema": {
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "old_text": {"type": "string"},
                "new_text": {"type": "string"},
            },
            "required": ["path", "old_text", "new_text"],
        },
    },
    {
        "name": "list_files",
        "description": "List files under a directory of the repository (recursively, without .git).",
        "input_schema": {"type": "object", "properties": {"path": {"type": "string", "default": "."}}},
    },
    {
        "name": "search",
        "description": "Search files for a regular expression; returns path:line: text for each match.",
        "input_schema": {
            "type": "object",
            "properties": {"pattern": {"type": "string"}, "path": {"type": "string", "default": "."}},
            "required": ["pattern"],
        },
    },
    {
        "name": "run_command",
        "description": "Run a shell command in the repository root, without network access. Returns exit status "
        "and output. Use it to run the tests.",
        "input_schema": {
            "type": "object",
            "properties": {"command": {"type": "string"}, "timeout": {"type": "number", "default": 120}},
            "required": ["command"],
        },
    },
    {
        "name": "finish",
        "description": "Say you are done, with a short summary of what you changed and why.",
        "input_schema": {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]},
    },
]


class ToolError(Exception):
    """A tool call the agent must correct (bad path, text not found); returned to it as an error result."""


@dataclass
class Workspace:
    """File tools confined to the workspace: every path must resolve (symlinks included) inside it."""

    root: Path

    def resolve(self, path: str, *, for_write: bool = False) -> Path:
        root = self.root.resolve()
        target = (root / path).resolve()
        if target != root and root not in target.parents:
            raise ToolError(f"{path}: outside the repository; only files under the repository root can be used")
        if for_write and (target == root / ".git" or (root / ".git") in target.parents):
            raise ToolError(f"{path}: the .git directory is managed by the daemon")
        return target

    def read(self, path: str, offset: int = 1, limit: int = 2000) -> str:
        f = self.resolve(path)
        if not f.is_file():
            raise ToolError(f"{path}: no such file")
        lines = f.read_text(encoding="utf-8", errors="replace").splitlines()
        start = max(offset, 1)
        chunk = lines[start - 1 : start - 1 + limit]
        body = "\n".join(f"{n:6}\t{line}" for n, line in enumerate(chunk, start))
        rest = len(lines) - (start - 1 + len(chunk))
        more = f"\n(… {rest} more lines)" if rest > 0 else ""
        return (body or "(empty file)") + more

    def write(self, path: str, content: str) -> str:
        f = self.resolve(path, for_write=True)
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(content, encoding="utf-8")
        return f"wrote {len(content.splitlines())} lines to {path}"

    def edit(self, path: str, old_text: str, new_text: str) -> str:
        f = self.resolve(path, for_write=True)
        if not f.is_file():
            raise ToolError(f"{path}: no such file")
        text = f.read_text(encoding="utf-8")
        count = text.count(old_text) if old_text else 0
        if count != 1:
            found = "not found" if count == 0 else f"found {count} times"
            raise ToolError(f"{path}: old_text {found}; it must match exactly once (copy it from read_file)")
        f.write_text(text.replace(old_text, new_text, 1), encoding="utf-8")
        return f"edited {path}"

    def files(self, path: str = ".") -> list[Path]:
        base = self.resolve(path)
        root = self.root.resolve()
        out = []
        for p in sorted(base.rglob("*")):
            rel = p.relative_to(root)
            if rel.parts and rel.parts[0] == ".git":
                continue
            if p.is_file():
                out.append(rel)
        return out

    def list(self, path: str = ".") -> str:
        files = self.files(path)
        shown = "\n".join(str(p) for p in files[:MAX_LIST])
        return (shown or "(no files)") + (f"\n(… {len(files) - MAX_LIST} more)" if len(files) > MAX_LIST else "")

    def search(self, pattern: str, path: str = ".") -> str:
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise ToolError(f"invalid regular expression: {exc}") from exc
        hits: list[str] = []
        for rel in self.files(path):
            try:
                lines = (self.root / rel).read_text(encoding="utf-8").splitlines()
            except (UnicodeDecodeError, OSError):
                continue
            hits.extend(f"{rel}:{n}: {line.strip()}" for n, line in enumerate(lines, 1) if regex.search(line))
            if len(hits) >= MAX_MATCHES:
                break
        return "\n".join(hits[:MAX_MATCHES]) or "(no matches)"


def _clip(text: str, limit: int = TOOL_OUTPUT_LIMIT) -> str:
    if len(text) <= limit:
        return text
    return text[: limit // 4] + f"\n… ({len(text) - limit} characters cut) …\n" + text[-(limit * 3 // 4) :]


def transient_api_error(exc: anthropic.APIError) -> bool:
    """Overloaded (529), rate limited (429), any 5xx, or the connection lost: trying again later may succeed."""
    if isinstance(exc, anthropic.APIConnectionError):
        return True
    if isinstance(exc, anthropic.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return False


class AnthropicBackend:
    name = "anthropic"

    def __init__(
        self,
        *,
        model: str,
        api_key: str,
        base_url: str | None,
        prices: dict[str, ModelPrice],
        sandbox: Sandbox,
        event_interval: float = 5.0,
    ) -> None:
        self.model = model
        self.api_key = api_key
        self.base_url = base_url
        self.prices = prices
        self.sandbox = sandbox  # commands get a clean environment there: no secret of the daemon's reaches them
        self.event_interval = event_interval

    @classmethod
    def from_settings(cls, settings: Settings) -> AnthropicBackend:
        a = settings.agent
        return cls(
            model=a.model,
            api_key=secrets.get(a.api_key_env) or "",
            base_url=a.base_url,
            prices=a.prices,
            sandbox=Sandbox.for_settings(settings),
        )

    def _price(self, trace: TraceWriter) -> ModelPrice | None:
        price = price_of(self.prices, self.model)
        if price is None and self.prices:
            # An unknown model must not make the dollar cap blind: count it at the dearest listed price.
            name, price = max(self.prices.items(), key=lambda kv: kv[1].output)
            trace.write("pricing", model=self.model, note=f"no [agent.prices] entry; priced as {name}")
        return price

    def run(self, request: AgentRequest, on_event: Callable[[AgentEvent], None]) -> AgentResult:
        trace = TraceWriter(request.trace_path)
        meter = CapMeter.for_request(request)
        emit = Throttle(on_event, self.event_interval)
        price = self._price(trace)
        ws = Workspace(request.workspace)
        # No retries inside the SDK: a transient API error ends this attempt as API_ERROR and the engine retries the
        # run with backoff across cycles, so the status comment shows the next attempt and every attempt is counted.
        client = anthropic.Anthropic(api_key=self.api_key or "missing", base_url=self.base_url, max_retries=0)
        system = [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
        tools = [dict(t) for t in TOOLS]
        tools[-1]["cache_control"] = {"type": "ephemeral"}
        messages: list[dict[str, Any]] = [{"role": "user", "content": request.prompt}]
        trace.write("agent_start", backend=self.name, model=self.model, caps=meter.progress())
        emit(AgentEvent(kind="start", message=f"{self.model} started", usage=meter.usage), force=True)

        def stop(outcome: RunOutcome, reason: str, summary: str = "") -> AgentResult:
            kind = "cap_reached" if outcome is RunOutcome.CAP_REACHED else "stopped"
            trace.write(kind, reason=reason, usage=meter.usage.model_dump())
            emit(AgentEvent(kind=kind, message=reason, usage=meter.usage), force=True)
            return AgentResult(outcome=outcome, usage=meter.usage, summary=summary, reason=reason)

        def finish(summary: str) -> AgentResult:
            reason = meter.exceeded()  # the last turn itself may have gone over a spending cap
            if reason:
                return stop(RunOutcome.CAP_REACHED, reason, summary)
            trace.write("finished", summary=summary, usage=meter.usage.model_dump())
            emit(AgentEvent(kind="finished", message=summary[:200], usage=meter.usage), force=True)
            return AgentResult(outcome=RunOutcome.SUCCEEDED, usage=meter.usage, summary=summary)

        summary = ""
        while True:
            if request.cancel.is_set():
                return stop(RunOutcome.CANCELLED, "the run was cancelled", summary)
            reason = meter.before_turn()
            if reason:
                return stop(RunOutcome.CAP_REACHED, reason, summary)
            try:
                response = client.messages.create(
                    model=self.model,
                    max_tokens=MAX_OUTPUT_TOKENS,
                    system=system,  # type: ignore[arg-type]
                    tools=tools,  # type: ignore[arg-type]
                    messages=messages,  # type: ignore[arg-type]
                    timeout=max(meter.time_left, 1.0),
                )
            except anthropic.APITimeoutError:
                return stop(RunOutcome.CAP_REACHED, meter.wall_time_reason(), summary)
            except anthropic.APIError as exc:
                if meter.time_left <= 0:  # retries of a slow or unreachable API ran out the clock
                    return stop(RunOutcome.CAP_REACHED, meter.wall_time_reason(), summary)
                if transient_api_error(exc):
                    return stop(RunOutcome.API_ERROR, f"the Anthropic API failed: {exc}", summary)
                return stop(RunOutcome.AGENT_FAILED, f"the Anthropic API failed: {exc}", summary)
            u = response.usage
            cache_write = u.cache_creation_input_tokens or 0
            cache_read = u.cache_read_input_tokens or 0
            cost = cost_usd(price, input_tokens=u.input_tokens, output_tokens=u.output_tokens,
                            cache_write_tokens=cache_write, cache_read_tokens=cache_read)  # fmt: skip
            meter.add(turns=1, input_tokens=u.input_tokens + cache_write + cache_read, output_tokens=u.output_tokens,
                      cost=cost)  # fmt: skip
            said = "\n".join(b.text for b in response.content if b.type == "text").strip()
            summary = said or summary
            trace.write("turn", turn=meter.usage.turns, input_tokens=u.input_tokens, output_tokens=u.output_tokens,
                        cache_write=cache_write, cache_read=cache_read, cost_usd=round(cost, 6), text=said,
                        usage=meter.usage.model_dump())  # fmt: skip
            emit(AgentEvent(kind="turn", message=meter.progress(), usage=meter.usage, data={"text": said[:200]}))
            blocks = [b.model_dump(exclude_none=True) for b in response.content]
            messages.append({"role": "assistant", "content": blocks})
            calls = [b for b in response.content if b.type == "tool_use"]
            if not calls:
                return finish(summary)
            results: list[dict[str, Any]] = []
            finished: str | None = None
            for call in calls:
                args = dict(call.input) if isinstance(call.input, dict) else {}
                trace.write("tool_call", tool=call.name, id=call.id, input=args)
                if call.name == "finish":
                    finished = str(args.get("summary", "")) or summary
                    output, is_error = "ok", False
                else:
                    output, is_error = self._tool(ws, request, meter, call.name, args)
                trace.write("tool_result", tool=call.name, id=call.id, is_error=is_error, output=_clip(output, 4000))
                results.append({"type": "tool_result", "tool_use_id": call.id, "content": _clip(output),
                                "is_error": is_error})  # fmt: skip
            messages.append({"role": "user", "content": results})
            if finished is not None:
                return finish(finished)
            reason = meter.exceeded()
            if reason:
                return stop(RunOutcome.CAP_REACHED, reason, summary)

    def _tool(
        self, ws: Workspace, request: AgentRequest, meter: CapMeter, name: str, args: dict[str, Any]
    ) -> tuple[str, bool]:
        try:
            if name == "read_file":
                return ws.read(str(args["path"]), int(args.get("offset", 1)), int(args.get("limit", 2000))), False
            if name == "write_file":
                return ws.write(str(args["path"]), str(args["content"])), False
            if name == "edit_file":
                return ws.edit(str(args["path"]), str(args["old_text"]), str(args["new_text"])), False
            if name == "list_files":
                return ws.list(str(args.get("path", "."))), False
            if name == "search":
                return ws.search(str(args["pattern"]), str(args.get("path", "."))), False
            if name == "run_command":
                return self._command(request, meter, str(args["command"]), float(args.get("timeout", 120)))
        except KeyError as exc:
            return f"missing argument {exc} for {name}", True
        except (ToolError, OSError, ValueError) as exc:
            return str(exc), True
        return f"unknown tool {name!r}; the tools are: {', '.join(t['name'] for t in TOOLS)}", True

    def _command(self, request: AgentRequest, meter: CapMeter, command: str, timeout: float) -> tuple[str, bool]:
        limit = min(timeout, COMMAND_TIMEOUT, meter.time_left)
        code, output = self.sandbox.run(command, workspace=request.workspace, timeout=limit, network=False)
        if code is None:
            return f"(killed after {limit:.0f} s)\n{output}", True
        return f"exit status {code}\n{output}", code != 0
