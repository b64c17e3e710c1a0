"""The sandbox agent commands and the daemon's test run go through: bubblewrap, or resource limits with a warning."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tracker_bridge.agents.sandbox import Sandbox, SandboxError, sandbox_status

bwrap_ok, bwrap_message = sandbox_status()
needs_bwrap = pytest.mark.skipif(not bwrap_ok, reason=f"no usable bubblewrap: {bwrap_message}")


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret_4711")
    return "ghp_secret_4711"


def test_sandbox_none_says_it_is_unprotected() -> None:
    ok, message = sandbox_status("none")
    assert not ok and "resource limits only" in message and 'sandbox = "auto"' in message
    assert Sandbox.choose("none").mode == "rlimits"


def test_required_bubblewrap_that_is_missing_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tracker_bridge.agents.sandbox.find_bwrap", lambda: None)
    ok, message = sandbox_status()
    assert not ok and "apt-get install -y bubblewrap" in message
    assert Sandbox.choose("auto").mode == "rlimits"
    with pytest.raises(SandboxError, match="bubblewrap"):
        Sandbox.choose("bubblewrap")


def test_fallback_runs_with_a_clean_environment_and_limits(tmp_path: Path, secret: str) -> None:
    box = Sandbox.choose("none")
    code, out = box.run("env; ulimit -c; ulimit -n", workspace=tmp_path, timeout=10)
    assert code == 0
    assert secret not in out and "GITHUB_TOKEN" not in out
    lines = out.splitlines()
    assert lines[-2:] == ["0", "4096"]  # no core dumps, bounded open files


def test_fallback_kills_a_command_at_its_timeout(tmp_path: Path) -> None:
    code, _ = Sandbox.choose("none").run("sleep 20", workspace=tmp_path, timeout=0.5)
    assert code is None


@needs_bwrap
def test_bubblewrap_workspace_writable_rest_read_only_private_tmp(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    outside = tmp_path / "outside.txt"
    host_only = tmp_path / "host-only.txt"
    host_only.write_text("host")
    box = Sandbox.choose("auto")
    code, out = box.run(f"echo in > inside.txt && echo out > {outside}; echo x > /usr/x; cat {host_only}",
                        workspace=ws, timeout=10)  # fmt: skip
    assert (ws / "inside.txt").read_text() == "in\n"
    assert not outside.exists()  # what it wrote in /tmp stayed in its private /tmp
    assert "Read-only file system" in out
    assert "No such file" in out  # the host's /tmp is not visible
    assert code != 0


@needs_bwrap
def test_bubblewrap_has_no_network_and_no_secrets(tmp_path: Path, secret: str) -> None:
    code, out = Sandbox.choose("auto").run(
        "cat /proc/net/dev | tail -n +3 | cut -d: -f1; env", workspace=tmp_path, timeout=10
    )
    assert code == 0
    interfaces = [line.strip() for line in out.splitlines() if line.strip() and "=" not in line]
    assert interfaces == ["lo"]  # only a loopback of its own
    assert secret not in out
    assert f"PATH={os.environ['PATH']}" in out


@needs_bwrap
def test_bubblewrap_command_dies_when_killed_at_timeout(tmp_path: Path) -> None:
    code, _ = Sandbox.choose("auto").run("sleep 33.125", workspace=tmp_path, timeout=0.5)
    assert code is None
    leftovers = [p for p in os.listdir("/proc") if p.isdigit() and _cmdline(p).find("33.125") >= 0]
    assert leftovers == []


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


@needs_bwrap
def test_the_daemons_own_folders_under_tmp_stay_readable_not_writable(tmp_path: Path) -> None:
    config_dir = tmp_path / "project"
    (config_dir / "ws").mkdir(parents=True)
    (config_dir / "agent.sh").write_text("echo agent script ran\n")
    box = Sandbox.choose("auto", visible=[config_dir, config_dir / "ws", Path("/usr/bin")])
    assert box.visible == (str(config_dir.resolve()),)  # only what /tmp hides, without nesting
    code, out = box.run(f"sh {config_dir}/agent.sh; echo x > {config_dir}/new.txt; echo ok > done.txt",
                        workspace=config_dir / "ws", timeout=10)  # fmt: skip
    assert "agent script ran" in out and "Read-only file system" in out
    assert (config_dir / "ws" / "done.txt").read_text() == "ok\n" and not (config_dir / "new.txt").exists()
    assert code == 0


@pytest.mark.parametrize("setting", ["auto", "none"])
def test_agent_commands_die_with_the_daemon(tmp_path: Path, setting: str) -> None:
    import subprocess
    import sys
    import time

    marker = "sleep 39.0625" if setting == "auto" else "sleep 39.125"
    daemon = subprocess.Popen(  # a stand-in daemon that starts an agent command, then is killed hard
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from tracker_bridge.agents.sandbox import Sandbox; "
         f"Sandbox.choose({setting!r}).start({marker!r}, workspace=Path({str(tmp_path)!r})); "
         "print('started', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert daemon.stdout is not None and daemon.stdout.readline().strip() == "started"
    time.sleep(0.3)
    daemon.kill()
    daemon.wait()
    deadline = time.monotonic() + 5
    while _pids_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _pids_with(marker) == []


def _pids_with(marker: str) -> list[str]:
    return [p for p in os.listdir("/proc") if p.isdigit() and marker in _cmdline(p).replace("\0", " ")]
