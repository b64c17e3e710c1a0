"""A run's trace: one JSON object per line (events, tool calls, usage), kept in the state directory."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text


class TraceWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, kind: str, **data: Any) -> None:
        record = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "kind": kind, **data}
        line = json.dumps(record, default=str)
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def read_trace(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                # A crash can cut the last line short; keep what is whole.
                continue
    return out


# --- reading a trace back: `tracker-bridge trace REF` ---------------------------------------------------------------

_DETAIL_KEYS: dict[str, tuple[str, ...]] = {
    "workspace": ("branch", "start"),
    "sandbox": ("mode", "message"),
    "agent_start": ("backend", "model", "command", "caps"),
    "agent_init": ("model", "permission_mode", "cwd"),
    "text": ("text",),
    "agent_final": ("subtype", "num_turns", "total_cost_usd", "permission_denials", "result"),
    "turn": ("turn", "input_tokens", "output_tokens", "cost_usd", "text"),
    "tool_call": ("tool", "input"),
    "tool_result": ("tool", "is_error", "output"),
    "permission_denied": ("tool", "input"),
    "cap_reached": ("reason",),
    "agent_result": ("outcome", "reason", "usage"),
    "agent_exit": ("code", "seconds", "output"),
    "agent_stopped": ("cap", "reason"),
    "tests": ("command", "passed", "output"),
    "guard": ("refused", "reason"),
    "handover": ("skipped",),
    "result": ("outcome", "reason", "usage", "commit"),
}
_MAX_CELL = 300


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def summarize_trace(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals of a trace: the last usage seen, tool calls, the outcome and its reason."""
    usage: dict[str, Any] = {}
    outcome = reason = ""
    tool_calls = 0
    for r in records:
        if isinstance(r.get("usage"), dict):
            usage = r["usage"]
        if r.get("kind") == "tool_call":
            tool_calls += 1
        if r.get("kind") in ("agent_result", "result"):
            outcome = str(r.get("outcome", outcome))
            reason = str(r.get("reason", reason) or "")
    return {"usage": usage, "tool_calls": tool_calls, "outcome": outcome, "reason": reason}


def render_trace(path: Path) -> RenderableType:
    """The trace of one run as a table a person reads: time, what happened, the details; totals underneath."""
    records = read_trace(path)
    if not records:
        return Text(f"no trace at {path} (the run has not started, or its trace was removed)")
    table = Table(title=f"trace {path.name}", expand=True, show_lines=False)
    table.add_column("time", no_wrap=True, style="dim")
    table.add_column("event", no_wrap=True, style="bold")
    table.add_column("details", overflow="fold")
    styles = {"cap_reached": "red", "permission_denied": "red", "guard": "red", "tool_call": "cyan", "turn": "green"}
    for r in records:
        kind = str(r.get("kind", "?"))
        keys = _DETAIL_KEYS.get(kind) or tuple(k for k in r if k not in ("ts", "kind"))
        details = "  ".join(f"{k}={_short(r[k])}" for k in keys if k in r and r[k] not in (None, ""))
        ts = str(r.get("ts", ""))[11:19]
        table.add_row(ts, Text(kind, style=styles.get(kind, "")), details)
    s = summarize_trace(records)
    u = s["usage"]
    footer = Text(
        f"outcome: {s['outcome'] or 'unknown'}"
        + (f" ({s['reason']})" if s["reason"] else "")
        + f"; turns {u.get('turns', 0)}, tokens in {u.get('input_tokens', 0)} / out {u.get('output_tokens', 0)}, "
        f"cost ${float(u.get('cost_usd', 0.0)):.4f}, tool calls {s['tool_calls']}"
    )
    return Group(table, footer)
