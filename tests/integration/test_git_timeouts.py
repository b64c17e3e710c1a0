"""A git remote that stalls must not freeze the daemon: git is killed at its timeout, dies with the daemon, and a
push that was killed is retried on a later cycle without losing the ticket."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent_fixtures import make_repo
from tests.journey_helpers import local_calc_tracker, run_once, write_hosted_config
from tests.sims.github import GitHubSim
from tracker_bridge import gitutil
from tracker_bridge.gitutil import GitTimeout, git


@pytest.fixture
def silent_remote() -> Iterator[str]:
    """A loopback HTTP "git server" that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/acme/shop.git"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def _git_processes(marker: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline and b"git" in cmdline:
                found.append(int(pid))
    return found


def test_a_stalled_git_command_is_killed_at_its_timeout(tmp_path: Path, silent_remote: str) -> None:
    repo = make_repo(tmp_path / "repo")
    with pytest.raises(GitTimeout, match="did not finish within 2 s"):
        git(repo, "push", silent_remote, "main", timeout=2)
    time.sleep(0.2)
    assert _git_processes(silent_remote) == []  # git and its remote helper, killed as a group


def test_git_dies_with_the_daemon(tmp_path: Path, silent_remote: str) -> None:
    repo = make_repo(tmp_path / "repo")
    daemon = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; from tracker_bridge.gitutil import git; "
         "git(Path(sys.argv[1]), 'push', sys.argv[2], 'main')", str(repo), silent_remote],
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not _git_processes(silent_remote):
        assert time.monotonic() < deadline, "git never started"
        time.sleep(0.05)
    daemon.send_signal(signal.SIGKILL)
    daemon.wait()
    deadline = time.monotonic() + 10
    while _git_processes(silent_remote):
        assert time.monotonic() < deadline, "git outlived the SIGKILLed daemon"
        time.sleep(0.05)


def test_a_push_that_hangs_is_killed_and_published_on_a_later_cycle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with GitHubSim(tmp_path / "gh") as gh:
        monkeypatch.setenv("GITHUB_TOKEN", gh.token)
        gh.create_org("acme")
        repo = gh.create_repo("acme/shop", seed=make_repo(tmp_path / "seed"), collaborators={"alice": "write"})
        tickets, tracker = local_calc_tracker(tmp_path)
        config = write_hosted_config(
            tmp_path, tracker, host="github", url=gh.clone_url("acme/shop"), api_url=gh.url, token_env="GITHUB_TOKEN"
        )
        monkeypatch.setattr(gitutil, "_timeout_s", 5.0)
        gh.git.backend.stall_pushes.set()

        run_once(config, catch_exceptions=False)

        text = (tickets / "DEMO-1.md").read_text()
        assert "status: In Progress" in text, text
        assert "did not finish within 5 s" in text and "tries again next cycle (attempt 1 of" in text
        assert repo.pulls == {}

        gh.git.backend.stall_pushes.clear()
        run_once(config, catch_exceptions=False)

        [pr] = repo.pulls.values()
        assert pr.state == "open" and "a + b" in repo.git("show", f"{pr.head}:calc.py")
        assert "status: In Review" in (tickets / "DEMO-1.md").read_text()
