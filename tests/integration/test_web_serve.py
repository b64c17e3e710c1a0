"""`tracker-bridge run` with the dashboard on: a port it cannot listen on stops the start; IPv6 addresses work."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.journey_helpers import Journey, make_journey


def _daemon(journey: Journey) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tracker_bridge.cli", "run", "-c", str(journey.config)],
        cwd=journey.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _web_journey(tmp_path: Path, listen: str) -> Journey:
    journey = make_journey(tmp_path, extra_config=f'\n[web]\nenabled = true\nlisten = "{listen}"\n')
    journey.config.write_text(journey.config.read_text().replace("poll_interval = 5", "poll_interval = 3600"))
    return journey


def test_a_busy_port_stops_the_start_with_exit_2(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        daemon = _daemon(_web_journey(tmp_path, f"127.0.0.1:{port}"))
        try:
            output, _ = daemon.communicate(timeout=60)
        finally:
            if daemon.poll() is None:
                daemon.kill()
    assert daemon.returncode == 2, output
    assert f"[web] listen = '127.0.0.1:{port}': cannot listen there" in output
    assert "Fix: stop the other process on that port or choose another port" in output
    assert "dashboard on" not in output and "Traceback" not in output


def _ipv6_loopback_port() -> int | None:
    if not socket.has_ipv6:
        return None
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
            return int(s.getsockname()[1])
    except OSError:
        return None


def test_an_ipv6_listen_address_serves_the_dashboard_and_probes(tmp_path: Path) -> None:
    port = _ipv6_loopback_port()
    if port is None:
        pytest.skip("this machine has no IPv6 loopback (::1)")
    daemon = _daemon(_web_journey(tmp_path, f"[::1]:{port}"))
    try:
        deadline = time.monotonic() + 120  # the first cycle runs the journey's agent; the machine may be busy
        while True:
            assert daemon.poll() is None, daemon.stdout.read() if daemon.stdout else ""
            if time.monotonic() > deadline:
                daemon.kill()
                pytest.fail("the dashboard never answered on [::1]:\n" + daemon.communicate()[0])
            try:
                if httpx.get(f"http://[::1]:{port}/readyz", timeout=2).status_code == 200:
                    break  # the first cycle polled the tracker
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        assert httpx.get(f"http://[::1]:{port}/healthz", timeout=5).json()["ok"] is True
        page = httpx.get(f"http://[::1]:{port}/", timeout=5)
        assert page.status_code == 200 and "last poll" in page.text
    finally:
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=30)
    assert f"dashboard on http://[::1]:{port}/" in output
