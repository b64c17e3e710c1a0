"""What a new operator gets from `pip install <wheel>`: the commands work outside the repository, with only the
runtime dependencies, and the wheel installs no generic top-level package.

The wheel is built from a copy of the working tree (no network: `--no-build-isolation` with the dev extra's
setuptools) and installed into a fresh virtual environment that sees this environment's site-packages through a
`.pth` line (the already-installed dependencies, as a local wheelhouse would provide them). The development-only
packages are made unimportable there, so a shipped command that needs one of them fails this test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEV_ONLY = ("pytest", "_pytest", "graphql", "yaml", "jsonschema", "mypy", "ruff", "setuptools")
BLOCKER = f'''"""Development-only packages made unimportable, as where only the runtime dependencies are installed."""
import sys


class _DevOnly:
    names = {DEV_ONLY!r}

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"{{name}} is a development-only dependency", name=name)
        return None


sys.meta_path.insert(0, _DevOnly())
'''

pytestmark = pytest.mark.slow


def _copy_tree(dest: Path) -> None:
    ignore = shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info", "build", "dist", ".*_cache", "demo-*")
    shutil.copytree(ROOT, dest, symlinks=True, ignore=ignore)


def _run(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    done: subprocess.CompletedProcess[str] = subprocess.run(  # type: ignore[call-overload]
        args, capture_output=True, text=True, timeout=600, **kw
    )
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    _copy_tree(src)
    dist = tmp / "dist"
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dist),
         str(src)]
    )
    assert built.returncode == 0, built.stderr
    [wheel] = dist.glob("tracker_bridge-*.whl")

    venv = tmp / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    # This environment's packages, after the new one's own (so the wheel's tracker_bridge wins), minus dev-only ones.
    (site / "_tb_outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    (site / "_tb_dev_only.py").write_text(BLOCKER, encoding="utf-8")
    (site / "_tb_dev_only.pth").write_text("import _tb_dev_only\n", encoding="utf-8")
    install = _run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed",
         "--find-links", str(dist), str(wheel)],
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert install.returncode == 0, install.stderr
    return {"tmp": tmp, "venv": venv, "site": site, "wheel": wheel}


def _env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_the_wheel_installs_no_top_level_connectors_package(installed: dict[str, Path]) -> None:
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    tops = {n.split("/")[0] for n in names}
    assert "connectors" not in tops
    assert {"tracker_bridge", "tracker_bridge_connectors"} <= tops
    assert any(n.endswith("/licenses/LICENSE") for n in names)
    # The schema migrations ship with the package: an installed release upgrades its own store.
    assert {"tracker_bridge/migrations/env.py", "tracker_bridge/migrations/versions/0001_baseline.py"} <= set(names)
    assert not (installed["site"] / "connectors").exists()


def test_version_demo_and_python_m_doctor_work_from_the_installed_wheel(installed: dict[str, Path]) -> None:
    venv, tmp = installed["venv"], installed["tmp"]
    env = _env(venv)
    outside = tmp / "elsewhere"
    outside.mkdir()

    where = _run([str(venv / "bin" / "python"), "-c", "import tracker_bridge; print(tracker_bridge.__file__)"],
                 cwd=outside, env=env)
    assert where.stdout.strip().startswith(str(installed["site"])), where

    version = _run([str(venv / "bin" / "tracker-bridge"), "--version"], cwd=outside, env=env)
    assert version.returncode == 0 and version.stdout.strip() == "tracker-bridge 0.1.0", version

    demo = _run([str(venv / "bin" / "tracker-bridge"), "demo", "--dir", str(tmp / "demo")], cwd=outside, env=env)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "demo finished" in demo.stdout and "Traceback" not in demo.stderr

    example = tmp / "demo" / "example.toml"  # beside the demo's tickets/ and demo-repo/, which it names
    shutil.copy(ROOT / "config" / "tracker-bridge.example.toml", example)
    doctor = _run([str(venv / "bin" / "python"), "-m", "tracker_bridge", "doctor", "-c", str(example)],
                  cwd=outside, env={**env, "ANTHROPIC_API_KEY": "sk-test-not-used"})
    output = doctor.stdout + doctor.stderr
    assert "Traceback" not in output
    assert "tracker demo (local): ok" in output and "repository demo (local): ok" in output
    # The example's agent is claude-code: doctor passes where its CLI is installed, and says how to install it if not.
    if shutil.which("claude"):
        assert doctor.returncode == 0, output
    else:
        assert doctor.returncode == 2 and "npm install -g @anthropic-ai/claude-code" in output
