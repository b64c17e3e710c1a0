"""Webhook bodies are bounded while they are read: an oversized unsigned body is refused at the limit (413) without
the server holding it, and a small body is still checked against its signature before anything uses it."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tracker_bridge.config import load_settings
from tracker_bridge.store import Store
from tracker_bridge.web import create_app

SERVE = """
import sys
import uvicorn
from tracker_bridge.config import load_settings
from tracker_bridge.store import Store
from tracker_bridge.web import create_app
settings = load_settings(sys.argv[1], check_secrets=False)
uvicorn.run(create_app(settings, Store(settings.state_url)), host="127.0.0.1", port=int(sys.argv[2]),
            log_level="warning")
"""


def write_config(tmp_path: Path, web: str = "") -> Path:
    (tmp_path / "tickets").mkdir(exist_ok=True)
    config = tmp_path / "tracker-bridge.toml"
    config.write_text(
        f"""
[bridge]
state = "sqlite:///{tmp_path / "state.db"}"

[web]
enabled = true
{web}

[agent]
backend = "command"
command = "true"

[[trackers]]
name = "demo"
kind = "local"
url = "{tmp_path / "tickets"}"
"""
    )
    return config


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = tmp_path / "serve.py"
    script.write_text(SERVE)
    env = {**os.environ, "TRACKER_BRIDGE_WEBHOOK_SECRET": "s3cret"}
    proc = subprocess.Popen([sys.executable, str(script), str(write_config(tmp_path)), str(port)], env=env)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "the web server did not start"
            time.sleep(0.1)
    yield port, proc
    proc.terminate()
    proc.wait(timeout=10)


def test_a_300_mb_unsigned_body_is_refused_at_1_mib_without_growing_the_server(
    server: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, proc = server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/healthz")
    conn.getresponse().read()
    before = rss_kib(proc.pid)
    chunk = b"x" * (1024 * 1024)
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(300):
            sent += len(chunk)
            yield chunk

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    status = None
    try:
        # chunked, with no Content-Length: the server only learns the size by reading
        conn.request("POST", "/webhooks/demo", body=body(), encode_chunked=True,
                     headers={"Transfer-Encoding": "chunked", "X-Hub-Signature-256": "sha256=00"})  # fmt: skip
        status = conn.getresponse().status
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed while the client was still sending: refused, as it should be
    # refused: either the 413 reached the client, or the server closed the connection long before the end
    assert status == 413 or (status is None and sent < 300 * 1024 * 1024), (status, sent)
    grown_mib = (rss_kib(proc.pid) - before) / 1024
    assert grown_mib < 20, f"the server's RSS grew by {grown_mib:.1f} MiB"
    print(f"RSS before {before / 1024:.1f} MiB, grown by {grown_mib:.1f} MiB; client sent {sent >> 20} MiB")


def test_a_declared_oversized_body_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKER_BRIDGE_WEBHOOK_SECRET", "s3cret")
    settings = load_settings(write_config(tmp_path, "webhook_max_bytes = 2048"), check_secrets=False)
    http_ = TestClient(create_app(settings, Store(settings.state_url), wake=lambda: None))
    big = b"{" + b" " * 4096 + b"}"
    mac = "sha256=" + hmac.new(b"s3cret", big, hashlib.sha256).hexdigest()
    refused = http_.post("/webhooks/demo", content=big, headers={"X-Hub-Signature-256": mac})
    assert refused.status_code == 413 and "webhook_max_bytes" in refused.text
    small = b'{"action": "labeled"}'
    mac = "sha256=" + hmac.new(b"s3cret", small, hashlib.sha256).hexdigest()
    assert http_.post("/webhooks/demo", content=small, headers={"X-Hub-Signature-256": mac}).status_code == 202
    assert http_.post("/webhooks/demo", content=small, headers={"X-Hub-Signature-256": "sha256=00"}).status_code == 401
