"""`tracker-bridge` commands as real processes, for the tests of what only a process shows (signals, leases,
replicas, workers): each writes its output to a log file the test reads as it goes, and `until` waits for what the
test expects to see there, with a bound, instead of sleeping blindly. The `procs` fixture (tests/conftest.py)
kills whatever a test leaves running."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

from tests.journey_helpers import Journey


class Proc:
    """`tracker-bridge <args> -c <the journey's config>`, e.g. `Proc(j, "run", "--standby", name="replica-a")`."""

    def __init__(self, journey: Journey, *args: str, name: str | None = None) -> None:
        self.name = name or f"{args[0]}-{time.monotonic_ns()}"
        self.log = journey.root / f"{self.name}.log"
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "tracker_bridge.cli", *args, "-c", str(journey.config)],
            cwd=journey.root, stdout=self.log.open("w"), stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    @property
    def output(self) -> str:
        return self.log.read_text()

    def signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


def until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Wait until `condition()` holds, at most `timeout` seconds; the seconds it took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        time.sleep(0.1)
    return time.monotonic() - started
