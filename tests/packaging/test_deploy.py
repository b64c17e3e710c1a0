"""The deployment files: the systemd unit passes `systemd-analyze verify`, and the container image is built the way
the README says (non-root, bubblewrap and git inside, the CLI as entrypoint). Building the image needs the package
registries, which the tests may not reach, so the Dockerfile is checked by reading it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "tracker-bridge.service"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    # The unit names the install location of the README (/opt/tracker-bridge); verify checks that the command
    # exists, so the copy points at this environment's console script instead.
    script = Path(sys.executable).parent / "tracker-bridge"
    assert script.exists(), "the project is not installed in this environment"
    text = UNIT.read_text(encoding="utf-8")
    assert "/opt/tracker-bridge/bin/tracker-bridge run -c /etc/tracker-bridge/tracker-bridge.toml" in text
    unit = tmp_path / "tracker-bridge.service"
    unit.write_text(text.replace("/opt/tracker-bridge/bin/tracker-bridge", str(script)), encoding="utf-8")
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120
    )
    # verify reports a mistyped setting on stderr and still exits 0: any line about the unit is a failure.
    complaints = [line for line in proc.stderr.splitlines() if "tracker-bridge.service" in line]
    assert proc.returncode == 0 and complaints == [], proc.stderr


def test_a_configuration_error_does_not_restart_the_unit_in_a_loop() -> None:
    text = UNIT.read_text(encoding="utf-8")
    assert "Restart=on-failure" in text and "RestartPreventExitStatus=2" in text


def _instructions() -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    joined = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            lines.append((word.upper(), rest.strip()))
    return lines


def test_the_image_runs_the_cli_as_a_non_root_user_with_bubblewrap_and_git() -> None:
    final = _instructions()
    last_from = max(i for i, (word, _) in enumerate(final) if word == "FROM")
    stage = final[last_from:]
    users = [rest for word, rest in stage if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    installs = " ".join(rest for word, rest in stage if word == "RUN" and "apt-get install" in rest)
    assert "bubblewrap" in installs and "git" in installs.split()
    assert ("ENTRYPOINT", '["tracker-bridge"]') in stage

