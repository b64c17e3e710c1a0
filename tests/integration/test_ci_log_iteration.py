"""A failing CI job's log reaches the agent: on the GitHub and GitLab simulators, after a check fails on the agent's
pull request, the iteration's prompt file ($TRACKER_BRIDGE_PROMPT_FILE, what a `command` agent reads) carries the
end of the failed job's log, framed as data, cleaned of timestamps and terminal colours."""

# ruff: noqa: F811 (fixtures imported from the journey tests are parameters of the tests)
from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_github_iteration import in_review, start
from tests.integration.test_github_journey import World, world  # noqa: F401 (a fixture)
from tests.integration.test_gitlab_journey import Daemon as GitLabDaemon
from tests.integration.test_gitlab_journey import calc_in_review, daemon, gitlab, list_of  # noqa: F401 (fixtures)
from tests.journey_helpers import use_agent_script

# The agent keeps every prompt it was given (the journey's fix included, a no-op once the branch has it).
PROMPT_KEEPER = """import os, pathlib
calc = pathlib.Path("calc.py")
calc.write_text(calc.read_text().replace("a - b", "a + b"))
prompt = pathlib.Path(os.environ["TRACKER_BRIDGE_PROMPT_FILE"]).read_text(encoding="utf-8")
kept = pathlib.Path({kept!r})
kept.mkdir(exist_ok=True)
(kept / f"prompt-{{len(list(kept.iterdir())) + 1}}.txt").write_text(prompt, encoding="utf-8")
pathlib.Path("PROMPT_SEEN.txt").write_text(prompt, encoding="utf-8")  # a change to push, as a fix would be
"""

FAILURE = "FAILED tests/test_calc.py::test_add_negative - assert -1 == -5"
GITHUB_LOG = "".join(f"2026-11-30T10:00:{i:02d}.0000000Z installing package {i}\n" for i in range(40)) + (
    f"2026-11-30T10:01:00.0000000Z {FAILURE}\n"
    "2026-11-30T10:01:01.0000000Z ##[error]Process completed with exit code 1.\n"
)
GITLAB_TRACE = (
    "section_start:1700000000:prepare_script\r\x1b[0K\x1b[36;1mPreparing environment\x1b[0;m\n"
    + "".join(f"Collecting package {i}\n" for i in range(40))
    + f"\x1b[31;1m{FAILURE}\x1b[0;m\nsection_end:1700000001:prepare_script\r\x1b[0K\nERROR: Job failed: exit code 1\n"
)


def prompts(kept: Path) -> list[str]:
    return [p.read_text() for p in sorted(kept.iterdir(), key=lambda p: int(p.stem.split("-")[1]))]


def test_github_a_failed_actions_jobs_log_tail_reaches_the_iteration_prompt(
    tmp_path: Path, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = start(tmp_path, world, monkeypatch)
    issue, pr, head = in_review(world, daemon)  # the first run, with the journey's feedback-committing agent
    kept = tmp_path / "prompts"
    use_agent_script(tmp_path, monkeypatch, PROMPT_KEEPER.format(kept=str(kept)), "keeper.py")

    world.gh.add_check_run(head, "unit tests", conclusion="failure", title="unit tests: 1 failed", log=GITHUB_LOG)
    daemon.cycle()

    [prompt] = prompts(kept)
    feedback = prompt.split("<feedback>", 1)[1].split("</feedback>", 1)[0]
    assert FAILURE in feedback and "Process completed with exit code 1." in feedback
    assert "The CI check `unit tests` failed" in feedback
    assert "2026-11-30T10:01:00" not in feedback  # GitHub's timestamps are cleaned off
    assert world.gh.column(issue) == "In Review" and pr.head_sha != head


def test_gitlab_a_failed_jobs_trace_tail_reaches_the_iteration_prompt(
    tmp_path: Path, daemon: GitLabDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = daemon.world
    sim, p = world.sim, world.project
    kept = tmp_path / "prompts"
    use_agent_script(tmp_path, monkeypatch, PROMPT_KEEPER.format(kept=str(kept)), "keeper.py")
    issue, mr = calc_in_review(daemon)

    sim.set_pipeline(p, mr.iid, "failed", jobs={"build": "success", "test": "failed"}, traces={"test": GITLAB_TRACE})
    daemon.cycle()

    first, second = prompts(kept)
    assert FAILURE not in first
    feedback = second.split("<feedback>", 1)[1].split("</feedback>", 1)[0]
    assert FAILURE in feedback and "ERROR: Job failed: exit code 1" in feedback
    assert "The CI check `test` failed" in feedback
    assert "\x1b[" not in feedback and "section_start" not in feedback  # colours and section markers cleaned off
    assert list_of(issue) == "workflow::In Review"
