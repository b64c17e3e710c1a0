"""Reading coverage reports a repository already has: Cobertura XML, LCOV and coverage.py JSON.

Each parser returns {path: FileCoverage}; `find_report` looks for the usual file names in the checkout. Nothing
here runs tests: tracker-bridge only reads what CI or a developer left behind, so scoring stays fast and offline.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

# Where tools write their reports by default, most specific first.
REPORT_NAMES: tuple[str, ...] = (
    "coverage.xml",
    "cobertura.xml",
    "coverage/cobertura-coverage.xml",
    "lcov.info",
    "coverage/lcov.info",
    "coverage.json",
    "coverage/coverage.json",
)
# A report larger than this is skipped rather than slowing every score down.
MAX_REPORT_BYTES = 20_000_000


@dataclass(frozen=True)
class FileCoverage:
    covered: int
    total: int

    @property
    def rate(self) -> float:
        return self.covered / self.total if self.total else 0.0


@dataclass(frozen=True)
class CoverageReport:
    path: Path
    files: dict[str, FileCoverage]

    def lookup(self, repo_path: str) -> FileCoverage | None:
        """Coverage of a repository path; reports often name files relative to a source root, so match suffixes."""
        if repo_path in self.files:
            return self.files[repo_path]
        for name, cov in self.files.items():
            norm = name.replace("\\", "/").lstrip("./")
            if norm == repo_path or repo_path.endswith("/" + norm) or norm.endswith("/" + repo_path):
                return cov
        return None


def parse_cobertura(text: str) -> dict[str, FileCoverage]:
    root = ET.fromstring(text)
    files: dict[str, FileCoverage] = {}
    for cls in root.iter("class"):
        name = cls.get("filename")
        if not name:
            continue
        lines = [ln for ln in cls.iter("line") if ln.get("number")]
        covered = sum(1 for ln in lines if int(ln.get("hits", "0") or 0) > 0)
        prev = files.get(name)
        # Cobertura splits a file into one <class> per class; add them up.
        files[name] = FileCoverage(
            covered=covered + (prev.covered if prev else 0), total=len(lines) + (prev.total if prev else 0)
        )
    return files


def parse_lcov(text: str) -> dict[str, FileCoverage]:
    files: dict[str, FileCoverage] = {}
    name: str | None = None
    covered = total = 0
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("SF:"):
            name, covered, total = line[3:], 0, 0
        elif line.startswith("DA:") and name is not None:
            parts = line[3:].split(",")
            total += 1
            covered += len(parts) > 1 and parts[1].strip() not in ("0", "")
        elif line == "end_of_record" and name is not None:
            files[name] = FileCoverage(covered=covered, total=total)
            name = None
    return files


def parse_coverage_json(text: str) -> dict[str, FileCoverage]:
    data = json.loads(text)
    files: dict[str, FileCoverage] = {}
    for name, entry in (data.get("files") or {}).items():
        summary = entry.get("summary") or {}
        covered = int(summary.get("covered_lines", len(entry.get("executed_lines", []))))
        total = int(summary.get("num_statements", covered + len(entry.get("missing_lines", []))))
        files[name] = FileCoverage(covered=covered, total=total)
    return files


def parse_report(path: Path) -> CoverageReport | None:
    """Parse one report by its name; None when it is missing, too large or unreadable."""
    try:
        if path.stat().st_size > MAX_REPORT_BYTES:
            return None
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".xml":
            files = parse_cobertura(text)
        elif path.suffix == ".info":
            files = parse_lcov(text)
        elif path.suffix == ".json":
            files = parse_coverage_json(text)
        else:
            return None
    except (OSError, ValueError, ET.ParseError, AttributeError, TypeError):
        return None
    return CoverageReport(path=path, files=files) if files else None


# Parsed reports by (path, mtime, size): a report is often uncommitted and rewritten by a local test run, so it is
# keyed by the file itself rather than the repository head; parsing a large one costs more than the stat.
_PARSED: dict[tuple[str, int, int], CoverageReport | None] = {}


def find_report(repo_dir: Path) -> CoverageReport | None:
    """The first readable report under the usual names in the checkout (committed or left by a local run)."""
    for name in REPORT_NAMES:
        candidate = repo_dir / name
        try:
            st = candidate.stat()
        except OSError:
            continue
        if not candidate.is_file():
            continue
        key = (str(candidate.resolve()), st.st_mtime_ns, st.st_size)
        if key not in _PARSED:
            if len(_PARSED) > 32:
                _PARSED.clear()
            _PARSED[key] = parse_report(candidate)
        report = _PARSED[key]
        if report is not None:
            return report
    return None
