"""The dashboard in a real headless Chromium (Debian's chromium + chromedriver, driven by selenium).

The state is a real journey's (DEMO-1 reviewed with a real trace and test run, DEMO-2 declined) plus a ticket whose
run is under way, written the way the engine writes it, so the live panel has something to follow. Screenshots of
the dashboard, a ticket page and a trace are saved under the test's temporary folder.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.journey_helpers import Journey
from tracker_bridge.agents.trace import TraceWriter
from tracker_bridge.config import load_settings
from tracker_bridge.control import Controls
from tracker_bridge.models import Stage
from tracker_bridge.store import Store, utcnow
from tracker_bridge.web import bind_socket, create_app, serve_in_thread

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
TOKEN = "browser-test-token"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver packages (apt-get install chromium chromium-driver)",
)


@pytest.fixture
def browser() -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    assert CHROMIUM is not None and CHROMEDRIVER is not None
    options.binary_location = CHROMIUM
    # --no-sandbox: CI containers run as root, where Chromium's own sandbox cannot start.
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def seed_running_ticket(store: Store, root: Path) -> tuple[int, int]:
    """A run under way, as the engine leaves it: a running ticket, a running run, usage and a progress line."""
    row, _ = store.get_or_create_ticket(
        "demo",
        "DEMO-3",
        title="Add a --dry-run flag to the export command",
        stage=Stage.RUNNING.value,
        branch="agent/DEMO-3-add-a-dry-run-flag",
        repo="repo",
        score=0.82,
    )
    trace = root / "runs" / "DEMO-3" / "attempt-1.jsonl"
    writer = TraceWriter(trace)
    writer.write("workspace", path=str(root / "ws"), branch="agent/DEMO-3-add-a-dry-run-flag", start="abc1234")
    writer.write("agent_start", backend="anthropic", model="claude-sonnet-4-5")
    writer.write("turn", turn=1, input_tokens=4210, output_tokens=380, cost_usd=0.0183, text="I'll read export.py.")
    writer.write("tool_call", tool="read_file", id="t1", input={"path": "export.py"})
    writer.write("tool_result", tool="read_file", id="t1", is_error=False, output="def export(rows):\n    ...\n")
    writer.write("turn", turn=2, input_tokens=5120, output_tokens=512, cost_usd=0.0230)
    writer.write("tool_call", tool="run", id="t2", input={"command": "pytest -q"})
    writer.write("tool_result", tool="run", id="t2", is_error=True, output="1 failed, 11 passed\nE  assert 3 == 4")
    run = store.start_run(row.id, backend="anthropic", branch=row.branch, workspace=str(root / "ws"), trace_path="")
    store.update_run(run.id, trace_path=str(trace), turns=2, input_tokens=9330, output_tokens=892, cost_usd=0.0413,
                     started_at=utcnow() - timedelta(minutes=3))
    store.update_ticket(row.id, progress="turn 2: running pytest -q")
    for ref, title, score in (("DEMO-4", "Export fails on empty tables", 0.77), ("DEMO-5", "Typo in --help", 0.91)):
        store.get_or_create_ticket("demo", ref, title=title, stage=Stage.QUEUED.value, score=score)
    # Some history for the 30-day spend chart.
    for days_ago, cost, outcome in ((1, 1.80, "succeeded"), (3, 0.95, "tests_failed"), (8, 2.40, "succeeded")):
        old, _ = store.get_or_create_ticket("demo", f"OLD-{days_ago}", title=f"An older ticket ({days_ago}d)",
                                            stage=Stage.DONE.value)
        past = store.start_run(old.id, backend="anthropic", branch=f"agent/OLD-{days_ago}", workspace="", trace_path="")
        started = utcnow() - timedelta(days=days_ago)
        store.update_run(past.id, status="finished", outcome=outcome, cost_usd=cost, turns=7, started_at=started,
                         finished_at=started + timedelta(minutes=6, seconds=12))
    return row.id, run.id


def full_page_screenshot(driver: Any, path: Path) -> None:
    """The whole page, not only the window (Chrome DevTools: capture beyond the viewport)."""
    width, height = driver.execute_script(
        "return [window.innerWidth, document.documentElement.scrollHeight]"
    )
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        },
    )
    path.write_bytes(base64.b64decode(shot["data"]))


def test_the_dashboard_follows_a_run_and_a_control_works_in_chromium(
    journey: Journey, browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    journey.run_once()
    monkeypatch.setenv("TRACKER_BRIDGE_API_TOKEN", TOKEN)
    settings = load_settings(journey.config)
    store = Store(settings.state_url)
    ticket_id, run_id = seed_running_ticket(store, tmp_path / "state")
    sock = bind_socket("127.0.0.1", 0)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = serve_in_thread(create_app(settings, store), sock)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    wait = WebDriverWait(browser, 20, poll_frequency=0.2)

    def now_text() -> str:
        return str(browser.find_element(By.ID, "now").text)

    try:
        browser.get(base + "/")
        assert "DEMO-3" in now_text() and "turn 2: running pytest -q" in now_text()
        assert "Add a --dry-run flag" in now_text()
        main = browser.find_element(By.TAG_NAME, "main").text
        assert "DEMO-1" in main  # a recent outcome
        assert main.index("DEMO-5") < main.index("DEMO-4")  # the queue, best score first
        assert browser.find_elements(By.CSS_SELECTOR, "svg.chart rect")  # the 30-day spend chart
        full_page_screenshot(browser, shots / "dashboard.png")

        # The run goes on: the panel follows without a reload of the page.
        browser.execute_script("window.__same_page = true")
        store.update_run(run_id, turns=3, input_tokens=15000, output_tokens=1400, cost_usd=0.0731)
        store.update_ticket(ticket_id, progress="turn 3: editing export.py")
        wait.until(lambda _: "turn 3: editing export.py" in now_text())
        row = browser.find_element(By.CSS_SELECTOR, '#now tr[data-ref="DEMO-3"]')
        assert row.find_element(By.CLASS_NAME, "turns").text == "3"
        assert row.find_element(By.CLASS_NAME, "cost").text == "$0.07"
        assert browser.execute_script("return window.__same_page") is True

        # A control without the right token is refused and records nothing...
        token = browser.find_element(By.ID, "api-token")
        token.send_keys("wrong-token")
        browser.find_element(By.ID, "pause").click()
        wait.until(lambda _: "Pause:" in browser.find_element(By.ID, "control-result").text)
        assert "Bearer" in browser.find_element(By.ID, "control-result").text
        assert Controls(store).pending() == []
        # ...and with it, Pause records a pause and the dashboard says so.
        token.clear()
        token.send_keys(TOKEN)
        browser.find_element(By.ID, "pause").click()
        wait.until(lambda _: browser.find_element(By.ID, "paused-flag").text == "paused")
        assert "paused" in now_text()
        assert [(c.kind, c.requested_by) for c in Controls(store).pending()] == [("pause", "web")]
        browser.get(base + "/")
        assert browser.find_element(By.ID, "paused-flag").text == "paused"  # the store, not the page, remembers

        # The ticket page: title, pull request, branch, test output, the score's factors, the timeline.
        browser.get(base + "/tickets/demo/DEMO-1")
        page = browser.find_element(By.TAG_NAME, "main").text
        assert "Slugify" in page or "slugify" in page
        pr = browser.find_element(By.CSS_SELECTOR, "#pr a").get_attribute("href")
        assert pr and pr == store.ticket("demo", "DEMO-1").pr_url  # type: ignore[union-attr]
        assert browser.find_element(By.CSS_SELECTOR, "#branch code").text.startswith("agent/DEMO-1")
        assert "passed" in browser.find_element(By.CSS_SELECTOR, "details.tests summary").text
        assert "clarity" in browser.find_element(By.CSS_SELECTOR, "table.factors").text
        assert "pull request opened" in browser.find_element(By.CSS_SELECTOR, "ol.timeline").text
        full_page_screenshot(browser, shots / "ticket.png")

        # The trace viewer: turns, tool calls and their outputs, folded until opened.
        browser.get(base + f"/runs/{run_id}/trace")
        turns = browser.find_elements(By.CSS_SELECTOR, "section.turn h3")
        assert [t.text.split(" ")[0:2] for t in turns][-2:] == [["Turn", "1"], ["Turn", "2"]]
        failed = browser.find_element(By.CSS_SELECTOR, "details.step.tool_result.error")
        assert failed.get_attribute("open") is None
        assert not failed.find_element(By.TAG_NAME, "pre").is_displayed()
        failed.find_element(By.TAG_NAME, "summary").click()
        assert "assert 3 == 4" in failed.find_element(By.TAG_NAME, "pre").text
        full_page_screenshot(browser, shots / "trace.png")
    finally:
        server.should_exit = True
        store.close()
    assert sorted(p.name for p in shots.iterdir()) == ["dashboard.png", "ticket.png", "trace.png"]
