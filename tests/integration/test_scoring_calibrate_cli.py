"""`tracker-bridge calibrate` learns from the store's finished tickets; `doctor` says which weights are in use."""

from __future__ import annotations

import random

from starlette.testclient import TestClient

from tests.journey_helpers import Journey
from tracker_bridge.config import load_settings
from tracker_bridge.models import Factor, Score
from tracker_bridge.scoring.model import CALIBRATED_NAME, load_weights
from tracker_bridge.store import Store
from tracker_bridge.web import create_app


def seed_history(journey: Journey, n: int) -> None:
    """Finished tickets whose success followed the clarity factor."""
    settings = load_settings(journey.config)
    store = Store(settings.state_url)
    rng = random.Random(3)
    try:
        for i in range(n):
            clarity, scope = rng.random(), rng.random()
            score = Score(
                value=0.7,
                factors=[
                    Factor(name="scope", value=round(scope, 3), weight=0.6, reason="r"),
                    Factor(name="clarity", value=round(clarity, 3), weight=0.15, reason="r"),
                    Factor(name="kind", value=1.0, weight=0.15, reason="r"),
                    Factor(name="risk", value=1.0, weight=0.1, reason="r"),
                ],
            )
            merged = rng.random() < 0.1 + 0.8 * clarity
            store.get_or_create_ticket(
                "local",
                f"H-{i}",
                title="t",
                stage="done" if merged else "failed",
                pr_state="merged" if merged else None,
                score=0.7,
                score_json=score.model_dump_json(),
            )
        # Not finished yet, and declined: not outcomes.
        store.get_or_create_ticket(
            "local", "OPEN-1", stage="review", pr_state="open", score_json=score.model_dump_json()
        )
        store.get_or_create_ticket("local", "NO-1", stage="declined", score_json=score.model_dump_json())
    finally:
        store.close()


def test_calibrate_refits_from_history_and_doctor_shows_it(journey: Journey) -> None:
    doctor = journey.cli("doctor")
    assert "scoring: shipped weights" in doctor.output

    seed_history(journey, 150)
    dry = journey.cli("calibrate", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "refitted" in dry.output and "nothing written" in dry.output
    state_dir = load_settings(journey.config).state_dir
    assert not (state_dir / CALIBRATED_NAME).exists()

    result = journey.cli("calibrate")
    assert result.exit_code == 0, result.output
    assert "150" in result.output  # before/after on the 150 finished tickets
    written = load_weights(state_dir)
    assert written.outcomes == 150
    assert written.blend["clarity"] > load_weights().blend["clarity"]

    doctor = journey.cli("doctor")
    assert "scoring: calibrated weights from 150 outcomes" in doctor.output
    # The dashboard says the same.
    settings = load_settings(journey.config)
    store = Store(settings.state_url)
    try:
        page = TestClient(create_app(settings, store)).get("/").text
    finally:
        store.close()
    assert "scoring: calibrated weights from 150 outcomes" in page


def test_calibrate_without_history_writes_nothing(journey: Journey) -> None:
    result = journey.cli("calibrate")
    assert result.exit_code == 0, result.output
    assert "nothing to learn from" in result.output
    assert not (load_settings(journey.config).state_dir / CALIBRATED_NAME).exists()
