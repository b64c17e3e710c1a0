"""Coverage report parsers: Cobertura XML, LCOV, coverage.py JSON."""

from __future__ import annotations

import json
from pathlib import Path

from tracker_bridge.scoring.coverage import find_report, parse_cobertura, parse_coverage_json, parse_lcov


def test_cobertura_adds_up_classes_of_one_file() -> None:
    xml = (
        "<coverage><packages><package><classes>"
        '<class filename="pkg/a.py"><lines><line number="1" hits="1"/><line number="2" hits="0"/></lines></class>'
        '<class filename="pkg/a.py"><lines><line number="5" hits="3"/></lines></class>'
        '<class filename="pkg/b.py"><lines><line number="1" hits="0"/></lines></class>'
        "</classes></package></packages></coverage>"
    )
    files = parse_cobertura(xml)

    assert (files["pkg/a.py"].covered, files["pkg/a.py"].total) == (2, 3)
    assert files["pkg/b.py"].rate == 0.0


def test_lcov_counts_hit_lines_per_source_file() -> None:
    files = parse_lcov("SF:src/x.ts\nDA:1,4\nDA:2,0\nDA:3,1\nend_of_record\nSF:src/y.ts\nDA:1,0\nend_of_record\n")

    assert (files["src/x.ts"].covered, files["src/x.ts"].total) == (2, 3)
    assert files["src/y.ts"].covered == 0


def test_coverage_json_uses_summary_or_line_lists() -> None:
    data = {
        "files": {
            "a.py": {"summary": {"covered_lines": 3, "num_statements": 4}},
            "b.py": {"executed_lines": [1, 2], "missing_lines": [3, 4, 5, 6]},
        }
    }
    files = parse_coverage_json(json.dumps(data))

    assert files["a.py"].rate == 0.75
    assert (files["b.py"].covered, files["b.py"].total) == (2, 6)


def test_find_report_matches_paths_relative_to_a_source_root(tmp_path: Path) -> None:
    (tmp_path / "coverage").mkdir()
    (tmp_path / "coverage" / "lcov.info").write_text("SF:/ci/build/src/app/main.py\nDA:1,1\nend_of_record\n")
    report = find_report(tmp_path)

    assert report is not None
    found = report.lookup("src/app/main.py")
    assert found is not None and found.rate == 1.0
    assert report.lookup("src/app/other.py") is None


def test_broken_report_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "coverage.xml").write_text("<coverage><not closed")

    assert find_report(tmp_path) is None
