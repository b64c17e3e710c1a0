"""The agent's change crosses from its workspace into the daemon's clone as content only, never as a repository.

The agent works in a clone of its own (`agent_workspace`) and may use git there as it likes, inside the sandbox.
Everything under its `.git` is untrusted: hooks, `core.fsmonitor`, filters, `include.path`, a changed `HEAD`... so
the daemon never runs git there. After the agent (and the tests) the daemon reads the work tree's files itself and
writes them into its own clone (`import_work_tree`), which the agent never saw; committing and pushing happen there,
with git hardened (`gitutil`). `.gitignore` and `.gitattributes` come along as plain files: git reads ignore
patterns as data, and attributes name drivers that only the (daemon's) configuration could define.

What is not copied: any `.git` entry (the repository, a submodule's gitfile), symbolic links that point outside the
work tree (absolute or escaping with `..`), and special files (FIFOs, sockets, devices).
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from tracker_bridge.gitutil import git

AGENT_SUFFIX = ".agent"


def agent_workspace(daemon_clone: Path) -> Path:
    """Where the agent works for the run whose daemon-owned clone is `daemon_clone` (a sibling folder)."""
    return daemon_clone.with_name(daemon_clone.name + AGENT_SUFFIX)


def make_agent_workspace(daemon_clone: Path, dest: Path, branch: str) -> None:
    """A fresh, independent clone of the daemon's clone for the agent (no shared object files: the agent could
    rewrite a hard-linked object in place), on `branch`, with no remote pointing back into the daemon's folders."""
    if dest.exists():
        shutil.rmtree(dest)
    git(daemon_clone.parent, "clone", "--quiet", "--no-hardlinks", "--branch", branch, str(daemon_clone), str(dest))
    git(dest, "remote", "remove", "origin")


def _inside(root: Path, link: Path) -> bool:
    target = os.readlink(link)
    if os.path.isabs(target):
        return False
    resolved = os.path.normpath(os.path.join(os.path.dirname(link), target))
    return resolved == str(root) or resolved.startswith(str(root) + os.sep)


def _clear(dest: Path) -> None:
    """Remove everything in the daemon's clone but its `.git`."""
    for entry in os.scandir(dest):
        if entry.name == ".git":
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


def _copy_regular(path: Path, target: Path) -> bool:
    """Copy one regular file, refusing to follow a link or open a FIFO swapped in after it was listed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            return False
        with open(target, "wb") as out:
            shutil.copyfileobj(fh, out)
    os.chmod(target, 0o755 if mode & stat.S_IXUSR else 0o644)
    return True


def import_work_tree(src: Path, dest: Path) -> list[str]:
    """Make `dest`'s work tree (everything but its `.git`) the same content as `src`'s; returns what was skipped
    (relative paths with the reason). Reads `src` without following any symbolic link."""
    src, dest = src.resolve(), dest.resolve()
    skipped: list[str] = []
    _clear(dest)
    for folder, dirs, files in os.walk(src, followlinks=False):
        here = Path(folder)
        rel_dir = here.relative_to(src)
        for name in [d for d in dirs if d == ".git"]:
            dirs.remove(name)
        for name in list(dirs):
            path = here / name
            if path.is_symlink():  # os.walk lists a link to a folder among the folders
                dirs.remove(name)
                files.append(name)
            else:
                (dest / rel_dir / name).mkdir(exist_ok=True)
        for name in files:
            if name == ".git":
                continue
            path, rel = here / name, (rel_dir / name).as_posix()
            mode = os.lstat(path).st_mode
            target = dest / rel_dir / name
            if stat.S_ISLNK(mode):
                if _inside(src, path):
                    os.symlink(os.readlink(path), target)
                else:
                    skipped.append(f"{rel} (symbolic link out of the workspace)")
            elif stat.S_ISREG(mode) and _copy_regular(path, target):
                continue
            else:
                skipped.append(f"{rel} (not a regular file)")
    return skipped
