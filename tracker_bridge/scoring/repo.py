"""Resolving what a ticket names in the repository, and finding the tests that exercise it.

Uses the git CLI on the checkout of the base branch: `git ls-files` for paths, `git grep` at HEAD for where symbols
are defined and which test files mention them. Every git call has a timeout and the number of names searched is
capped, so a large repository costs a second, not a minute. Any failure becomes `RepoArea.error`, never an exception:
a score without repository analysis is still a score.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tracker_bridge.gitutil import GitTimeout, run_git
from tracker_bridge.scoring.coverage import CoverageReport, find_report
from tracker_bridge.scoring.text import RISK_PATH_PATTERNS, TicketText

MAX_NAMES = 12  # symbols searched with git grep
MAX_FILES = 200_000  # files listed; beyond this the listing is truncated
GIT_TIMEOUT = 10.0  # seconds per git call
MAX_LISTED = 8  # files kept per list in the result

_TEST_PATH = re.compile(
    r"(^|/)(tests?|specs?|__tests__|testing)/|(^|/)test_[^/]+$|_tests?\.\w+$|\.(test|spec)\.\w+$|(^|/)conftest\.py$"
)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Language-agnostic enough: Python, JS/TS, Go, Rust, Ruby, Java/Kotlin definitions.
_DEF_KEYWORDS = r"(def|class|function|func|fn|struct|interface|type|module|enum|trait|object|const|let|var)"
_SOURCE_SUFFIXES = frozenset(
    [
        ".py",
        ".pyi",
        ".js",
        ".jsx",
        ".ts",
        ".tsx",
        ".go",
        ".rs",
        ".rb",
        ".java",
        ".kt",
        ".scala",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".hpp",
        ".cs",
        ".php",
        ".swift",
        ".m",
        ".ex",
        ".exs",
    ]
)


class GitUnavailable(Exception):
    pass


@dataclass(frozen=True)
class RepoArea:
    """What the ticket's names resolve to in the repository."""

    files: tuple[str, ...] = ()
    tests: tuple[str, ...] = ()
    unresolved: tuple[str, ...] = ()
    risky: tuple[tuple[str, str], ...] = ()
    report: CoverageReport | None = None
    searched: tuple[str, ...] = field(default=())
    error: str | None = None
    seconds: float = 0.0

    def coverage_of_files(self) -> tuple[int, int, list[str]]:
        """(covered, total) lines of the resolved files in the report, and the files it knows."""
        covered = total = 0
        known: list[str] = []
        if self.report is None:
            return 0, 0, known
        for f in self.files:
            cov = self.report.lookup(f)
            if cov is not None:
                covered += cov.covered
                total += cov.total
                known.append(f)
        return covered, total, known


def _git(repo_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # hardened like every git the daemon runs (no hooks, fsmonitor or user config; dies with the daemon)
    try:
        return run_git(repo_dir, ["-c", "core.quotepath=off", *args], timeout=GIT_TIMEOUT)
    except (OSError, GitTimeout) as exc:
        raise GitUnavailable(f"git {args[0]} did not finish ({exc.__class__.__name__})") from exc


def is_test_path(path: str) -> bool:
    return bool(_TEST_PATH.search(path))


def _names_to_search(t: TicketText) -> list[str]:
    """Identifier-like names from the ticket: the last part of dotted names, without call parentheses."""
    names: list[str] = []
    for sym in (*t.symbols, *t.snake_names):
        last = sym.rstrip("()").split(".")[-1].split("::")[-1]
        if _IDENT.match(last) and len(last) > 2 and last not in names:
            names.append(last)
    return names[:MAX_NAMES]


def _resolve_paths(named: tuple[str, ...], files: list[str]) -> tuple[list[str], list[str]]:
    """Files the ticket's paths point at (exact, a folder, or a unique-enough suffix) and the paths not found."""
    found: list[str] = []
    missing: list[str] = []
    for raw in named:
        p = raw.strip("/").removeprefix("./")
        if raw.endswith("/") or "." not in PurePosixPath(p).name:
            hits = [f for f in files if f.startswith(p + "/") or f"/{p}/" in f"/{f}"]
        else:
            hits = [f for f in files if f == p or f.endswith("/" + p)]
        if hits:
            found.extend(h for h in hits[:50] if h not in found)
        else:
            missing.append(raw)
    return found, missing


# Installed environments and dependency folders are never where a ticket's change goes, committed or not.
_SKIP_DIRS = (".venv", "venv", ".tox", "node_modules", "site-packages", "__pycache__", ".git")
_SKIP_PATHSPECS = tuple(f":(exclude,glob)**/{d}/**" for d in _SKIP_DIRS)


def _skipped(path: str) -> bool:
    return any(f"/{d}/" in f"/{path}" for d in _SKIP_DIRS)


MAX_UNCOMMITTED_FILES = 5_000  # files passed by name to git grep in a repository without commits


def _grep_target(tree: str | None, files: list[str], *, code_only: bool = False) -> list[str]:
    # At HEAD when there is a commit. In a repository without one yet, the listed files on disk by name: git grep
    # --untracked would otherwise walk an unignored virtualenv even when a pathspec excludes it. `code_only` keeps
    # to source files: a name like `Ticket` can match megabytes of recorded API schemas otherwise.
    if tree:
        code = [f":(glob)**/*{suffix}" for suffix in sorted(_SOURCE_SUFFIXES)] if code_only else []
        return [tree, "--", *code, *_SKIP_PATHSPECS]
    if code_only:
        files = [f for f in files if PurePosixPath(f).suffix in _SOURCE_SUFFIXES]
    return ["--untracked", "--", *files[:MAX_UNCOMMITTED_FILES]]


def _strip_tree(line: str, tree: str | None) -> str:
    return line[len(tree) + 1 :] if tree and line.startswith(tree + ":") else line


def _definitions(repo_dir: Path, names: list[str], tree: str | None, files: list[str]) -> dict[str, list[str]]:
    """name -> files that define it (def/class/function ... name)."""
    if not names:
        return {}
    # A fixed-string search is ten times faster than git's extended regex on large generated files; the definition
    # pattern is applied to the (few) matching lines here.
    args = ["grep", "-I", "-n", "-w", "-F"]
    for name in names:
        args += ["-e", name]
    proc = _git(repo_dir, *args, *_grep_target(tree, files, code_only=True))
    found: dict[str, list[str]] = {}
    if proc.returncode not in (0, 1):
        raise GitUnavailable(f"git grep failed: {proc.stderr.strip()[:200]}")
    rx = re.compile(rf"\b{_DEF_KEYWORDS}\s+({'|'.join(map(re.escape, names))})\b")
    for line in proc.stdout.splitlines():
        # path:line:text (after the "HEAD:" prefix)
        parts = _strip_tree(line, tree).split(":", 2)
        if len(parts) < 3:
            continue
        m = rx.search(parts[2])
        if m:
            defined_in = found.setdefault(m.group(2), [])
            if parts[0] not in defined_in:
                defined_in.append(parts[0])
    return found


def _tests_mentioning(repo_dir: Path, words: list[str], test_files: list[str], tree: str | None) -> list[str]:
    """Test files that mention any of `words` (a module name in an import, a symbol in a call)."""
    if not words or not test_files:
        return []
    args = ["grep", "-I", "-l", "-w", "-F"]
    for w in words:
        args += ["-e", w]
    # Only the test files: at HEAD as pathspecs after the tree, without commits as the file list itself.
    target = [tree, "--", *test_files[:2000]] if tree else _grep_target(tree, test_files)
    proc = _git(repo_dir, *args, *target)
    if proc.returncode not in (0, 1):
        return []
    return [_strip_tree(line, tree) for line in proc.stdout.splitlines() if line]


def _tests_by_name(sources: list[str], test_files: list[str]) -> list[str]:
    """Tests named after a source file: test_invoice.py, invoice_test.go, invoice.spec.ts, tests/billing/..."""
    hits: list[str] = []
    for src in sources:
        stem = PurePosixPath(src).stem
        parent = PurePosixPath(src).parent.name
        for t in test_files:
            tname = PurePosixPath(t).stem
            if tname in (
                f"test_{stem}",
                f"{stem}_test",
                f"{stem}_tests",
                f"{stem}.test",
                f"{stem}.spec",
                f"Test{stem}",
            ) or (parent and f"/{parent}/" in f"/{t}" and tname.startswith("test")):
                hits.append(t)
    return hits


def analyse_repo(repo_dir: Path, t: TicketText) -> RepoArea:
    """Resolve the ticket's paths and symbols at HEAD, find the tests for them and read a coverage report."""
    start = time.monotonic()
    try:
        head = _git(repo_dir, "rev-parse", "--verify", "--quiet", "HEAD^{tree}")
        tree = "HEAD" if head.returncode == 0 else None
        listing = ["ls-files", "-z"] if tree else ["ls-files", "-z", "--cached", "--others", "--exclude-standard"]
        proc = _git(repo_dir, *listing, "--", *_SKIP_PATHSPECS)
        if proc.returncode != 0:
            raise GitUnavailable(f"not a git checkout ({proc.stderr.strip()[:120]})")
        files = list(dict.fromkeys(f for f in proc.stdout.split("\0") if f and not _skipped(f)))[:MAX_FILES]
        # Test code only: fixtures and recorded schemas under tests/ are data, and can be megabytes to grep.
        test_files = [f for f in files if is_test_path(f) and PurePosixPath(f).suffix in _SOURCE_SUFFIXES]
        path_hits, missing_paths = _resolve_paths(t.paths, files)
        names = _names_to_search(t)
        defs = _definitions(repo_dir, names, tree, files)
        def_files = [f for fs in defs.values() for f in fs]
        sources: list[str] = []
        for f in (*path_hits, *def_files):
            if f not in sources and not is_test_path(f):
                sources.append(f)
        # Only code counts as "the area"; a README naming the symbol is not where the change goes.
        code_sources = [f for f in sources if PurePosixPath(f).suffix in _SOURCE_SUFFIXES] or sources
        tests = _tests_by_name(code_sources, test_files)
        modules = [PurePosixPath(f).stem for f in code_sources[:MAX_NAMES] if PurePosixPath(f).stem != "__init__"]
        words = list(dict.fromkeys([*modules, *defs.keys()]))[:MAX_NAMES]
        for test in _tests_mentioning(repo_dir, words, test_files, tree):
            if test not in tests:
                tests.append(test)
        # Tests named in the ticket that exist count too.
        for test in _resolve_paths(tuple(n for n in t.tests_named if "/" in n), test_files)[0]:
            if test not in tests:
                tests.append(test)
        risky = tuple((kind, f) for f in (*path_hits, *def_files) for kind, rx in RISK_PATH_PATTERNS if rx.search(f))
        unresolved = tuple(missing_paths) + tuple(n for n in names if n not in defs)
        return RepoArea(
            files=tuple(code_sources),
            tests=tuple(tests),
            unresolved=unresolved,
            risky=risky,
            report=find_report(repo_dir),
            searched=tuple(names),
            seconds=time.monotonic() - start,
        )
    except GitUnavailable as exc:
        return RepoArea(error=str(exc), seconds=time.monotonic() - start)
