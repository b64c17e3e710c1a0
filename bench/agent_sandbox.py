"""What isolation costs: start-up time of one agent command with bubblewrap, with the fallback, and bare.

    .venv/bin/python bench/agent_sandbox.py [N]

Prints the median and 90th percentile wall time of `true` run N times (default 30) each way, and of one scripted
Claude Code run (6 turns) against the loopback fake API when the CLI is installed.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tracker_bridge.agents.sandbox import Sandbox, sandbox_status


def timed(fn: object, n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.9) - 1]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    ws = Path(tempfile.mkdtemp(prefix="tb-bench-"))
    rows: list[tuple[str, Callable[[], object]]] = [("bare subprocess", lambda: subprocess.run(["true"], check=True))]
    rows.append(("fallback (rlimits + guard)", lambda: Sandbox.choose("none").run("true", workspace=ws, timeout=10)))
    ok, message = sandbox_status()
    if ok:
        rows.append(("bubblewrap", lambda: Sandbox.choose("auto").run("true", workspace=ws, timeout=10)))
    else:
        print(f"bubblewrap skipped: {message}")
    print(f"{'one command':32} {'median ms':>10} {'p90 ms':>10}   (n={n})")
    for name, fn in rows:
        med, p90 = timed(fn, n)
        print(f"{name:32} {med:10.1f} {p90:10.1f}")
    if shutil.which("claude"):
        from tests.agent_fixtures import make_repo
        from tests.integration.test_agent_claude_code import fix_script
        from tests.sims.fake_anthropic import FakeAnthropic
        from tracker_bridge.agents.claude_code import ClaudeCodeBackend
        from tracker_bridge.config import AgentConfig
        from tracker_bridge.models import Ticket
        from tracker_bridge.protocols import AgentRequest

        repo = make_repo(ws / "repo")
        with FakeAnthropic(script=fix_script(repo)) as fake:
            backend = ClaudeCodeBackend(
                claude_path="claude",
                model="claude-sonnet-4-5",
                allowed_tools=["Read", "Edit", "Bash"],
                prices=AgentConfig().prices,
                sandbox=Sandbox.choose("auto"),
                env={"ANTHROPIC_API_KEY": "fake", "ANTHROPIC_BASE_URL": fake.url},
            )
            request = AgentRequest(ticket=Ticket(ref="B-1", tracker="b", title="fix add"), workspace=repo,
                                   prompt="fix add", branch="b", test_command="", trace_path=ws / "trace.jsonl",
                                   max_turns=10, max_cost_usd=1.0, timeout_s=120)  # fmt: skip
            t = time.perf_counter()
            result = backend.run(request, lambda e: None)
            took = time.perf_counter() - t
            turns = len(fake.main_requests)
            print(f"Claude Code, {turns} scripted turns in bubblewrap: {took:.2f} s, {result.outcome.value}, "
                  f"${result.usage.cost_usd:.4f}")  # fmt: skip
    shutil.rmtree(ws, ignore_errors=True)


if __name__ == "__main__":
    main()
