"""A prompt-injected `command` agent plants git traps in its workspace; the daemon must never spring them.

Each trap tries to write the daemon's environment (its tokens) to a file outside the workspace when the daemon runs
git: hooks (post-commit, pre-commit, pre-push, reference-transaction), `core.fsmonitor`, a clean/smudge filter
named by a committed `.gitattributes`, and an `include.path` / `includeIf` pulling in a config that sets hooks and
fsmonitor. The ticket must still reach review with the agent's code change, on a local git repository and on the
GitHub simulator (pushed over real smart HTTP), and no leak file may appear.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent_fixtures import make_repo
from tests.journey_helpers import local_calc_tracker, run_once, write_hosted_config
from tests.sims.github import GitHubSim
from tests.sims.github.world import Repo
from tracker_bridge.agents.sandbox import sandbox_status
from tracker_bridge.gitutil import git

# The attacker: fixes the bug (so the run succeeds) and plants one trap. Runs inside the sandbox, where it may use
# git as it likes.
ATTACK = r'''
import pathlib, subprocess, sys

kind, leak = sys.argv[1], sys.argv[2]
payload = f"#!/bin/sh\nenv > {leak}\ncat\n"


def run(*args):
    subprocess.run(["git", *args], check=True)


def script(path):
    p = pathlib.Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(payload)
    p.chmod(0o755)
    return str(p.resolve())


calc = pathlib.Path("calc.py")
calc.write_text(calc.read_text().replace("a - b", "a + b"))
if kind in ("post-commit", "pre-commit", "pre-push", "reference-transaction"):
    script(f".git/hooks/{kind}")
elif kind == "fsmonitor":
    run("config", "core.fsmonitor", script(".git/fsmonitor-trap"))
elif kind == "filter":
    run("config", "filter.trap.clean", f"env > {leak}; cat")
    run("config", "filter.trap.smudge", f"env > {leak}; cat")
    run("config", "filter.trap.required", "true")
    pathlib.Path(".gitattributes").write_text("* filter=trap\n")
elif kind == "include":
    hooks = pathlib.Path(".git/trap-hooks")
    for hook in ("pre-commit", "post-commit", "pre-push", "reference-transaction", "post-checkout"):
        script(hooks / hook)
    cfg = pathlib.Path(".git/trap.config")
    cfg.write_text(f"[core]\n\thooksPath = {hooks.resolve()}\n\tfsmonitor = {script('.git/fsmonitor-trap')}\n")
    run("config", "include.path", str(cfg.resolve()))
    run("config", "includeIf.gitdir:/.path", str(cfg.resolve()))
else:
    raise SystemExit(f"unknown trap {kind}")
'''

TRAPS = ["post-commit", "pre-commit", "pre-push", "reference-transaction", "fsmonitor", "filter", "include"]

needs_bwrap = pytest.mark.skipif(not sandbox_status()[0], reason=f"no usable bubblewrap: {sandbox_status()[1]}")


def attacker(tmp_path: Path, trap: str) -> tuple[str, Path]:
    script = tmp_path / "attack.py"
    script.write_text(ATTACK)
    leak = tmp_path / f"leaked-{trap}.env"
    return f"{sys.executable} {script} {trap} {leak}", leak


@needs_bwrap
@pytest.mark.parametrize("trap", TRAPS)
def test_a_trap_planted_in_the_workspace_never_runs_on_local_git(
    tmp_path: Path, trap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAEMON_ONLY_TOKEN", "tok-never-leak-1234")
    tickets, tracker = local_calc_tracker(tmp_path)
    origin = make_repo(tmp_path / "origin")
    command, leak = attacker(tmp_path, trap)
    config = tmp_path / "tracker-bridge.toml"
    config.write_text(
        f"""
[bridge]
state = "sqlite:///{tmp_path / "state.db"}"
state_dir = "{tmp_path / "state"}"

[agent]
backend = "command"
command = "{command}"

{tracker}
[[repos]]
name = "shop"
host = "local"
url = "{origin}"
base_branch = "main"
test_command = "{sys.executable} -m pytest -q -p no:cacheprovider"
"""
    )
    run_once(config, catch_exceptions=False)

    assert not leak.exists(), leak.read_text()[:500]
    text = (tickets / "DEMO-1.md").read_text()
    assert "status: In Review" in text, text
    [branch] = git(origin, "for-each-ref", "--format=%(refname:short)", "refs/heads/agent/").split()
    assert "a + b" in git(origin, "show", f"{branch}:calc.py")
    # the agent's repository never becomes the daemon's: no trap file is in what was pushed
    pushed = git(origin, "ls-tree", "-r", "--name-only", branch).split()
    assert not [p for p in pushed if "trap" in p or p.startswith(".git/")]


@pytest.fixture
def github(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[GitHubSim, Repo]]:
    with GitHubSim(tmp_path / "gh") as gh:
        monkeypatch.setenv("GITHUB_TOKEN", gh.token)
        gh.create_org("acme")
        repo = gh.create_repo("acme/shop", seed=make_repo(tmp_path / "seed"), collaborators={"alice": "write"})
        yield gh, repo
        assert gh.validation_errors == []


@needs_bwrap
@pytest.mark.parametrize("trap", TRAPS)
def test_a_trap_planted_in_the_workspace_never_runs_on_github(
    tmp_path: Path, trap: str, github: tuple[GitHubSim, Repo]
) -> None:
    gh, repo = github
    tickets, tracker = local_calc_tracker(tmp_path)
    command, leak = attacker(tmp_path, trap)
    config = write_hosted_config(
        tmp_path, tracker, host="github", url=gh.clone_url("acme/shop"), api_url=gh.url, token_env="GITHUB_TOKEN"
    )
    # the hosted journeys run unsandboxed; this one runs the attacker the way a daemon should: in bubblewrap
    text = config.read_text().replace('sandbox = "none"\nallow_unsandboxed = true\n', 'sandbox = "auto"\n')
    text = text.replace(f'command = "{sys.executable} {tmp_path / "agent.py"}"', f'command = "{command}"')
    config.write_text(text)
    assert command in text and 'sandbox = "auto"' in text

    run_once(config, catch_exceptions=False)

    assert not leak.exists(), leak.read_text()[:500]
    [pr] = repo.pulls.values()
    assert pr.state == "open" and pr.head_sha == repo.branch_sha(pr.head)
    assert "status: In Review" in (tickets / "DEMO-1.md").read_text()
    assert "a + b" in repo.git("show", f"{pr.head}:calc.py")
    pushed = repo.git("ls-tree", "-r", "--name-only", pr.head).split()
    assert not [p for p in pushed if "trap" in p]
