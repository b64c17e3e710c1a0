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
    try:
        return subprocess.run(
            ["git", "-c", "core.quotepath=off", *args],
            cwd=repo_dir,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
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


@dataclass
class HeadIndex:
    """What one commit of a repository looks like to the scorer, built once per head and shared by its tickets.

    Issue 12: on a Django-size repository listing the files and grepping for definitions costs a few hundred
    milliseconds per ticket; at one head those answers never change, so the second ticket pays only dict lookups
    (and one grep for test files mentioning words no earlier ticket asked about).
    """

    head: str
    files: list[str]
    test_files: list[str]
    definitions: dict[str, list[str]] | None = None  # name -> files defining it; built on first use
    mentions: dict[str, tuple[str, ...]] = field(default_factory=dict)  # word -> test files mentioning it


MAX_HEADS = 8  # repositories x heads kept; an old head is never asked about again once the branch moves
_HEADS: dict[str, HeadIndex] = {}
_DEFINITION = re.compile(rf"\b{_DEF_KEYWORDS}\s+([A-Za-z_][A-Za-z0-9_]*)")


def _head_index(repo_dir: Path) -> HeadIndex | None:
    """The cached index of the checkout's HEAD commit, or None when there is no commit (nothing stable to key on)."""
    proc = _git(repo_dir, "rev-parse", "--verify", "--quiet", "HEAD")
    if proc.returncode != 0:
        return None
    head = proc.stdout.strip()
    key = f"{repo_dir.resolve()}@{head}"
    cached = _HEADS.get(key)
    if cached is not None:
        return cached
    listing = _git(repo_dir, "ls-files", "-z", "--", *_SKIP_PATHSPECS)
    if listing.returncode != 0:
        raise GitUnavailable(f"not a git checkout ({listing.stderr.strip()[:120]})")
    files = list(dict.fromkeys(f for f in listing.stdout.split("\0") if f and not _skipped(f)))[:MAX_FILES]
    test_files = [f for f in files if is_test_path(f) and PurePosixPath(f).suffix in _SOURCE_SUFFIXES]
    index = HeadIndex(head, files, test_files)
    if len(_HEADS) >= MAX_HEADS:
        _HEADS.pop(next(iter(_HEADS)))
    _HEADS[key] = index
    return index


def _indexed_definitions(repo_dir: Path, index: HeadIndex, names: list[str]) -> dict[str, list[str]]:
    if index.definitions is None:
        # One pass over the code at HEAD for every definition line; later tickets look names up in the dict.
        kw = _DEF_KEYWORDS.strip("()").split("|")
        args = ["grep", "-I", "-n", "-w", "-F"]
        for k in kw:
            args += ["-e", k]
        proc = _git(repo_dir, *args, *_grep_target("HEAD", index.files, code_only=True))
        if proc.returncode not in (0, 1):
            raise GitUnavailable(f"git grep failed: {proc.stderr.strip()[:200]}")
        defs: dict[str, list[str]] = {}
        for line in proc.stdout.splitlines():
            parts = _strip_tree(line, "HEAD").split(":", 2)
            if len(parts) < 3:
                continue
            for m in _DEFINITION.finditer(parts[2]):
                where = defs.setdefault(m.group(2), [])
                if parts[0] not in where:
                    where.append(parts[0])
        index.definitions = defs
    return {n: index.definitions[n] for n in names if n in index.definitions}


def _indexed_mentions(repo_dir: Path, index: HeadIndex, words: list[str]) -> list[str]:
    new = [w for w in words if w not in index.mentions]
    if new and index.test_files:
        args = ["grep", "-I", "-o", "-w", "-F"]
        for w in new:
            args += ["-e", w]
        proc = _git(repo_dir, *args, "HEAD", "--", *index.test_files[:2000])
        found: dict[str, list[str]] = {w: [] for w in new}
        if proc.returncode in (0, 1):
            for line in proc.stdout.splitlines():
                path, _, word = _strip_tree(line, "HEAD").rpartition(":")
                hits = found.get(word)
                if hits is not None and path and (not hits or hits[-1] != path) and path not in hits:
                    hits.append(path)
            for w, hits in found.items():
                index.mentions[w] = tuple(hits)
    out: list[str] = []
    for w in words:
        for test in index.mentions.get(w, ()):
            if test not in out:
                out.append(test)
    return out


def _analyse_indexed(repo_dir: Path, index: HeadIndex, t: TicketText, start: float) -> RepoArea:
    files, test_files = index.files, index.test_files
    path_hits, missing_paths = _resolve_paths(t.paths, files)
    names = _names_to_search(t)
    defs = _indexed_definitions(repo_dir, index, names)
    report = find_report(repo_dir)
    return _area(repo_dir, t, files, test_files, path_hits, missing_paths, names, defs, report, start, index)


def _area(
    repo_dir: Path,
    t: TicketText,
    files: list[str],
    test_files: list[str],
    path_hits: list[str],
    missing_paths: list[str],
    names: list[str],
    defs: dict[str, list[str]],
    report: CoverageReport | None,
    start: float,
    index: HeadIndex | None,
) -> RepoArea:
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
    mentioning = (
        _indexed_mentions(repo_dir, index, words)
        if index is not None
        else _tests_mentioning(repo_dir, words, test_files, None)
    )
    for test in mentioning:
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
        report=report,
        searched=tuple(names),
        seconds=time.monotonic() - start,
    )


def analyse_repo(repo_dir: Path, t: TicketText) -> RepoArea:
    """Resolve the ticket's paths and symbols at HEAD, find the tests for them and read a coverage report."""
    start = time.monotonic()
    try:
        index = _head_index(repo_dir)
        if index is not None:
            return _analyse_indexed(repo_dir, index, t, start)
        # No commit yet: the files on disk, searched afresh each time (they may change between tickets).
        proc = _git(repo_dir, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *_SKIP_PATHSPECS)
        if proc.returncode != 0:
            raise GitUnavailable(f"not a git checkout ({proc.stderr.strip()[:120]})")
        files = list(dict.fromkeys(f for f in proc.stdout.split("\0") if f and not _skipped(f)))[:MAX_FILES]
        # Test code only: fixtures and recorded schemas under tests/ are data, and can be megabytes to grep.
        test_files = [f for f in files if is_test_path(f) and PurePosixPath(f).suffix in _SOURCE_SUFFIXES]
        path_hits, missing_paths = _resolve_paths(t.paths, files)
        names = _names_to_search(t)
        defs = _definitions(repo_dir, names, None, files)
        report = find_report(repo_dir)
        return _area(repo_dir, t, files, test_files, path_hits, missing_paths, names, defs, report, start, None)
    except GitUnavailable as exc:
        return RepoArea(error=str(exc), seconds=time.monotonic() - start)
