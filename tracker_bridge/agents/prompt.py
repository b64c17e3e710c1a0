"""Building the agent's prompt from a template, the ticket and the repository's own agent instructions.

Ticket text (title, description, comments) is untrusted input: anyone who can write on the ticket writes into the
prompt. It is cleaned of what a person reading the ticket cannot see (HTML comments, Markdown comment links,
invisible and control characters), stripped of anything that could close the frame it is put in, and shortened;
the template then presents it as data inside <ticket> tags, with a warning to treat it so.

The template (`[agent] prompt_template`, else the packaged `prompt_default.md`, a copy of config/prompts/default.md)
uses `$name` placeholders: ref, url, branch, title, description, comments, feedback, instructions, test_command,
plan (the plan a person approved, issue 15; a template without `$plan` gets the approved plan appended).
"""

from __future__ import annotations

import re
import string
import unicodedata
from pathlib import Path

from tracker_bridge.models import Ticket

INSTRUCTION_FILES = ("AGENTS.md", "CLAUDE.md")
MAX_INSTRUCTIONS = 8000
MAX_DESCRIPTION = 20_000
MAX_COMMENT = 4000
MAX_COMMENTS = 30
MAX_FEEDBACK = 6000

# Every placeholder build_prompt fills. A template naming anything else is a configuration error (a misspelt
# `$titel` would otherwise reach the agent as literal text and nobody would notice).
PLACEHOLDERS = (
    "ref", "url", "branch", "title", "description", "comments", "feedback", "instructions", "test_command", "plan",
)

# Where injected instructions hide: HTML comments (also an unclosed one, which hides the rest of the text),
# Markdown "comment" link definitions ([//]: # (hidden)), and characters that render as nothing.
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_MD_COMMENT = re.compile(r"^[ \t]*\[[^\]\n]*\]:[ \t]*(?:#|<>)[ \t]*(?:\(.*\)|\".*\"|'.*')?[ \t]*$", re.MULTILINE)
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)
# The tags the template frames ticket text with: the text may not open or close one of them.
_FRAME_TAG = re.compile(
    r"<\s*(/?)\s*(ticket|title|description|comments|comment|feedback|plan)\b[^>]*>", re.IGNORECASE
)


def _controls(text: str) -> str:
    """Drop control and format characters except newline and tab (what survives renders visibly)."""
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf", "Co", "Cs", "Cn"))


def sanitize(text: str, limit: int | None = None) -> str:
    """Untrusted ticket text as a person sees it, safe to put inside the prompt's <ticket> frame."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _HTML_COMMENT.sub("", text)
    text = _MD_COMMENT.sub("", text)
    text = _controls(_INVISIBLE.sub("", text))
    text = _FRAME_TAG.sub(lambda m: f"[{m.group(1)}{m.group(2).lower()}]", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    if limit is not None and len(text) > limit:
        text = text[:limit].rstrip() + f"\n[… {len(text) - limit} more characters cut]"
    return text


def unknown_placeholders(template: str) -> list[str]:
    """The `$name` / `${name}` placeholders of `template` that build_prompt does not fill, in order of appearance.

    `$$` is a literal dollar sign and a `$` not followed by a name is left as it is, exactly as string.Template
    treats them, so this finds what safe_substitute would silently leave in the prompt.
    """
    unknown: list[str] = []
    for match in string.Template.pattern.finditer(template):
        name = match.group("named") or match.group("braced")
        if name and name not in PLACEHOLDERS and name not in unknown:
            unknown.append(name)
    return unknown


def template_problem(template: str, where: str) -> str | None:
    """One configuration-error line for a template with unknown placeholders (None when all are known)."""
    unknown = unknown_placeholders(template)
    if not unknown:
        return None
    names = ", ".join(f"${n}" for n in unknown)
    known = ", ".join(f"${n}" for n in PLACEHOLDERS)
    return (
        f"{where}: unknown placeholder{'s' if len(unknown) > 1 else ''} {names}. "
        f"Fix: use one of {known} (write $$ for a literal dollar sign)"
    )


def default_template() -> str:
    return (Path(__file__).resolve().parents[1] / "prompt_default.md").read_text(encoding="utf-8")


def repo_instructions(workspace: Path) -> str:
    parts = []
    for name in INSTRUCTION_FILES:
        f = workspace / name
        if f.is_file():
            parts.append(f"### {name}\n{f.read_text(encoding='utf-8', errors='replace')[:MAX_INSTRUCTIONS]}")
    return "\n\n".join(parts) or "(the repository has no AGENTS.md or CLAUDE.md)"


def build_prompt(
    ticket: Ticket,
    workspace: Path,
    test_command: str,
    *,
    template: str | None = None,
    feedback: list[str] | None = None,
    plan: str = "",
) -> str:
    recent = ticket.comments[-MAX_COMMENTS:]
    comments = "\n".join(
        f'<comment n="{i}">\n{sanitize(c, MAX_COMMENT)}\n</comment>' for i, c in enumerate(recent, 1) if sanitize(c)
    )
    fb = "\n".join(f"- {sanitize(f, MAX_FEEDBACK)}" for f in (feedback or [])) or "(none: this is the first attempt)"
    values = {
        "ref": sanitize(ticket.ref, 100),
        "title": sanitize(ticket.title, 300) or "(no title)",
        "description": sanitize(ticket.description, MAX_DESCRIPTION) or "(no description)",
        "comments": comments or "(none)",
        "url": sanitize(ticket.url, 500).replace('"', "%22"),
        "instructions": repo_instructions(workspace),
        "test_command": test_command or "(none configured)",
        "feedback": fb,
        "branch": ticket.branch,
        "plan": sanitize(plan, MAX_FEEDBACK) or "(none: no plan was asked for)",
    }
    text = template or default_template()
    named = {m.group("named") or m.group("braced") for m in string.Template.pattern.finditer(text)}
    if plan.strip() and "plan" not in named:
        # A custom template from before `$plan`: the approved plan must still reach the agent.
        text += "\n\nThe plan a person approved for this ticket (carry it out):\n<plan>\n$plan\n</plan>\n"
    return string.Template(text).safe_substitute(values)
