"""Poisoned ticket files on a local board: each is reported and skipped, and the good ticket still reaches review."""

from __future__ import annotations

from pathlib import Path

from tests.journey_helpers import make_journey
from tests.unit.test_local_tracker import POISONED, REASONS
from tracker_bridge.demo import GOOD_TICKET


def test_each_poisoned_file_is_reported_and_skipped_while_the_good_ticket_reaches_review(tmp_path: Path) -> None:
    journey = make_journey(tmp_path, tickets={"DEMO-1": GOOD_TICKET})
    for name, raw in POISONED.items():
        (journey.tickets / name).write_bytes(raw)

    result = journey.run_once()  # starts (no refusal because of a bad file) and finishes the cycle: exit 0

    assert journey.column("DEMO-1") == "In Review"
    assert len(journey.agent_branches()) == 1
    for ref, reason in REASONS.items():
        lines = [line for line in result.output.splitlines() if "ticket.unreadable" in line and ref in line]
        assert lines and reason in lines[0], (ref, result.output)
    # Nothing was written into the files it could not read.
    for name, raw in POISONED.items():
        assert (journey.tickets / name).read_bytes() == raw
    # doctor names them too, as skipped tickets, without failing the configuration.
    doctor = journey.cli("doctor")
    for ref in REASONS:
        assert ref in doctor.output
