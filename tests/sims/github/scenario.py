"""Ready-made GitHub worlds for tests: an organisation with a repository (real git, a failing test to fix) and a
Projects v2 board with the default columns."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.sims.github import GitHubSim
from tests.sims.github.world import Project, Repo

GOOD_TICKET = """`parse_amount` in `src/amounts.py` returns 100 for the input "1,00" instead of 1.00.

Expected: `parse_amount("1,00") == 1.0` (a comma is the decimal separator in European amounts).
Actual: it strips the comma and returns 100.

The failing test is `tests/test_amounts.py::test_comma_decimal`.

Acceptance criteria:
- `parse_amount("1,00")` returns 1.0
- `tests/test_amounts.py` passes
"""

VAGUE_TICKET = "Improve performance? Maybe explore caching, think about the architecture."


def git_env() -> dict[str, str]:
    return {
        **os.environ,
        "GIT_AUTHOR_NAME": "Alice",
        "GIT_AUTHOR_EMAIL": "alice@example.com",
        "GIT_COMMITTER_NAME": "Alice",
        "GIT_COMMITTER_EMAIL": "alice@example.com",
    }


def make_seed(path: Path) -> Path:
    """A small Python project whose test fails until parse_amount handles a decimal comma."""
    (path / "src").mkdir(parents=True)
    (path / "tests").mkdir()
    (path / "src" / "__init__.py").write_text("")
    (path / "src" / "amounts.py").write_text(
        'def parse_amount(text: str) -> float:\n    return float(text.replace(",", ""))\n'
    )
    (path / "tests" / "__init__.py").write_text("")
    (path / "tests" / "test_amounts.py").write_text(
        "from src.amounts import parse_amount\n\n\n"
        "def test_plain():\n    assert parse_amount('2') == 2.0\n\n\n"
        "def test_comma_decimal():\n    assert parse_amount('1,00') == 1.0\n"
    )
    for cmd in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "initial"]):
        subprocess.run(["git", *cmd], cwd=path, env=git_env(), check=True, capture_output=True)
    return path


@dataclass
class Board:
    gh: GitHubSim
    repo: Repo
    project: Project


def acme_board(gh: GitHubSim, tmp: Path, *, number: int = 1) -> Board:
    """Organisation `acme`, repository `acme/widgets` (alice and bob write, eve reads), project acme/1."""
    gh.create_org("acme")
    repo = gh.create_repo(
        "acme/widgets",
        seed=make_seed(tmp / "seed-widgets"),
        collaborators={"alice": "write", "bob": "maintain", "eve": "read"},
    )
    project = gh.create_project("acme", number)
    return Board(gh, repo, project)
