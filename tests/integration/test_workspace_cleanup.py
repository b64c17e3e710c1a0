"""Workspace cleanup against what a real journey leaves in the state store and the state folder."""

from __future__ import annotations

from tests.journey_helpers import Journey
from tracker_bridge.config import load_settings
from tracker_bridge.store import Store
from tracker_bridge.workspaces import cleanup, disk_bytes


def test_a_merged_tickets_clone_goes_and_its_traces_stay(journey: Journey) -> None:
    journey.run_once()
    settings = load_settings(journey.config)
    workspaces, runs = settings.state_dir / "workspaces", settings.state_dir / "runs"
    folders = sorted(workspaces.iterdir())  # the daemon's clone and the agent's copy of it
    assert [f.name for f in folders] == ["DEMO-1", "DEMO-1.agent"]
    folder = folders[0]
    store = Store(settings.state_url)
    try:
        assert cleanup(settings, store, at_start=True) == 0  # in review: the agent may iterate on it
        assert folder.is_dir()

        [branch] = journey.agent_branches()
        journey.merge(branch)
        journey.run_once()
        assert journey.column("DEMO-1") == "Done"
        used = disk_bytes(workspaces)
        freed = cleanup(settings, store)
        assert freed > 0 and disk_bytes(workspaces) <= used - freed
        assert not any(f.exists() for f in folders)
        assert any(runs.rglob("*")), "the run's trace must stay"
    finally:
        store.close()
