"""The scorer's checkout of a remote repository follows the base branch instead of freezing at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.journey_helpers import make_journey
from tracker_bridge import engine as engine_mod
from tracker_bridge.config import load_settings
from tracker_bridge.engine import build_engine
from tracker_bridge.gitutil import git
from tracker_bridge.store import Store
from tracker_bridge_connectors.local_git import LocalGitHost


def test_the_checkout_is_cloned_again_once_it_is_older_than_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journey = make_journey(tmp_path)
    settings = load_settings(journey.config)
    store = Store(settings.state_url)
    engine = build_engine(settings, store)
    # Score as for a remote host: the repository is reached only by cloning it (real git, no shortcut to the path).
    engine.settings.repos[0].host = "github"
    engine.hosts["demo"] = LocalGitHost("demo", journey.repo, "main")

    first = engine._repo_checkout("demo")
    assert first is not None and first.parent.name == "mirrors"
    (journey.repo / "billing.py").write_text("def total(): return 0\n")
    git(journey.repo, "add", "-A")
    git(journey.repo, "commit", "-q", "-m", "billing")

    assert engine._repo_checkout("demo") == first and not (first / "billing.py").exists()  # fresh enough: reused
    monkeypatch.setattr(engine_mod, "MIRROR_MAX_AGE_S", 0.0)
    again = engine._repo_checkout("demo")
    assert again is not None and (again / "billing.py").exists()  # too old: cloned anew, so it sees the commit
    engine.shutdown()
    store.close()
