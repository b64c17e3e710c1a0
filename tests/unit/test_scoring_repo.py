"""Repository analysis on a real git repository made in tmp_path: names resolved, tests found, coverage read."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tracker_bridge.config import ScoringConfig
from tracker_bridge.models import Score, Ticket
from tracker_bridge.scoring import score_ticket

INVOICE = '''"""Invoices."""


def invoice_total(lines, discount=0.0):
    subtotal = sum(line.qty * line.price for line in lines)
    return subtotal * (1 - discount)


class InvoiceNumber:
    prefix = "INV"
'''

TEST_INVOICE = """from billing.invoice import invoice_total


def test_empty_invoice_is_zero():
    assert invoice_total([]) == 0
"""

RATES = """def shipping_rate(weight_kg):
    return 5 + 2 * weight_kg
"""

MIGRATION = """def add_currency_column(schema):
    schema.add_column("invoice", "currency")
"""


def git(cwd: Path, *args: str) -> None:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "HOME": str(cwd),
        "PATH": "/usr/bin:/bin:/usr/local/bin",
    }
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    for rel, text in {
        "billing/__init__.py": "",
        "billing/invoice.py": INVOICE,
        "tests/test_invoice.py": TEST_INVOICE,
        "shipping/__init__.py": "",
        "shipping/rates.py": RATES,
        "billing/migrations/0007_currency.py": MIGRATION,
        "README.md": "Mentions shipping_rate in prose only.\n",
    }.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "shop")
    return root


def coverage(score: Score) -> tuple[float, str]:
    f = next(f for f in score.factors if f.name == "coverage")
    return f.value, f.reason


def ticket(title: str, description: str = "") -> Ticket:
    return Ticket(ref="SHOP-1", tracker="local", title=title, description=description)


COVERED = ticket("`invoice_total()` ignores the discount for one line", "Expected: 9.0 for a 10.0 line at 10%.")
UNTESTED = ticket("`shipping_rate()` overcharges heavy parcels", "Expected: 45 for 20 kg.")


def test_named_function_with_tests_is_found_and_credited(repo: Path) -> None:
    score = score_ticket(COVERED, ScoringConfig(), repo)

    value, reason = coverage(score)
    assert "billing/invoice.py" in reason
    assert "tests/test_invoice.py" in reason
    assert value >= 0.8


def test_untested_area_lowers_the_score_with_a_request_for_a_test(repo: Path) -> None:
    score = score_ticket(UNTESTED, ScoringConfig(threshold=0.99), repo)

    value, reason = coverage(score)
    assert value < 0.3
    assert "shipping/rates.py" in reason
    assert any("no tests for shipping/rates.py" in s and "add one or point to one" in s for s in score.suggestions)
    # The same text without a repository scores higher: the missing tests are what cost it.
    assert score_ticket(UNTESTED, ScoringConfig()).value > score.value


def test_a_named_folder_without_tests_is_named_in_the_suggestion(repo: Path) -> None:
    (repo / "shipping" / "zones.py").write_text("def zone_for(country):\n    return 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "zones")
    score = score_ticket(
        ticket("Rates in shipping/ ignore zones", "Expected: zone 2 costs more."), ScoringConfig(threshold=0.99), repo
    )

    assert any("no tests for shipping/" in s for s in score.suggestions)


def test_names_missing_from_the_repository_are_reported(repo: Path) -> None:
    score = score_ticket(ticket("`refund_order()` double-refunds", "Expected: one refund."), ScoringConfig(), repo)

    value, reason = coverage(score)
    assert "refund_order" in reason and "not found" in reason
    assert value < 0.5


def test_symbol_defined_in_a_migration_raises_the_risk(repo: Path) -> None:
    score = score_ticket(ticket("`add_currency_column()` picks the wrong type"), ScoringConfig(), repo)

    risk = next(f for f in score.factors if f.name == "risk")
    assert risk.value < 1.0
    assert "billing/migrations/0007_currency.py" in risk.reason


def write_cobertura(repo: Path, hits: list[int]) -> None:
    lines = "".join(f'<line number="{i + 1}" hits="{h}"/>' for i, h in enumerate(hits))
    (repo / "coverage.xml").write_text(
        '<?xml version="1.0" ?><coverage><sources><source>.</source></sources><packages><package name="billing">'
        f'<classes><class name="invoice.py" filename="billing/invoice.py"><lines>{lines}</lines></class></classes>'
        "</package></packages></coverage>"
    )


def test_cobertura_report_sets_the_coverage_value(repo: Path) -> None:
    write_cobertura(repo, [1] * 9 + [0])
    high_value, high_reason = coverage(score_ticket(COVERED, ScoringConfig(), repo))
    write_cobertura(repo, [1] + [0] * 9)
    low_value, low_reason = coverage(score_ticket(COVERED, ScoringConfig(), repo))

    assert "coverage.xml shows 90%" in high_reason
    assert "coverage.xml shows 10%" in low_reason
    assert high_value > low_value + 0.4


def test_lcov_report_is_read(repo: Path) -> None:
    (repo / "lcov.info").write_text(
        "TN:\nSF:billing/invoice.py\nDA:1,1\nDA:2,1\nDA:3,0\nDA:4,0\nend_of_record\n"
        "SF:shipping/rates.py\nDA:1,0\nend_of_record\n"
    )
    value, reason = coverage(score_ticket(COVERED, ScoringConfig(), repo))

    assert "lcov.info shows 50%" in reason
    assert value == pytest.approx(0.3 + 0.7 * 0.5)


def test_coverage_py_json_report_with_low_coverage_asks_for_a_test(repo: Path) -> None:
    report = {"files": {"billing/invoice.py": {"summary": {"covered_lines": 1, "num_statements": 20}}}}
    (repo / "coverage.json").write_text(json.dumps(report))
    score = score_ticket(COVERED, ScoringConfig(threshold=1.0), repo)

    value, reason = coverage(score)
    assert "coverage.json shows 5%" in reason
    assert value < 0.4
    assert any("Tests cover only 5% of billing/invoice.py" in s for s in score.suggestions)


def test_report_that_does_not_list_the_file_falls_back_to_tests_found(repo: Path) -> None:
    (repo / "lcov.info").write_text("SF:other/module.py\nDA:1,1\nend_of_record\n")
    value, reason = coverage(score_ticket(COVERED, ScoringConfig(), repo))

    assert "does not list these files" in reason
    assert value == pytest.approx(0.8)


def test_repo_analysis_off_or_not_a_repository(repo: Path, tmp_path: Path) -> None:
    off = score_ticket(COVERED, ScoringConfig(repo_analysis=False), repo)
    assert all(f.name != "coverage" for f in off.factors)

    plain_dir = tmp_path / "not-a-repo"
    plain_dir.mkdir()
    broken = score_ticket(COVERED, ScoringConfig(), plain_dir)
    value, reason = coverage(broken)
    assert "Repository not analysed" in reason
    assert value == 0.5


def test_repository_without_commits_is_searched_on_disk(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    (root / "billing").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "billing" / "invoice.py").write_text(INVOICE)
    (root / "tests" / "test_invoice.py").write_text(TEST_INVOICE)
    git(root, "init", "-q")

    value, reason = coverage(score_ticket(COVERED, ScoringConfig(), root))
    assert "tests/test_invoice.py" in reason
    assert value >= 0.8
