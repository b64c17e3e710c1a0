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


def _resolve_paths(
    named: tuple[str, ...], files: list[str], by_name: dict[str, list[str]] | None = None
) -> tuple[list[str], list[str]]:
    """Files the ticket's paths point at (exact, a folder, or a unique-enough suffix) and the paths not found.

    `by_name` (file name -> files with that name, in listing order) spares a pass over every file for a file path."""
    found: list[str] = []
    missing: list[str] = []
    for raw in named:
        p = raw.strip("/").removeprefix("./")
        if raw.endswith("/") or "." not in PurePosixPath(p).name:
            hits = [f for f in files if f.startswith(p + "/") or f"/{p}/" in f"/{f}"]
        else:
            candidates = files if by_name is None else by_name.get(p.rpartition("/")[2], [])
            hits = [f for f in candidates if f == p or f.endswith("/" + p)]
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


def _stem(path: str) -> str:
    """PurePosixPath(path).stem with string operations (called for every test file of every ticket)."""
    name = path.rpartition("/")[2]
    dot = name.rfind(".")
    return name[:dot] if dot > 0 else name


def test_stems(test_files: list[str]) -> list[tuple[str, str, str]]:
    """(path, stem, "/" + path) of each test file, what `_tests_by_name` compares."""
    return [(t, _stem(t), f"/{t}") for t in test_files]


def _tests_by_name(sources: list[str], test_files: list[str]) -> list[str]:
    """Tests named after a source file: test_invoice.py, invoice_test.go, invoice.spec.ts, tests/billing/...
    (the rule; a cached head answers it with `HeadIndex.tests_by_name`'s look-ups)."""
    hits: list[str] = []
    if not sources:
        return hits
    stems = test_stems(test_files)
    for src in sources:
        stem = _stem(src)
        parent = src.rpartition("/")[0].rpartition("/")[2]
        wanted = _test_names(stem)
        folder = f"/{parent}/" if parent else None
        for t, tname, slashed in stems:
            if tname in wanted or (folder is not None and folder in slashed and tname.startswith("test")):
                hits.append(t)
    return hits


def _test_names(stem: str) -> set[str]:
    return {f"test_{stem}", f"{stem}_test", f"{stem}_tests", f"{stem}.test", f"{stem}.spec", f"Test{stem}"}


@dataclass
class HeadIndex:
    """What one commit of a repository looks like to the scorer, built once per head and shared by its tickets.

    Issue 12: on a Django-size repository listing the files and grepping for definitions and test mentions costs a
    few hundred milliseconds per ticket; at one head those answers never change, so later tickets pay dict lookups.
    """

    head: str
    files: list[str]
    test_files: list[str]
    # name -> files defining it with a distinctive keyword (def, class, function...); built on first use.
    definitions: dict[str, list[str]] | None = None
    # identifier -> indexes into test_files of the test files that contain it as a word; built on first use.
    test_words: dict[str, list[int]] | None = None
    stems: list[tuple[str, str, str]] = field(default_factory=list)
    # test file name stem -> indexes into test_files; folder name -> indexes of the test_* files under it.
    by_stem: dict[str, list[int]] = field(default_factory=dict)
    by_folder: dict[str, list[int]] = field(default_factory=dict)
    # file name -> the listed files with that name, in listing order.
    by_name: dict[str, list[str]] = field(default_factory=dict)

    def build_lookups(self) -> None:
        for i, (_, stem, slashed) in enumerate(self.stems):
            self.by_stem.setdefault(stem, []).append(i)
            if stem.startswith("test"):
                for folder in dict.fromkeys(slashed.split("/")[1:-1]):
                    self.by_folder.setdefault(folder, []).append(i)
        for f in self.files:
            self.by_name.setdefault(f.rpartition("/")[2], []).append(f)

    def tests_by_name(self, sources: list[str]) -> list[str]:
        """`_tests_by_name` with dictionary look-ups instead of a pass over every test file per source."""
        hits: list[str] = []
        for src in sources:
            stem = _stem(src)
            parent = src.rpartition("/")[0].rpartition("/")[2]
            found = {i for name in _test_names(stem) for i in self.by_stem.get(name, ())}
            if parent:
                found.update(self.by_folder.get(parent, ()))
            hits += [self.stems[i][0] for i in sorted(found)]
        return hits


MAX_HEADS = 8  # repositories x heads kept; an old head is never asked about again once the branch moves
_HEADS: dict[str, HeadIndex] = {}
# Keywords that start a definition and rarely anything else: one fixed-string pass over all code finds their lines.
# Words like `type`, `const` or `let` occur everywhere in prose and Python, and define names only in the languages
# below, so a second pass looks for them there only.
_DISTINCT_KEYWORDS = ("def", "class", "function", "func", "fn", "struct", "interface", "enum", "trait")
_COMMON_KEYWORDS = ("type", "module", "object", "const", "let", "var")
_COMMON_KEYWORD_SUFFIXES = (".js", ".jsx", ".ts", ".tsx", ".go", ".rs", ".rb", ".kt", ".scala", ".swift", ".ex", ".exs")
_DEFINITION = re.compile(rf"\b{_DEF_KEYWORDS}\s+([A-Za-z_][A-Za-z0-9_]*)")
_WORD = re.compile(rb"[A-Za-z_][A-Za-z0-9_]{2,}")
MAX_TEST_BYTES = 64_000_000  # test code read into the word index; beyond it, words are searched with git grep


_OBJECT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def _head_from_files(repo_dir: Path) -> str | None:
    """HEAD's commit read from `.git` without running git: starting git is most of a later ticket's cost at a cached
    head. Handles a detached HEAD and a branch in a loose ref or in packed-refs (refs are replaced by rename, so a
    read never sees half a ref); None for anything else (a worktree's `.git` file, an unborn branch, a reftable...),
    and then git is asked."""
    git_dir = repo_dir / ".git"
    try:
        head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
        if _OBJECT_ID.fullmatch(head):
            return head
        ref = head.removeprefix("ref: ")
        if ref == head or not ref.startswith("refs/") or ".." in ref:
            return None
        try:
            value = (git_dir / ref).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            packed = (git_dir / "packed-refs").read_text(encoding="utf-8")
            value = next((line[: -len(ref) - 1] for line in packed.splitlines() if line.endswith(f" {ref}")), "")
    except (OSError, UnicodeDecodeError):
        return None
    return value if _OBJECT_ID.fullmatch(value) else None


def _head_index(repo_dir: Path) -> HeadIndex | None:
    """The cached index of the checkout's HEAD commit, or None when there is no commit (nothing stable to key on)."""
    head = _head_from_files(repo_dir)
    if head is None:
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
    index = HeadIndex(head, files, test_files, stems=test_stems(test_files))
    index.build_lookups()
    if len(_HEADS) >= MAX_HEADS:
        _HEADS.pop(next(iter(_HEADS)))
    _HEADS[key] = index
    return index


def _definition_lines(repo_dir: Path, keywords: tuple[str, ...], pathspecs: list[str]) -> list[str]:
    args = ["grep", "-I", "-n", "-w", "-F"]
    for k in keywords:
        args += ["-e", k]
    proc = _git(repo_dir, *args, "HEAD", "--", *pathspecs, *_SKIP_PATHSPECS)
    if proc.returncode not in (0, 1):
        raise GitUnavailable(f"git grep failed: {proc.stderr.strip()[:200]}")
    return proc.stdout.splitlines()


def _indexed_definitions(repo_dir: Path, index: HeadIndex, names: list[str]) -> dict[str, list[str]]:
    if index.definitions is None:
        code = [f":(glob)**/*{suffix}" for suffix in sorted(_SOURCE_SUFFIXES)]
        lines = _definition_lines(repo_dir, _DISTINCT_KEYWORDS, code)
        if any(f.endswith(_COMMON_KEYWORD_SUFFIXES) for f in index.files):
            lines += _definition_lines(
                repo_dir, _COMMON_KEYWORDS, [f":(glob)**/*{suffix}" for suffix in _COMMON_KEYWORD_SUFFIXES]
            )
        defs: dict[str, list[str]] = {}
        for line in lines:
            parts = _strip_tree(line, "HEAD").split(":", 2)
            if len(parts) < 3:
                continue
            for m in _DEFINITION.finditer(parts[2]):
                where = defs.setdefault(m.group(2), [])
                if parts[0] not in where:
                    where.append(parts[0])
        index.definitions = defs
    return {n: index.definitions[n] for n in names if n in index.definitions}


def _test_word_index(repo_dir: Path, index: HeadIndex) -> dict[str, list[int]] | None:
    """identifier -> test files containing it, read once per head with one `git cat-file --batch`."""
    if index.test_words is not None:
        return index.test_words
    if not index.test_files:
        index.test_words = {}
        return index.test_words
    request = "".join(f"HEAD:{f}\n" for f in index.test_files).encode()
    try:
        proc = subprocess.run(
            ["git", "cat-file", "--batch"],
            cwd=repo_dir,
            input=request,
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0 or len(proc.stdout) > MAX_TEST_BYTES:
        return None
    words: dict[str, list[int]] = {}
    out, pos = proc.stdout, 0
    for i in range(len(index.test_files)):
        end = out.find(b"\n", pos)
        if end < 0:
            break
        header = out[pos:end].split()
        pos = end + 1
        if len(header) < 3 or header[1] != b"blob":
            continue  # "<name> missing": listed but not in the commit
        size = int(header[2])
        for w in set(_WORD.findall(out[pos : pos + size])):
            words.setdefault(w.decode(), []).append(i)
        pos += size + 1
    index.test_words = words
    return words


def _indexed_mentions(repo_dir: Path, index: HeadIndex, words: list[str]) -> list[str]:
    table = _test_word_index(repo_dir, index)
    if table is None:
        return _tests_mentioning(repo_dir, words, index.test_files, "HEAD")
    out: dict[str, None] = {}
    for w in words:
        for i in table.get(w, ()):
            out.setdefault(index.test_files[i], None)
    return list(out)


def _analyse_indexed(repo_dir: Path, index: HeadIndex, t: TicketText, start: float) -> RepoArea:
    files, test_files = index.files, index.test_files
    path_hits, missing_paths = _resolve_paths(t.paths, files, index.by_name)
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
    tests = index.tests_by_name(code_sources) if index is not None else _tests_by_name(code_sources, test_files)
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
