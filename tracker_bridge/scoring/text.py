"""Reading a ticket's text: what it names, what it shows and how it is worded.

This module only extracts facts from the text (code blocks, symbols, paths, hedges, sections); turning those facts
into factor values is `factors.py`'s job. Everything here is plain regular expressions so it stays deterministic,
offline and fast (thousands of tickets a second).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from tracker_bridge.models import Ticket

# Fenced blocks (``` or ~~~), or runs of indented / REPL lines, count as code: Markdown trackers fence, Trac and
# e-mail style trackers indent with a tab or four spaces.
_FENCE = re.compile(r"^\s*(```|~~~)")
_INDENTED = re.compile(r"^(\t| {4,})\S")
_REPL = re.compile(r"^\s*(>>>|\.\.\.|In \[\d+\]:|Out\[\d+\]:|\$ )")
_FENCE_LEADS = ("```", "~~~")
_INDENT_LEADS = ("\t", " ")
_REPL_LEADS = (">>>", "...", "In [", "Out[", "$ ")

_BACKTICKED = re.compile(r"`([^`\n]{2,80})`")
_CALL = re.compile(r"\b([A-Za-z_][\w.]*)\(\)")
_CAMEL = re.compile(r"\b([A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+)\b")
_DOTTED = re.compile(r"\b([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*){2,})\b")
_SNAKE = re.compile(r"\b([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\b")
_PATH = re.compile(
    r"(?<![\w/.:-])((?:[\w.-]+/)+[\w.-]*|"
    r"[\w-]+\.(?:py|js|ts|tsx|go|rs|rb|java|kt|c|h|cpp|yml|yaml|toml|json|sql|cfg|ini|md|rst|html|css))(?![\w/])"
)
_URL = re.compile(r"https?://\S+")

# A traceback: Python's header, a Python frame line, or a Java/JavaScript frame line ("    at a.b(File.java:12)").
_TRACEBACK_HEADER = "Traceback (most recent call last)"
_PY_FRAME = re.compile(r"^\s*File \".+\", line \d+", re.M)
_JAVA_FRAME = re.compile(r"^\s+at [\w.$]+\(.*:\d+\)", re.M)
_JAVA_FRAME_GATE = re.compile(r"at [\w.$]+\(.*:\d")
_EXCEPTION = re.compile(r"\b[A-Z]\w*(?:Error|Exception|Warning)\b")
_TEST_NAME = re.compile(
    r"\b(test_\w+|Test[A-Z]\w+|tests?/[\w/.-]+\.py(?:::\w+)*|\w+_test\.\w+|\w+\.(?:test|spec)\.\w+)"
)

_EXPECTED = re.compile(
    r"\bexpected(?: (?:result|output|outcome|behaviou?r))?\s*[:=]|"
    r"\b(expected (?:result|output|outcome|behaviou?r)|i expect(?:ed)?|expected to|"
    r"should (?:return|be|raise|give|produce|show)|actual (?:result|output|outcome|behaviou?r)|instead of)\b",
)
# A backticked call with arguments, `f(x)`, is a small example of use.
_INLINE_CALL = re.compile(r"`[^`\n]*\w\([^`\n]*\)[^`\n]*`")
_NAME_LIKE = re.compile(r"^[A-Za-z_][\w.:/-]*$")
_REPRO = re.compile(r"\b(steps to reproduce|to reproduce|reproduc\w+|minimal example|mcve|code for reproduction)\b")
_ACCEPTANCE = re.compile(
    r"\b(acceptance criteria|definition of done|done when|it is done when|must (?:return|raise|accept|reject))\b"
)
_FIX_HINT = re.compile(
    r"\b(should be (?:changed|replaced|removed|fixed by)|(?:could|can) be (?:changed|replaced|fixed)|the fix\b|"
    r"fix (?:is|would be)|simple fix|easy fix|one-line fix|replac\w+ .{0,40}\bwith\b|following (?:change|patch|diff)|"
    r"proposed (?:fix|patch|change|solution))",
)
# A pasted unified diff: a line that starts one (matched in the lower-cased text, like the wording above).
_DIFF_LINE = ("diff --git", "@@ ")
# The reporter offers or links a patch: they have found the place and the change.
_PATCH = re.compile(r"\b(pull request|PR|patch)\b")
# A title that names a symbol (`x`, call(), CamelCase, dotted.name, snake_case) points at one place in the code.
_TITLE_SYMBOL = re.compile(r"`[^`]+`|\w\(|\b[A-Z][a-z0-9]+[A-Z]\w*|\b\w+\.\w+\b|\b[a-z]+_[a-z_]+\b|--\w+")
# "X does not support/handle Y": an existing feature misses one case, a bounded change with a built-in test.
_MISSING_CASE = re.compile(
    r"\b(?:(?:doesn't|does not|not|isn't|is not|don't|do not) (?:support|handle|accept|respect|honou?r)|unsupported|"
    r"not (?:supported|handled|respected))\b",
)
_REGRESSION = re.compile(
    r"\b(regress\w*|used to work|worked (?:fine |well )?(?:in|before|until)|since (?:version |v)?\d+\.\d+|"
    r"broke (?:in|with|after))\b",
)
# "#1234" or "issue 1234": the context lives in other tickets the agent may not see.
_TICKET_REF = re.compile(r"(?<![\w&])#\d{2,}\b|\b(?:issue|ticket|bug) \d{2,}\b", re.I)
# What any reference must contain (in the lower-cased text): no leading alternation, so the engine skips ahead.
_TICKET_REF_GATE = re.compile(r"(?:#|issue |ticket |bug )\d\d")
_LOCATION = re.compile(r"(\bline \d+|#L\d+|/blob/[\w.-]+/\S+\.\w+)", re.I)

# Hedging and open questions: the reporter has not decided what they want yet.
# Patterns of wording (hedges, asks, kinds, expected behaviour...) have no IGNORECASE flag: they are matched against
# lower-cased text, which is two to three times faster with Python's re.
_HEDGES = re.compile(
    r"\b(maybe|perhaps|not sure|i think|i guess|i believe|i wonder|probably|possibly|it seems|seems like|unclear|"
    r"explore|investigate|think about|look into|figure out|some way to|somehow|ideally|might want)\b",
)
_QUESTION = re.compile(r"\w[)\"'`]?\?+(?=\s|$)")
_ADDITIVE = re.compile(r"\b(also|additionally|furthermore|in addition|another (?:issue|problem|thing)|as well as)\b")
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\S", re.M)
# An open checklist of short items is a list of sub-tasks; long checked items are an issue template's checklist.
_CHECKBOX = re.compile(r"^\s*[-*+]\s+\[ \]\s+(.+)$", re.M)
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
_FEATURE = re.compile(
    r"\b(add support|support for|feature request|would be (?:nice|great|useful|good)|new option|ability to|"
    r"allow (?:users?|the|to|for)|it would be|enhancement|new feature)\b",
)
_REFACTOR = re.compile(r"\b(refactor\w*|clean ?up|restructur\w*|rewrite|reorganis\w*|reorganiz\w*|modernis\w*)\b")
_BUG = re.compile(r"\b(bug|crash\w*|fails?|failing|failure|error|wrong|incorrect|broken|regression|exception)\b")
_DOCS = re.compile(r"\b(documentation|docs?|docstrings?|changelog|release notes)\b")

# Kinds of work that are not a single change an agent can finish: the ticket says so about itself.
_KIND_MARKERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "epic",
        re.compile(r"\b(epic|umbrella (?:issue|ticket)|tracking (?:issue|ticket)|meta[- ]issue|roadmap)\b"),
    ),
    ("spike", re.compile(r"\b(spike|proof of concept|feasibility study|time-?boxed investigation)\b")),
    (
        "design question",
        re.compile(
            r"(^\W*rfc\b|\bdesign (?:doc|question|discussion|proposal)|\bopen for discussion|\bshould we\b[^.\n]*\?)",
        ),
    ),
    ("sub-tasks", re.compile(r"\b(sub-?tasks?|child (?:issues|tickets|stories)|broken down into)\b")),
)
# A title that only asks to look into something is a spike, whatever the body says.
_TITLE_SPIKE = re.compile(r"^\W*(investigate|explore|research|evaluate|look into|think about|figure out)\b")
# What makes a change risky to hand over: schema migrations, CI, credentials, generated or vendored files. Matched
# against the lower-cased text (the mention shown is the reporter's own spelling).
_RISK_TEXT: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "migration",
        re.compile(
            r"\b(schema migration|database migration|data migration|add(?:ing)? a migration|alembic|flyway|"
            r"liquibase|alter table)\b",
        ),
    ),
    (
        "CI configuration",
        re.compile(
            r"(\.github/workflows|\.gitlab-ci\.yml|\bjenkinsfile\b|\.circleci|ci (?:pipeline|config\w*|workflow))"
        ),
    ),
    (
        "authentication or secrets",
        re.compile(
            r"\b(secret[ _]keys?|secrets? (?:manager|store|file)|credentials?|api[ _]keys?|private keys?|"
            r"passw(?:or)?ds?|oauth|authenticat\w*|authoriz\w*|sso|csrf|encrypt\w*)\b",
        ),
    ),
    (
        "generated or vendored code",
        re.compile(
            r"\b(auto-?generated|generated (?:files?|sources?|client)|do not edit|vendored|"
            r"vendor(?:ed)? (?:copy|dir\w*))\b",
        ),
    ),
)
RISK_PATH_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("migration", re.compile(r"^(?!.*\btests?/)(?:.*/)?(?:migrations?|alembic|db/migrate)/|\.sql$", re.I)),
    (
        "CI configuration",
        re.compile(
            r"(^|/)(\.github/workflows/|\.gitlab-ci\.yml$|\.circleci/|Jenkinsfile$|\.travis\.yml$|azure-pipelines)",
            re.I,
        ),
    ),
    ("authentication or secrets", re.compile(r"(^|/)(auth\w*|secrets?|credentials?|security)(/|\.|$)", re.I)),
    (
        "generated or vendored code",
        re.compile(
            r"(^|/)(vendor|vendored|third_party|node_modules|generated|gen)/|_pb2\.py$|\.generated\.|\.min\.js$", re.I
        ),
    ),
)

# Words one of which must occur (in the lower-cased text) for a slow pattern to be worth running: a substring test
# is a hundred times cheaper than a regular expression with a leading alternation, and most tickets match none.
_GATES: dict[str, tuple[str, ...]] = {
    "fix": ("should be", "could be", "can be", "fix", "replac", "following", "proposed", "diff --git", "@@ "),
    "missing_case": ("support", "handle", "accept", "respect", "honor", "honour"),
    "location": ("line ", "#l", "/blob/"),
    "tests": ("test", "spec"),
    "migration": ("migration", "alembic", "flyway", "liquibase", "alter table"),
    "CI configuration": (".github/workflows", ".gitlab-ci", "jenkinsfile", ".circleci", "ci "),
    "authentication or secrets": (
        "secret",
        "credential",
        "api",
        "private key",
        "passw",
        "oauth",
        "authentic",
        "authoriz",
        "sso",
        "csrf",
        "encrypt",
    ),
    "generated or vendored code": ("generated", "do not edit", "vendor"),
    "epic": ("epic", "umbrella", "tracking", "meta", "roadmap"),
    "spike": ("spike", "proof of concept", "feasibility", "investigation"),
    "design question": ("rfc", "design", "discussion", "should we"),
    "sub-tasks": ("task", "child", "broken down"),
    "hedges": (
        "maybe",
        "perhaps",
        "not sure",
        "i think",
        "i guess",
        "i believe",
        "i wonder",
        "probabl",
        "possibl",
        "seem",
        "unclear",
        "explore",
        "investigate",
        "think about",
        "look into",
        "figure out",
        "some way",
        "somehow",
        "ideally",
        "might want",
    ),
    "additive": ("also", "additionally", "furthermore", "in addition", "another ", "as well as"),
    "bullet": ("- ", "* ", "+ ", ". ", ") "),
    "checkbox": ("[ ]",),
    "repro": ("reproduc", "minimal example", "mcve"),
    "expected": ("expect", "should ", "actual", "instead of"),
    "acceptance": ("acceptance", "definition of done", "done when", "must "),
    "regression": ("regress", "used to work", "worked ", "since ", "broke "),
    "feature": ("support", "feature", "would be", "new option", "ability to", "allow", "it would", "enhancement"),
    "refactor": ("refactor", "clean", "restructur", "rewrite", "reorgani", "moderni"),
    "bug": ("bug", "crash", "fail", "error", "wrong", "incorrect", "broken", "regression", "exception"),
    "docs": ("doc", "changelog", "release notes"),
    "exception": ("Error", "Exception", "Warning"),  # case-sensitive, like the pattern
    "patch": ("pull request", "PR", "patch"),  # case-sensitive, like the pattern
}


def _gate(low: str, key: str) -> bool:
    # A plain loop, not any(<generator>): this runs some 60 times per ticket and the generator costs more than the
    # substring tests.
    for word in _GATES[key]:  # noqa: SIM110
        if word in low:
            return True
    return False


# Backticked words that are emphasis or literals, not names of code.
_COMMON_WORDS = frozenset({"e.g", "i.e", "etc", "the", "and", "or", "not", "none", "true", "false", "null", "self"})


@dataclass(frozen=True)
class TicketText:
    """Facts about one ticket's text that the factors weigh."""

    title: str
    text: str
    prose: str
    prose_words: int
    words: int
    code_lines: int
    code_blocks: int
    symbols: tuple[str, ...]
    snake_names: tuple[str, ...]
    paths: tuple[str, ...]
    tests_named: tuple[str, ...]
    exceptions: tuple[str, ...]
    has_traceback: bool
    has_repro: bool
    has_expected: bool
    has_acceptance: bool
    proposes_fix: bool
    offers_patch: bool
    title_names_symbol: bool
    names_regression: bool
    missing_case: bool
    points_at_location: bool
    ticket_refs: tuple[str, ...]
    hedges: tuple[str, ...]
    questions: int
    asks: int
    checkboxes: int
    feature_wording: bool
    refactor_wording: bool
    bug_wording: bool
    docs_wording: bool
    kind_markers: tuple[tuple[str, str], ...]
    risk_mentions: tuple[tuple[str, str], ...] = field(default=())

    @property
    def title_words(self) -> int:
        return len(self.title.split())

    @property
    def size(self) -> float:
        """log(words) mapped to [0, 1]: about 40 words -> 0, about 1,500 words -> 1."""
        return _clip((math.log(max(self.words, 1)) - math.log(40)) / (math.log(1500) - math.log(40)))


def _clip(x: float, lo: float = 0.0, hi: float = 1.0) -> float:
    return max(lo, min(hi, x))


def split_code(text: str) -> tuple[str, int, int]:
    """(prose without code, number of code lines, number of code blocks)."""
    prose: list[str] = []
    code_lines = blocks = 0
    in_fence = in_indent = False
    for line in text.splitlines():
        # Cheap character tests decide which line patterns can match at all (most lines are plain prose).
        lead = line.lstrip()[:4]
        if lead[:3] in _FENCE_LEADS and _FENCE.match(line):
            in_fence = not in_fence
            blocks += in_fence
            continue
        if in_fence:
            code_lines += 1
            continue
        if (line[:1] in _INDENT_LEADS and _INDENTED.match(line)) or (
            lead.startswith(_REPL_LEADS) and _REPL.match(line)
        ):
            code_lines += 1
            blocks += not in_indent
            in_indent = True
            continue
        in_indent = False
        prose.append(line)
    return "\n".join(prose), code_lines, blocks


def _unique(items: list[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return tuple(seen)


def _in_tokens(rx: re.Pattern[str], tokens: list[str]) -> list[str]:
    """rx.findall over whitespace-separated tokens: the same matches as over the whole text for patterns whose
    matches hold no whitespace and whose boundaries are word boundaries or look-arounds (a space between two tokens
    is such a boundary), and several times faster, because the caller passes only the few tokens that can match
    (those with a '/', a '.', '()', '_'...)."""
    return rx.findall(" ".join(tokens)) if tokens else []


def _symbols(without_urls: str, tokens: list[str]) -> tuple[str, ...]:
    """Identifiers the ticket names: `backticked`, call(), CamelCase, dotted.paths and snake_case names."""
    found: list[str] = []
    for raw in _BACKTICKED.findall(without_urls) if "`" in without_urls else ():
        # `f(x)` names f; a backticked sentence or value (`1,5`, `"a b"`) is not a name.
        token = raw.strip().split("(", 1)[0]
        if _NAME_LIKE.match(token) and token.lower() not in _COMMON_WORDS:
            found.append(token)
    if "()" in without_urls:
        found += _in_tokens(_CALL, [t for t in tokens if "()" in t])
    found += _in_tokens(_CAMEL, [t for t in tokens if not t.islower()])
    found += _in_tokens(_DOTTED, [t for t in tokens if "." in t and t.count(".") >= 2])
    # snake_case words count only when the prose mentions them with call syntax or backticks (above): in pasted
    # code they are local variables, not places the change must touch.
    return _unique([s for s in found if len(s) > 2 and not s.replace(".", "").isdigit()])


def _paths(tokens: list[str]) -> tuple[str, ...]:
    paths = [p.strip(".") for p in _in_tokens(_PATH, [t for t in tokens if "/" in t or "." in t])]
    # "and/or", "e.g./i.e." and version ranges look like paths; a real path has a letter-led segment of 2+ chars.
    return _unique([p for p in paths if len(p) > 3 and re.search(r"[A-Za-z_]{2}", p) and p.lower() not in ("and/or",)])


def analyse_text(ticket: Ticket) -> TicketText:
    """Extract the facts the text factors need from a ticket's title and description (as the reporter wrote it)."""
    title = ticket.title.strip()
    # HTML comments are an issue template's instructions, invisible to the people reading the ticket.
    body = _HTML_COMMENT.sub("", ticket.description or "")
    text = f"{title}\n{body}".strip()
    prose, code_lines, code_blocks = split_code(text)
    prose_no_urls = _URL.sub(" ", prose) if "://" in prose else prose
    text_tokens = text.split()
    words = len(text_tokens)
    prose_low, wording = prose.lower(), prose_no_urls.lower()
    hedges = _unique(_HEDGES.findall(wording)) if _gate(wording, "hedges") else ()
    questions = len(_QUESTION.findall(prose_no_urls)) if "?" in prose_no_urls else 0
    bullets = len(_BULLET.findall(prose)) if _gate(prose, "bullet") else 0
    checkboxes = sum(len(i.split()) <= 12 for i in _CHECKBOX.findall(prose)) if "[ ]" in prose else 0
    additive = len(_ADDITIVE.findall(wording)) if _gate(wording, "additive") else 0
    # Distinct asks: one, plus each "also"/"additionally", every other plain bullet (lists mix asks and details) and
    # every open checklist item (each is a task).
    asks = 1 + additive + max(0, bullets - checkboxes - 1) // 2 + checkboxes
    text_low = text.lower()
    kind_markers = tuple(
        (kind, m.group(0).strip()) for kind, rx in _KIND_MARKERS if _gate(wording, kind) and (m := rx.search(wording))
    )
    if (m := _TITLE_SPIKE.search(title.lower())) and not any(k == "spike" for k, _ in kind_markers):
        kind_markers += (("spike", m.group(0).strip()),)
    risk = tuple(
        (kind, _as_written(m, text, text_low))
        for kind, rx in _RISK_TEXT
        if _gate(text_low, kind) and (m := rx.search(text_low))
    )
    no_urls = _URL.sub(" ", text) if "://" in text else text
    tokens = text_tokens if no_urls is text else no_urls.split()
    paths = _paths(tokens)
    risk_paths = tuple((kind, p) for p in paths for kind, rx in RISK_PATH_PATTERNS if rx.search(p))
    return TicketText(
        title=title,
        text=text,
        prose=prose,
        prose_words=len(prose.split()),
        words=words,
        code_lines=code_lines,
        code_blocks=code_blocks,
        symbols=_symbols(no_urls, tokens),
        snake_names=_unique(_in_tokens(_SNAKE, [t for t in prose_no_urls.split() if "_" in t]))
        if "_" in prose_no_urls
        else (),
        paths=paths,
        tests_named=_tests_named(text, text_low, text_tokens),
        exceptions=_unique(
            _in_tokens(_EXCEPTION, [t for t in tokens if "Error" in t or "Exception" in t or "Warning" in t])
        )
        if _gate(no_urls, "exception")
        else (),
        has_traceback=_has_traceback(text),
        has_repro=bool(
            code_blocks
            or (_gate(prose_low, "repro") and _REPRO.search(prose_low))
            or ("`" in prose and _INLINE_CALL.search(prose))
        ),
        has_expected=_gate(prose_low, "expected") and bool(_EXPECTED.search(prose_low)),
        has_acceptance=(_gate(prose_low, "acceptance") and bool(_ACCEPTANCE.search(prose_low)))
        or (checkboxes > 0 and not kind_markers),
        proposes_fix=_gate(text_low, "fix") and _proposes_fix(text_low),
        offers_patch=_gate(prose, "patch") and bool(_PATCH.search(prose)),
        title_names_symbol=bool(_TITLE_SYMBOL.search(title)),
        names_regression=_gate(prose_low, "regression") and bool(_REGRESSION.search(prose_low)),
        missing_case=_gate(wording, "missing_case") and bool(_MISSING_CASE.search(wording)),
        points_at_location=bool(paths) or (_gate(text_low, "location") and bool(_LOCATION.search(text))),
        ticket_refs=_unique(_TICKET_REF.findall(prose_no_urls)) if _TICKET_REF_GATE.search(wording) else (),
        hedges=hedges,
        questions=questions,
        asks=asks,
        checkboxes=checkboxes,
        feature_wording=_gate(wording, "feature") and bool(_FEATURE.search(wording)),
        refactor_wording=_gate(wording, "refactor") and bool(_REFACTOR.search(wording)),
        bug_wording=_gate(wording, "bug") and bool(_BUG.search(wording)),
        docs_wording=_gate(wording, "docs") and bool(_DOCS.search(wording)),
        kind_markers=kind_markers,
        risk_mentions=_unique_pairs(risk + risk_paths),
    )


def _as_written(m: re.Match[str], text: str, low: str) -> str:
    """A match found in the lower-cased text, as the reporter wrote it (lower() keeps the length of almost all text;
    when it does not, the lower-cased match is shown)."""
    return text[m.start() : m.end()] if len(text) == len(low) else m.group(0)


def _proposes_fix(low: str) -> bool:
    return bool(_FIX_HINT.search(low)) or low.startswith(_DIFF_LINE) or any(f"\n{d}" in low for d in _DIFF_LINE)


def _tests_named(text: str, low: str, tokens: list[str]) -> tuple[str, ...]:
    if "test" not in low and "spec" not in text:
        return ()
    # lower() never makes or removes whitespace, so the lower-cased tokens line up with the tokens.
    candidates = [t for t, t_low in zip(tokens, low.split(), strict=False) if "test" in t_low or "spec" in t]
    return _unique(_in_tokens(_TEST_NAME, candidates))


def _has_traceback(text: str) -> bool:
    return (
        _TRACEBACK_HEADER in text
        or ('File "' in text and bool(_PY_FRAME.search(text)))
        or (bool(_JAVA_FRAME_GATE.search(text)) and bool(_JAVA_FRAME.search(text)))
    )


def _unique_pairs(pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    seen: dict[tuple[str, str], None] = {}
    for pair in pairs:
        seen.setdefault(pair, None)
    return tuple(seen)
