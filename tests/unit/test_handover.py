"""The agent's work tree becomes the daemon's clone's content: files, modes and safe links; never `.git`, links out
of the tree or special files."""

from __future__ import annotations

import os
from pathlib import Path

from tests.agent_fixtures import make_repo
from tracker_bridge.agents.handover import import_work_tree, make_agent_workspace
from tracker_bridge.gitutil import git


def test_the_work_tree_is_copied_as_content_only(tmp_path: Path) -> None:
    daemon = make_repo(tmp_path / "daemon")
    work = tmp_path / "work"
    make_agent_workspace(daemon, work, "main")
    assert git(work, "remote") == ""  # nothing points back into the daemon's folders
    (work / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (work / "test_calc.py").unlink()
    (work / "tool.sh").write_text("#!/bin/sh\necho hi\n")
    (work / "tool.sh").chmod(0o755)
    (work / "pkg").mkdir()
    (work / "pkg" / ".git").write_text("gitdir: /somewhere/else\n")  # a submodule's gitfile
    (work / "pkg" / "mod.py").write_text("X = 1\n")
    (work / "docs").mkdir()
    os.symlink("../calc.py", work / "docs" / "calc-link.py")  # inside the tree: kept as a link
    os.symlink("/etc/passwd", work / "passwd")  # out of the tree: skipped
    os.symlink("../../outside", work / "docs" / "escape")  # out of the tree through `..`: skipped
    os.symlink("/etc", work / "etc-dir")  # a link to a folder out of the tree: skipped, not followed
    os.mkfifo(work / "pipe")
    (work / ".git" / "hooks" / "post-commit").write_text("#!/bin/sh\ntouch /tmp/never\n")
    (daemon / "stale.txt").write_text("left in the daemon's clone")

    skipped = import_work_tree(work, daemon)

    assert sorted(skipped) == [
        "docs/escape (symbolic link out of the workspace)",
        "etc-dir (symbolic link out of the workspace)",
        "passwd (symbolic link out of the workspace)",
        "pipe (not a regular file)",
    ]
    assert (daemon / "calc.py").read_text().endswith("a + b\n")
    assert not (daemon / "test_calc.py").exists() and not (daemon / "stale.txt").exists()
    assert os.access(daemon / "tool.sh", os.X_OK)
    assert (daemon / "pkg" / "mod.py").is_file() and not (daemon / "pkg" / ".git").exists()
    assert os.readlink(daemon / "docs" / "calc-link.py") == "../calc.py"
    assert not (daemon / ".git" / "hooks" / "post-commit").exists()  # the daemon's own .git is untouched
    git(daemon, "add", "-A")
    status = git(daemon, "status", "--porcelain")
    assert "tool.sh" in status and "pkg/mod.py" in status and "test_calc.py" in status
