from __future__ import annotations

from pathlib import Path

import pytest

from tests.journey_helpers import Journey, make_journey


@pytest.fixture(autouse=True)
def _no_stray_config(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own TRACKER_BRIDGE__* overrides must not change what a test sees.
    import os

    for key in list(os.environ):
        if key.startswith("TRACKER_BRIDGE"):
            monkeypatch.delenv(key, raising=False)


@pytest.fixture
def journey(tmp_path: Path) -> Journey:
    return make_journey(tmp_path)
