"""Repository analysis is cached per repository head: later tickets at one head reuse the index, a new head not."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tracker_bridge.config import ScoringConfig
from tracker_bridge.models import Ticket
from tracker_bridge.scoring import repo as repo_module
from tracker_bridge.scoring import score_ticket


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    (root / "billing").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "billing" / "invoice.py").write_text("def invoice_total(lines):\n    return sum(lines)\n")
    (root / "tests" / "test_invoice.py").write_text("from billing.invoice import invoice_total\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "init")
    return root


def ticket(title: str) -> Ticket:
    return Ticket(ref="C-1", tracker="t", title=title, description="Expected: the right total.")


def coverage_reason(t: Ticket, repo: Path) -> str:
    score = score_ticket(t, ScoringConfig(), repo)
    return next(f.reason for f in score.factors if f.name == "coverage")


def test_later_tickets_at_one_head_reuse_the_index(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "tests/test_invoice.py" in coverage_reason(ticket("`invoice_total()` is off"), repo)

    calls: list[tuple[str, ...]] = []
    real = repo_module._git

    def counting(repo_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        return real(repo_dir, *args)

    monkeypatch.setattr(repo_module, "_git", counting)
    reason = coverage_reason(ticket("`invoice_total()` drops discounts"), repo)

    assert "billing/invoice.py" in reason and "tests/test_invoice.py" in reason
    # Only the head is asked for: no listing, no grep for definitions or tests.
    assert [a[0] for a in calls] == ["rev-parse"]


def test_a_new_head_is_indexed_afresh(repo: Path) -> None:
    assert "Could not find" in coverage_reason(ticket("`shipping_rate()` overcharges"), repo)

    (repo / "billing" / "shipping.py").write_text("def shipping_rate(kg):\n    return kg * 2\n")
    git(repo, "add", "-A")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "shipping")

    reason = coverage_reason(ticket("`shipping_rate()` overcharges"), repo)
    assert "billing/shipping.py" in reason
