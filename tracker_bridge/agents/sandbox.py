"""Where agent commands run: bubblewrap where the machine has it, otherwise plain processes under resource limits.

Under bubblewrap the whole filesystem is read-only except the workspace (and a private home), /tmp is private, and
nothing of the daemon's own is visible: its state folder (the state database, other tickets' workspaces, prompts
and traces) is an empty tmpfs, the configuration file and a SQLite state file read as empty. The
environment is rebuilt from nothing (PATH, HOME, LANG and what the caller passes on purpose), the process tree dies
with the daemon, and, unless the caller needs it (the Claude Code CLI must reach the API), there is no network.

Without bubblewrap (`[agent] sandbox = "none"`, or "auto" where bubblewrap is missing or unusable), commands still
get a clean environment, their own process group and resource limits, but they can read and write what the daemon
can and reach the network. So that only happens with `[agent] allow_unsandboxed = true`: `sandbox_status()` says
so, `doctor` prints what the agent can reach and every run's trace records it.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tracker_bridge.agents import process
from tracker_bridge.config import Settings

Mode = Literal["bubblewrap", "rlimits"]

# Variables the sandboxed process gets from the daemon: none of them can hold a secret.
PASS_THROUGH = ("PATH", "LANG", "LC_ALL", "TZ")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Resource limits for the fallback (and, as a second belt, inside bubblewrap): no core dumps, bounded file size and
# open files. No address-space limit: it breaks JIT runtimes (node, the JVM) that reserve more than they use.
FILE_SIZE_LIMIT = 2 * 1024**3

GUARD = process.GUARD

OPEN_FILES_LIMIT = 4096


class SandboxError(Exception):
    """The configured sandbox cannot be used (e.g. `sandbox = "bubblewrap"` on a machine without it)."""


@functools.cache
def _bwrap_works(bwrap: str) -> tuple[bool, str]:
    """Whether bubblewrap can create the namespaces we need here (containers often forbid them)."""
    argv = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-net", "--unshare-pid",
            "--die-with-parent", "--clearenv", "true"]  # fmt: skip
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return proc.returncode == 0, proc.stderr.strip()


def find_bwrap() -> str | None:
    return shutil.which("bwrap")


def sandbox_status(settings: Settings | str | None = None) -> tuple[bool, str]:
    """(ok, message) for `doctor`: is agent isolation what the operator expects? Takes the settings or the
    `[agent] sandbox` value ("auto" when not given)."""
    setting = settings if isinstance(settings, str) else (settings.agent.sandbox if settings else "auto")
    if setting == "none":
        return False, (
            '[agent] sandbox = "none": agent commands run without bubblewrap, under resource limits only; they can '
            'read and write what the daemon can and reach the network. Fix: set sandbox = "auto" and install '
            "bubblewrap"
        )
    bwrap = find_bwrap()
    if bwrap is None:
        return False, (
            "bubblewrap (bwrap) is not installed: agent commands run under resource limits only, with the network and "
            "the whole filesystem reachable. Fix: apt-get install -y bubblewrap"
        )
    works, err = _bwrap_works(bwrap)
    if not works:
        return False, (
            f"bubblewrap at {bwrap} cannot create namespaces here ({err or 'no reason given'}): agent commands run "
            "under resource limits only. Fix: allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_"
            "clone=1) or run the daemon where bubblewrap works"
        )
    return True, (
        f"bubblewrap at {bwrap}: root read-only, workspace writable, private /tmp, no network for tools; the state "
        "folder, the configuration file and other tickets' workspaces and traces are hidden"
    )


def unsandboxed_reach(settings: Settings) -> list[str]:
    """What an unsandboxed agent can reach, spelled out for `doctor`."""
    return [
        f"the state folder {settings.state_dir} (every ticket's workspace, prompt and trace) and the state store "
        f"({settings.state_url})",
        f"the configuration file {settings.config_file or settings.base_dir} and everything the daemon's user can "
        "read or write, including the repositories the daemon pushes",
        "the network, and the processes of the daemon's user (the daemon's tokens are read at start-up and removed "
        "from its environment block, so /proc/<pid>/environ no longer shows them)",
    ]


def hidden_paths(settings: Settings) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(folders, files) of the daemon's own that the sandbox hides: the state folder; the configuration file and
    a SQLite state file (with its journal)."""
    folders = (str(settings.state_dir.resolve()),)
    files: list[Path] = []
    if settings.config_file is not None:
        files.append(settings.config_file)
    url = settings.state_url
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        db = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
        files += [db, *(db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", "-journal"))]
    return folders, tuple(str(f.resolve()) for f in files)


def _under_tmp(paths: Sequence[Path]) -> tuple[str, ...]:
    """Existing folders under /tmp among `paths`, without any that another one already contains."""
    tmp = Path("/tmp")
    found = sorted({p.resolve() for p in paths if p.is_absolute() and p.exists()})
    found = [p for p in found if tmp in p.parents]
    kept: list[Path] = []
    for p in found:
        if not any(k == p or k in p.parents for k in kept):
            kept.append(p)
    return tuple(str(p) for p in kept)


def _limits(guarded: bool) -> Callable[[], None]:
    def apply() -> None:
        process.child_setup(signal.SIGTERM if guarded else signal.SIGKILL)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))
        resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES_LIMIT, OPEN_FILES_LIMIT))

    return apply


@dataclass(frozen=True)
class Sandbox:
    """How agent processes start: `argv` turns a command into what actually runs, `start` and `run` run it."""

    mode: Mode
    message: str
    bwrap: str | None = None
    visible: tuple[str, ...] = field(default=())  # host folders under /tmp kept readable in the private /tmp
    hidden_dirs: tuple[str, ...] = field(default=())  # the daemon's folders, an empty tmpfs inside
    hidden_files: tuple[str, ...] = field(default=())  # the daemon's files, read as empty inside

    @classmethod
    def choose(
        cls,
        setting: str = "auto",
        visible: Sequence[Path] = (),
        *,
        hidden: tuple[tuple[str, ...], tuple[str, ...]] = ((), ()),
        allow_unsandboxed: bool = True,
    ) -> Sandbox:
        ok, message = sandbox_status(setting)
        if ok:
            dirs, files = hidden
            return cls("bubblewrap", message, bwrap=find_bwrap(), visible=_under_tmp(visible), hidden_dirs=dirs,
                       hidden_files=files)  # fmt: skip
        if setting == "bubblewrap":
            raise SandboxError(f'[agent] sandbox = "bubblewrap" but {message}')
        if not allow_unsandboxed:
            raise SandboxError(
                f"{message}. The agent would run unconfined, so it does not run: set [agent] allow_unsandboxed = "
                "true to accept that"
            )
        return cls("rlimits", message)

    @classmethod
    def for_settings(cls, settings: Settings) -> Sandbox:
        """The sandbox `[agent] sandbox` asks for. The daemon's own files (configuration folder, state folder, its
        Python, its PATH) stay readable even when they live under /tmp, as they are everywhere else."""
        keep = [settings.base_dir, settings.state_dir, Path(sys.prefix), Path(sys.base_prefix), Path.cwd()]
        keep += [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]
        return cls.choose(settings.agent.sandbox, keep, hidden=hidden_paths(settings),
                          allow_unsandboxed=settings.agent.allow_unsandboxed)  # fmt: skip

    @property
    def isolated(self) -> bool:
        return self.mode == "bubblewrap"

    def environment(self, home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The whole environment of a sandboxed process: nothing of the daemon's but harmless basics."""
        env = {k: os.environ[k] for k in PASS_THROUGH if k in os.environ}
        env.setdefault("PATH", DEFAULT_PATH)
        env.setdefault("LANG", "C.UTF-8")
        env["HOME"] = str(home)
        env["TMPDIR"] = "/tmp"
        env["TERM"] = "dumb"
        # Stale bytecode can hide an edit made within the same second; and it would litter the agent's diff.
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.update(extra or {})
        return env

    def argv(
        self,
        command: Sequence[str] | str,
        *,
        workspace: Path,
        home: Path | None = None,
        network: bool = False,
        env: Mapping[str, str],
    ) -> list[str]:
        """The argv that runs `command` (a shell string or an argv) inside the sandbox, in `workspace`."""
        inner = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
        if not self.isolated:
            return ["/bin/sh", "-c", GUARD, "tracker-bridge-guard", *inner]
        assert self.bwrap is not None
        ws = str(workspace.resolve())
        args = [self.bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        for path in self.visible:
            args += ["--ro-bind", path, path]
        # After the binds above (a folder under /tmp was made visible), before the workspace and home are bound
        # back in: the daemon's own folders become empty, its files empty.
        for path in self.hidden_dirs:
            if os.path.isdir(path):
                args += ["--tmpfs", path]
        for path in self.hidden_files:
            if os.path.isfile(path):
                args += ["--ro-bind", "/dev/null", path]
        args += ["--bind", ws, ws]
        if home is not None:
            home.mkdir(parents=True, exist_ok=True)
            args += ["--bind", str(home.resolve()), str(home.resolve())]
        if not network:
            args.append("--unshare-net")
        args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session", "--clearenv"]
        for key, value in env.items():
            args += ["--setenv", key, value]
        args += ["--chdir", ws, "--"]
        return args + inner

    def start(
        self,
        command: Sequence[str] | str,
        *,
        workspace: Path,
        home: Path | None = None,
        network: bool = False,
        extra_env: Mapping[str, str] | None = None,
        stdin: int | None = subprocess.PIPE,
        stderr: int | None = subprocess.STDOUT,
    ) -> subprocess.Popen[bytes]:
        """Start `command` sandboxed, in its own process group (so `process.kill_group` stops all of it)."""
        home_dir = home if home is not None else Path(tempfile.gettempdir())  # private under bubblewrap
        env = self.environment(home_dir, extra_env)
        argv = self.argv(command, workspace=workspace, home=home, network=network, env=env)
        return subprocess.Popen(
            argv,
            cwd=workspace,
            env=env,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=stderr,
            preexec_fn=_limits(guarded=not self.isolated),
        )

    def run(
        self,
        command: Sequence[str] | str,
        *,
        workspace: Path,
        timeout: float,
        network: bool = False,
        extra_env: Mapping[str, str] | None = None,
    ) -> tuple[int | None, str]:
        """Run to completion (stdout and stderr together); (None, output) when it was killed at `timeout`."""
        proc = self.start(command, workspace=workspace, network=network, extra_env=extra_env, stdin=subprocess.DEVNULL)
        try:
            out, _ = proc.communicate(timeout=max(timeout, 0.1))
        except subprocess.TimeoutExpired:
            process.kill_group(proc)
            out, _ = proc.communicate()
            return None, (out or b"").decode(errors="replace")
        return proc.returncode, (out or b"").decode(errors="replace")
