"""`tracker-bridge run` as a daemon: it polls on its own schedule and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.journey_helpers import make_journey


def test_daemon_polls_until_the_ticket_is_in_review_then_stops_on_sigterm(tmp_path: Path) -> None:
    journey = make_journey(tmp_path)
    journey.config.write_text(journey.config.read_text().replace("poll_interval = 5", "poll_interval = 0.5"))
    daemon = subprocess.Popen(
        [sys.executable, "-m", "tracker_bridge.cli", "run", "-c", str(journey.config)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while journey.column("DEMO-1") != "In Review":
            assert daemon.poll() is None, daemon.stdout.read() if daemon.stdout else ""
            assert time.monotonic() < deadline, "the ticket never reached review"
            time.sleep(0.2)
        # A merge is noticed on a later poll, without restarting anything.
        [branch] = journey.agent_branches()
        journey.merge(branch)
        while journey.column("DEMO-1") != "Done":
            assert time.monotonic() < deadline, "the merge was never noticed"
            time.sleep(0.2)
    finally:
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, output
    assert "daemon.stopping" in output and "SIGTERM" in output
    assert journey.comment_count("DEMO-1") == 1


def test_a_signed_webhook_makes_the_daemon_poll_at_once(tmp_path: Path) -> None:
    import hashlib
    import hmac
    import os
    import socket

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    journey = make_journey(tmp_path, extra_config=f'\n[web]\nenabled = true\nlisten = "127.0.0.1:{port}"\n')
    journey.config.write_text(journey.config.read_text().replace("poll_interval = 5", "poll_interval = 3600"))
    daemon = subprocess.Popen(
        [sys.executable, "-m", "tracker_bridge.cli", "run", "-c", str(journey.config)],
        cwd=tmp_path,
        env={**os.environ, "TRACKER_BRIDGE_WEBHOOK_SECRET": "s3cret"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while journey.column("DEMO-1") != "In Review":  # the first cycle runs at start
            assert daemon.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        [branch] = journey.agent_branches()
        journey.merge(branch)
        time.sleep(1.0)
        assert journey.column("DEMO-1") == "In Review"  # an hour until the next poll...
        body = b'{"event": "merged"}'
        signature = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        response = httpx.post(
            f"http://127.0.0.1:{port}/webhooks/demo", content=body, headers={"X-Hub-Signature-256": signature}
        )
        assert response.status_code == 202
        while journey.column("DEMO-1") != "Done":  # ...but the webhook woke it
            assert time.monotonic() < deadline, "the webhook did not wake the daemon"
            time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/api/tickets").json()[0]["stage"] == "done"
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=30)
    assert daemon.returncode == 0
