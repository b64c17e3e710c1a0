"""The smart-HTTP git server used by the code-host simulators: real clone and push, token checked."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sims.git_http import GitHttpServer

TOKEN = "ghp_test_token"


def _git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    env |= {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, check=check)


def _auth(token: str) -> str:
    return "http.extraHeader=Authorization: Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitHttpServer]:
    seed = tmp_path / "seed"
    seed.mkdir()
    _git(seed, "init", "-q", "-b", "main")
    (seed / "README.md").write_text("hello\n")
    _git(seed, "add", ".")
    _git(seed, "commit", "-q", "-m", "first")
    with GitHttpServer(tmp_path / "srv", token=TOKEN) as srv:
        srv.create_repo("acme/widgets", seed=seed)
        yield srv


def test_clone_and_push_with_token(server: GitHttpServer, tmp_path: Path) -> None:
    work = tmp_path / "work"
    _git(tmp_path, "-c", _auth(TOKEN), "clone", "-q", server.repo_url("acme/widgets"), str(work))
    assert (work / "README.md").read_text() == "hello\n"
    _git(work, "checkout", "-q", "-b", "feature")
    (work / "big.bin").write_bytes(bytes(range(256)) * 8000)  # > 1 MB: git sends the pack chunked
    _git(work, "add", ".")
    _git(work, "commit", "-q", "-m", "feature")
    _git(work, "-c", _auth(TOKEN), "push", "-q", "origin", "feature")
    heads = _git(server.repo_path("acme/widgets"), "branch", "--list").stdout
    assert "feature" in heads
    assert any(r.is_push for r in server.log)


def test_wrong_or_missing_token_is_refused(server: GitHttpServer, tmp_path: Path) -> None:
    for extra in ([], ["-c", _auth("wrong")]):
        proc = _git(tmp_path, *extra, "clone", "-q", server.repo_url("acme/widgets"), str(tmp_path / "x"), check=False)
        assert proc.returncode != 0
        assert "Authentication failed" in proc.stderr or "could not read Username" in proc.stderr
