"""`tracker-bridge demo`: the whole journey on the embedded default, with no account anywhere.

It builds a sample repository with a real failing test, a folder with a well-scoped ticket and a vague one, and runs
the daemon against them while the board is shown changing. Without a configured agent it uses a scripted stand-in
agent that says plainly that it is one. The builders here are also what the tests use to set up a journey.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from tracker_bridge.gitutil import git

BOARD_COLUMNS = ["Backlog", "Agent", "In Progress", "In Review", "Done", "Needs Refinement", "Needs Human"]

SLUG_BUGGY = '''"""Turning titles into URL slugs."""

import re


def slugify(text: str) -> str:
    """A URL-safe slug: lower case, words joined by single dashes."""
    return re.sub(r"[^A-Za-z0-9]", "-", text.strip())
'''

SLUG_FIXED = '''"""Turning titles into URL slugs."""

import re


def slugify(text: str) -> str:
    """A URL-safe slug: lower case, words joined by single dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.strip().lower()).strip("-")
'''

# unittest, not pytest: the demo must run from an installed package, which has no test tools beyond the standard
# library (pytest collects these tests too).
SLUG_TESTS = '''import unittest

from textkit.slug import slugify


class SlugifyTests(unittest.TestCase):
    def test_slugify_keeps_simple_words(self):
        self.assertEqual(slugify("hello"), "hello")

    def test_slugify_lowercases_and_collapses(self):
        self.assertEqual(slugify("Hello  World"), "hello-world")
        self.assertEqual(slugify("  Ready, set: go! "), "ready-set-go")


if __name__ == "__main__":
    unittest.main()
'''

# The sample repository's test command: the standard library's runner, with this interpreter.
TEST_COMMAND = f"{Path(sys.executable).as_posix()} -m unittest -q"

GOOD_TICKET = """---
title: slugify() keeps upper case and repeated dashes
status: Backlog
labels: [agent-ready]
---
`slugify()` in `textkit/slug.py` returns `"Hello--World"` for `"Hello  World"`; it should return `"hello-world"`.

## Steps to reproduce
```python
from textkit.slug import slugify
slugify("Hello  World")
```

## Expected
`"hello-world"`: lower case, each run of characters other than letters and digits replaced by one dash, no dash at
either end.

## Actual
`"Hello--World"`

## Acceptance criteria
- `tests/test_slug.py::test_slugify_lowercases_and_collapses` passes
- the other tests in `tests/test_slug.py` still pass
"""

VAGUE_TICKET = """---
title: Make everything faster
status: Backlog
labels: [agent-ready]
---
The app feels slow sometimes. Maybe we should explore caching, or think about rethinking the architecture?
Not sure what the best approach is; let's investigate and discuss options.
"""

STAND_IN_AGENT = '''"""A scripted stand-in agent for the demo. It is NOT an AI: it applies one known fix."""
import pathlib
import sys

print("scripted stand-in agent (not an AI): applying the known fix for the slugify ticket")
target = pathlib.Path("textkit/slug.py")
target.write_text({fixed!r}, encoding="utf-8")
print("edited", target)
sys.exit(0)
'''


def make_sample_repo(path: Path) -> Path:
    """A git repository with a small package and a real failing test."""
    (path / "textkit").mkdir(parents=True)
    (path / "tests").mkdir()
    (path / "tests" / "__init__.py").write_text("", encoding="utf-8")  # unittest discovers packages only
    (path / "textkit" / "__init__.py").write_text("", encoding="utf-8")
    (path / "textkit" / "slug.py").write_text(SLUG_BUGGY, encoding="utf-8")
    (path / "tests" / "test_slug.py").write_text(SLUG_TESTS, encoding="utf-8")
    (path / "AGENTS.md").write_text("Keep functions small and typed. Run the tests before finishing.\n")
    git(path.parent, "init", "-q", "-b", "main", str(path))
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "textkit: slugify")
    return path


def make_ticket_folder(path: Path, tickets: dict[str, str] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "board.yaml").write_text("columns: [" + ", ".join(BOARD_COLUMNS) + "]\n", encoding="utf-8")
    for key, text in (tickets or {"DEMO-1": GOOD_TICKET, "DEMO-2": VAGUE_TICKET}).items():
        (path / f"{key}.md").write_text(text, encoding="utf-8")
    return path


def make_stand_in_agent(path: Path) -> Path:
    path.write_text(STAND_IN_AGENT.format(fixed=SLUG_FIXED), encoding="utf-8")
    return path


def write_config(
    workdir: Path, *, agent_command: str, tickets: str = "tickets", repo: str = "demo-repo", extra: str = ""
) -> Path:
    config = workdir / "tracker-bridge.toml"
    config.write_text(
        f"""# Written by `tracker-bridge demo`: a local tracker folder and a local git repository.
[bridge]
state = "sqlite:///state.db"
state_dir = ".tracker-bridge"
poll_interval = 5
max_concurrent_runs = 2

[agent]
backend = "command"
command = {agent_command!r}
timeout = 300

[[trackers]]
name = "demo"
kind = "local"
url = "./{tickets}"
repo = "demo"

[[repos]]
name = "demo"
host = "local"
url = "./{repo}"
base_branch = "main"
test_command = "{TEST_COMMAND}"
{extra}""",
        encoding="utf-8",
    )
    return config


def build_demo(workdir: Path) -> Path:
    """Sample repository, tickets, stand-in agent and configuration in `workdir`; returns the configuration."""
    workdir.mkdir(parents=True, exist_ok=True)
    make_sample_repo(workdir / "demo-repo")
    make_ticket_folder(workdir / "tickets")
    agent = make_stand_in_agent(workdir / "stand_in_agent.py")
    return write_config(workdir, agent_command=f"{Path(sys.executable).as_posix()} {agent.as_posix()}")


def _board(folder: Path) -> Table:
    from tracker_bridge_connectors.local import TicketFile

    cards: dict[str, list[str]] = {c: [] for c in BOARD_COLUMNS}
    for f in sorted(folder.glob("*.md")):
        tf = TicketFile(f)
        cards.setdefault(str(tf.meta.get("status")), []).append(f"{f.stem}\n[dim]{tf.meta.get('title', '')}[/]")
    table = Table(title="the board (tickets/*.md)", expand=True, show_lines=True)
    for column in cards:
        table.add_column(column, ratio=1, overflow="fold")
    table.add_row(*["\n\n".join(v) for v in cards.values()])
    return table


def run_demo(workdir: Path | None, console: Console) -> int:
    from tracker_bridge import logs
    from tracker_bridge.config import load_settings
    from tracker_bridge.engine import build_engine
    from tracker_bridge.store import Store

    logs.configure(level=40)  # the board tells the story; only errors go to the log
    root = (workdir or Path(tempfile.mkdtemp(prefix="tracker-bridge-demo-"))).resolve()
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        console.print(
            f"[bold red]cannot build the demo in {root}[/]: it already exists and is not an empty folder. "
            "Fix: pass --dir a new or empty folder, or leave --dir out for a temporary one",
            highlight=False,
            soft_wrap=True,
        )
        return 2
    config = build_demo(root)
    console.print(
        Panel(
            f"Demo folder: {root}\n"
            "Tracker: a folder of Markdown tickets (tickets/). Code host: a local git repository (demo-repo/).\n"
            "Agent: a [bold]scripted stand-in agent, not an AI[/] (stand_in_agent.py): it applies one known fix.\n"
            "Set \\[agent] backend to claude-code or anthropic in tracker-bridge.toml for a real agent.",
            title="tracker-bridge demo",
        )
    )
    settings = load_settings(config)
    store = Store(settings.state_url)
    engine = build_engine(settings, store)
    tickets = root / "tickets"
    console.print(_board(tickets))
    with Live(_board(tickets), console=console, refresh_per_second=8) as live:
        engine.cycle()
        while any(not f.done() for f in list(engine.active.values())):
            live.update(_board(tickets))
            time.sleep(0.1)
        engine.wait()
        live.update(_board(tickets))
    engine.shutdown()
    from tracker_bridge_connectors.local import TicketFile

    good, vague = TicketFile(tickets / "DEMO-1.md"), TicketFile(tickets / "DEMO-2.md")
    for key, tf in (("DEMO-1", good), ("DEMO-2", vague)):
        console.print(Panel(tf.comment or "(no status comment)", title=f"status comment on {key}", expand=True))
    ok = good.meta.get("status") == "In Review" and vague.meta.get("status") == "Needs Refinement"
    row = store.ticket("demo", "DEMO-1")
    branch = row.branch if row is not None and row.branch else ""
    store.close()
    if ok and branch:
        check = Path(tempfile.mkdtemp(prefix="tb-check-")) / "repo"
        git(root, "clone", "-q", "--branch", branch, str(root / "demo-repo"), str(check))
        tests = subprocess.run([sys.executable, "-m", "unittest", "-q"], cwd=check, capture_output=True, text=True)
        ok = tests.returncode == 0
        verdict = "[green]pass[/]" if ok else "[red]fail[/]"
        console.print(Group(f"Tests on branch [bold]{branch}[/]: {verdict}"))
        script = Path(sys.executable).parent / "tracker-bridge"  # the console script beside this interpreter
        command = str(script) if script.exists() else "tracker-bridge"
        console.print(
            "Next: merge it and run one more cycle to see the card reach Done:\n"
            f"  git -C {root / 'demo-repo'} merge {branch}\n"
            f"  {command} run --once -c {config}",
            soft_wrap=True,
        )
    console.print("[bold green]demo finished[/]" if ok else "[bold red]demo did not end as expected[/]")
    return 0 if ok else 1
