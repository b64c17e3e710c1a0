"""What an oversized webhook costs the server: its RSS growth while a large unsigned body is streamed at it.

    .venv/bin/python bench/webhook_body.py [MiB ...]

Starts the web app (uvicorn, as `run` serves it) in a child process, streams each body size (default 75 and 300 MiB)
chunked to POST /webhooks/<tracker> with a wrong signature, and prints the answer, how much the client got to send
and how much the server's resident memory grew. The body limit is `[web] webhook_max_bytes` (1 MiB by default).
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

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


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "tickets").mkdir()
        config = root / "tracker-bridge.toml"
        config.write_text(
            f'[bridge]\nstate = "sqlite:///{root / "state.db"}"\n[web]\nenabled = true\n'
            f'[agent]\nbackend = "command"\ncommand = "true"\n'
            f'[[trackers]]\nname = "demo"\nkind = "local"\nurl = "{root / "tickets"}"\n'
        )
        (root / "serve.py").write_text(SERVE)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "TRACKER_BRIDGE_WEBHOOK_SECRET": "bench"}
        proc = subprocess.Popen([sys.executable, str(root / "serve.py"), str(config), str(port)], env=env)
        try:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            for mib in sizes:
                before = rss_mib(proc.pid)
                sent = 0

                def body(n: int = mib) -> Iterator[bytes]:
                    nonlocal sent
                    chunk = b"x" * (1024 * 1024)
                    for _ in range(n):
                        sent += len(chunk)
                        yield chunk

                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                started = time.perf_counter()
                try:
                    headers = {"Transfer-Encoding": "chunked", "X-Hub-Signature-256": "sha256=00"}
                    conn.request("POST", "/webhooks/demo", body=body(), encode_chunked=True, headers=headers)
                    status: object = conn.getresponse().status
                except (BrokenPipeError, ConnectionResetError) as exc:
                    status = f"connection closed ({exc.__class__.__name__})"
                took = time.perf_counter() - started
                grown = rss_mib(proc.pid) - before
                print(f"{mib:>4} MiB body: answer {status}, client sent {sent >> 20} MiB in {took:.2f} s, "
                      f"server RSS {before:.1f} MiB -> grew {grown:+.1f} MiB")  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [75, 300])
