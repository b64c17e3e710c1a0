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
    # No git at all: the head is read from .git, and no listing or grep for definitions or tests is run again.
    assert calls == []


def test_a_new_head_is_indexed_afresh(repo: Path) -> None:
    assert "Could not find" in coverage_reason(ticket("`shipping_rate()` overcharges"), repo)

    (repo / "billing" / "shipping.py").write_text("def shipping_rate(kg):\n    return kg * 2\n")
    git(repo, "add", "-A")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "shipping")

    reason = coverage_reason(ticket("`shipping_rate()` overcharges"), repo)
    assert "billing/shipping.py" in reason


def test_the_head_is_read_from_packed_refs_and_a_detached_head(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "pack-refs", "--all")  # the branch now lives in .git/packed-refs only
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    assert repo_module._head_from_files(repo) == head
    git(repo, "checkout", "-q", "--detach")
    assert repo_module._head_from_files(repo) == head


def test_an_unborn_branch_falls_back_to_git(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "billing.py").write_text("def invoice_total(lines):\n    return sum(lines)\n")
    assert repo_module._head_from_files(root) is None
    # Without a commit the files on disk are searched, as before.
    assert "billing.py" in coverage_reason(ticket("`invoice_total()` is off"), root)


def test_the_indexed_test_lookup_finds_what_the_full_pass_finds() -> None:
    files = [
        "billing/invoice.py",
        "billing/tests/test_totals.py",
        "tests/billing/test_x.py",
        "tests/test_invoice.py",
        "web/invoice.spec.ts",
        "pkg/invoice_test.go",
        "tests/billing/helpers.py",
        "docs/billing/test_notes.py",
    ]
    tests = [f for f in files if repo_module.is_test_path(f)]
    index = repo_module.HeadIndex("h", files, tests, stems=repo_module.test_stems(tests))
    index.build_lookups()
    for sources in (["billing/invoice.py"], ["web/invoice.ts", "billing/invoice.py"], ["other.py"]):
        assert index.tests_by_name(sources) == repo_module._tests_by_name(sources, tests)
    assert index.tests_by_name(["billing/invoice.py"]) == [
        "billing/tests/test_totals.py",
        "tests/billing/test_x.py",
        "tests/test_invoice.py",
        "web/invoice.spec.ts",
        "pkg/invoice_test.go",
        "docs/billing/test_notes.py",
    ]
