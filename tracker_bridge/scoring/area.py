"""The test-coverage factor: are there tests around the code the ticket names, and how much do they cover?

An agent's change is only as trustworthy as the tests that check it. Built from `repo.RepoArea`.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from tracker_bridge.models import Factor
from tracker_bridge.scoring.factors import WEIGHTS, Assessment
from tracker_bridge.scoring.repo import RepoArea

TESTS_NO_REPORT = 0.8  # tests found, no report to say how much they cover
NO_TESTS = 0.15
UNRESOLVED = 0.4  # nothing the ticket names could be found: the agent will have to search


def _code(items: tuple[str, ...] | list[str], limit: int = 3) -> str:
    shown = ", ".join(f"`{i}`" for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _area_name(files: tuple[str, ...]) -> str:
    """billing/invoice.py and billing/tax.py -> `billing/`; a single file -> that file."""
    if len(files) == 1:
        return files[0]
    parents = {str(PurePosixPath(f).parent) for f in files}
    if len(parents) == 1:
        parent = parents.pop()
        return parent + "/" if parent != "." else files[0]
    return ", ".join(files[:3])


def coverage_factor(area: RepoArea) -> Assessment:
    weight = WEIGHTS["coverage"]
    if area.error:
        return Assessment(
            Factor(name="coverage", value=0.5, weight=weight, reason=f"Repository not analysed: {area.error}.")
        )
    if not area.files:
        searched = _code(list(area.unresolved)) if area.unresolved else "nothing it names"
        return Assessment(
            Factor(
                name="coverage",
                value=UNRESOLVED,
                weight=weight,
                reason=f"Could not find the code in the repository ({searched} not found at the base branch).",
            ),
            ("Name the file or function to change as it appears in the repository, e.g. `src/billing/invoice.py`.",),
        )
    where = _area_name(area.files)
    if not area.tests:
        return Assessment(
            Factor(
                name="coverage",
                value=NO_TESTS,
                weight=weight,
                reason=f"No tests found for {_code(list(area.files))}: nothing would catch a wrong change.",
            ),
            (f"There are no tests for {where}; add one or point to one that exercises it.",),
        )
    covered, total, known = area.coverage_of_files()
    tests = _code(list(area.tests), 2)
    if area.report is None or not known:
        note = "" if area.report is None else f" ({area.report.path.name} does not list these files)"
        return Assessment(
            Factor(
                name="coverage",
                value=TESTS_NO_REPORT,
                weight=weight,
                reason=f"{_code(list(area.files))} exercised by {tests}; no coverage figures{note}.",
            )
        )
    rate = covered / total if total else 0.0
    value = round(0.3 + 0.7 * rate, 3)
    reason = f"{_code(known)} exercised by {tests}; {area.report.path.name} shows {rate:.0%} of its lines covered."
    suggestions: tuple[str, ...] = ()
    if rate < 0.5:
        suggestions = (f"Tests cover only {rate:.0%} of {where}; add a test for the behaviour the ticket changes.",)
    return Assessment(Factor(name="coverage", value=value, weight=weight, reason=reason), suggestions)
