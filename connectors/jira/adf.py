"""Atlassian Document Format (ADF), the JSON body of v3 descriptions and comments, to and from Markdown.

The engine renders the status comment in Markdown (headings, bold, tables, bullet lists, links); Jira Cloud's REST
v3 takes ADF, so the comment is converted here rather than posted as literal Markdown that Jira would show raw.
Descriptions and people's comments come back as ADF and are flattened to Markdown-ish text for scoring.
"""

from __future__ import annotations

import re
from typing import Any

Node = dict[str, Any]

_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# Inline Markdown: links, bold, code, italic; the first alternative that matches at a position wins.
_INLINE = re.compile(
    r"\[(?P<ltext>[^\]]+)\]\((?P<lurl>[^)\s]+)\)"
    r"|\*\*(?P<bold>.+?)\*\*"
    r"|__(?P<bold2>.+?)__"
    r"|`(?P<code>[^`]+)`"
    r"|(?<![\w*])\*(?P<em>[^*\s][^*]*?)\*(?![\w*])"
    r"|(?<![\w_])_(?P<em2>[^_\s][^_]*?)_(?![\w_])"
    r"|(?P<url>https?://[^\s<>()]+[^\s<>().,;:!?])"
)
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_ORDERED = re.compile(r"^(\s*)\d+[.)]\s+(.*)$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")


def _text(value: str, marks: list[Node] | None = None) -> Node:
    node: Node = {"type": "text", "text": value}
    if marks:
        node["marks"] = marks
    return node


def inline(text: str, marks: list[Node] | None = None) -> list[Node]:
    """Markdown inline text -> ADF text nodes with marks (strong, em, code, link)."""
    out: list[Node] = []
    base = list(marks or [])
    pos = 0
    for m in _INLINE.finditer(text):
        if m.start() > pos:
            out.append(_text(text[pos : m.start()], base))
        if m.group("ltext") is not None:
            link = {"type": "link", "attrs": {"href": m.group("lurl")}}
            out.extend(inline(m.group("ltext"), [*base, link]))
        elif m.group("bold") is not None or m.group("bold2") is not None:
            out.extend(inline(m.group("bold") or m.group("bold2"), [*base, {"type": "strong"}]))
        elif m.group("code") is not None:
            # ADF allows only `link` beside `code`.
            out.append(_text(m.group("code"), [*[k for k in base if k["type"] == "link"], {"type": "code"}]))
        elif m.group("em") is not None or m.group("em2") is not None:
            out.extend(inline(m.group("em") or m.group("em2"), [*base, {"type": "em"}]))
        else:
            url = m.group("url")
            out.append(_text(url, [*base, {"type": "link", "attrs": {"href": url}}]))
        pos = m.end()
    if pos < len(text):
        out.append(_text(text[pos:], base))
    return [n for n in out if n["text"]]


def _paragraph(text: str) -> Node:
    return {"type": "paragraph", "content": inline(text)}


def _cells(row: str) -> list[str]:
    row = row.strip()
    row = row[1:] if row.startswith("|") else row
    row = row[:-1] if row.endswith("|") else row
    return [c.strip() for c in re.split(r"(?<!\\)\|", row)]


def _table(lines: list[str]) -> Node:
    header, body = _cells(lines[0]), [_cells(r) for r in lines[2:]]
    width = len(header)

    def row(cells: list[str], kind: str) -> Node:
        padded = (cells + [""] * width)[:width]
        return {
            "type": "tableRow",
            "content": [{"type": kind, "attrs": {}, "content": [_paragraph(c)]} for c in padded],
        }

    return {
        "type": "table",
        "attrs": {"isNumberColumnEnabled": False, "layout": "default"},
        "content": [row(header, "tableHeader"), *(row(r, "tableCell") for r in body)],
    }


def _item(line: str) -> tuple[int, str] | None:
    """(indentation, "bullet" or "ordered") of a list item line; None for other lines."""
    if m := _BULLET.match(line):
        return len(m.group(1)), "bullet"
    if m := _ORDERED.match(line):
        return len(m.group(1)), "ordered"
    return None


def _list(lines: list[str]) -> Node:
    """Consecutive list lines (bullets or numbers, nested by indentation) -> bulletList / orderedList."""
    first = _ORDERED.match(lines[0])
    kind = "orderedList" if first else "bulletList"
    indent = len((first or _BULLET.match(lines[0]) or re.match(r"(\s*)", lines[0])).group(1))  # type: ignore[union-attr]
    items: list[Node] = []
    i = 0
    while i < len(lines):
        m = _BULLET.match(lines[i]) or _ORDERED.match(lines[i])
        if m is None:
            i += 1
            continue
        item: Node = {"type": "listItem", "content": [_paragraph(m.group(2))]}
        j = i + 1
        nested: list[str] = []
        while j < len(lines):
            n = _BULLET.match(lines[j]) or _ORDERED.match(lines[j])
            if n is not None and len(n.group(1)) <= indent:
                break
            nested.append(lines[j])
            j += 1
        if nested:
            item["content"].append(_list(nested))
        items.append(item)
        i = j
    node: Node = {"type": kind, "content": items}
    if kind == "orderedList":
        node["attrs"] = {"order": 1}
    return node


def markdown_to_adf(markdown: str) -> Node:
    """A Markdown document -> an ADF document (version 1). HTML comments (hidden markers) are dropped."""
    lines = _HTML_COMMENT.sub("", markdown).splitlines()
    content: list[Node] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            content.append(_paragraph(" ".join(s.strip() for s in para)))
            para.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            flush()
            i += 1
        elif line.lstrip().startswith("```"):
            flush()
            lang = line.strip()[3:].strip()
            j = i + 1
            while j < len(lines) and not lines[j].lstrip().startswith("```"):
                j += 1
            code: Node = {"type": "codeBlock", "content": [_text("\n".join(lines[i + 1 : j]))] if j > i + 1 else []}
            if lang:
                code["attrs"] = {"language": lang}
            content.append(code)
            i = j + 1
        elif m := _HEADING.match(line):
            flush()
            content.append({"type": "heading", "attrs": {"level": len(m.group(1))}, "content": inline(m.group(2))})
            i += 1
        elif _RULE.match(line):
            flush()
            content.append({"type": "rule"})
            i += 1
        elif line.lstrip().startswith("|") and i + 1 < len(lines) and _TABLE_SEP.match(lines[i + 1]):
            flush()
            j = i + 2
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                j += 1
            content.append(_table(lines[i:j]))
            i = j
        elif _BULLET.match(line) or _ORDERED.match(line):
            flush()
            indent, kind = _item(line) or (0, "bullet")
            j = i + 1
            while j < len(lines) and lines[j].strip():
                nxt = _item(lines[j])
                deeper = len(lines[j]) - len(lines[j].lstrip()) > indent
                if not deeper and (nxt is None or nxt[1] != kind):
                    break  # a list of the other kind (or plain text) starts here
                j += 1
            content.append(_list(lines[i:j]))
            i = j
        elif line.lstrip().startswith(">"):
            flush()
            j = i
            quoted: list[str] = []
            while j < len(lines) and lines[j].lstrip().startswith(">"):
                quoted.append(lines[j].lstrip()[1:].lstrip())
                j += 1
            inner = markdown_to_adf("\n".join(quoted))["content"]
            content.append({"type": "blockquote", "content": inner or [_paragraph(" ")]})
            i = j
        else:
            para.append(line)
            i += 1
    flush()
    return {"type": "doc", "version": 1, "content": content}


def adf_to_text(node: Any) -> str:
    """An ADF document (or a plain string from REST v2) -> readable Markdown-ish text."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node
    return _block(node).strip()


def _inline_text(nodes: list[Node]) -> str:
    parts: list[str] = []
    for n in nodes:
        kind = n.get("type")
        if kind == "text":
            text = str(n.get("text", ""))
            for mark in n.get("marks", []):
                if mark.get("type") == "code":
                    text = f"`{text}`"
                elif mark.get("type") == "strong":
                    text = f"**{text}**"
                elif mark.get("type") == "link":
                    text = f"[{text}]({mark.get('attrs', {}).get('href', '')})"
            parts.append(text)
        elif kind == "hardBreak":
            parts.append("\n")
        elif kind == "mention":
            parts.append(str(n.get("attrs", {}).get("text") or "@someone"))
        elif kind in ("inlineCard", "blockCard"):
            parts.append(str(n.get("attrs", {}).get("url", "")))
        elif kind in ("emoji", "status", "date"):
            attrs = n.get("attrs", {})
            parts.append(str(attrs.get("text") or attrs.get("shortName") or attrs.get("timestamp") or ""))
        else:
            parts.append(_block(n))
    return "".join(parts)


def _block(node: Node, depth: int = 0) -> str:
    kind = node.get("type")
    content: list[Node] = node.get("content", []) or []
    if kind == "doc" or kind in ("panel", "expand", "nestedExpand", "layoutSection", "layoutColumn"):
        return "\n\n".join(s for s in (_block(c, depth) for c in content) if s.strip())
    if kind == "paragraph":
        return _inline_text(content)
    if kind == "heading":
        return "#" * int(node.get("attrs", {}).get("level", 1)) + " " + _inline_text(content)
    if kind in ("bulletList", "orderedList"):
        lines = []
        for idx, item in enumerate(content, start=1):
            bullet = f"{idx}." if kind == "orderedList" else "-"
            parts = [_block(c, depth + 1) for c in item.get("content", [])]
            first, rest = (parts[0] if parts else ""), parts[1:]
            lines.append("  " * depth + f"{bullet} {first}")
            lines.extend(rest)
        return "\n".join(lines)
    if kind == "codeBlock":
        return "```\n" + _inline_text(content) + "\n```"
    if kind == "blockquote":
        return "\n".join("> " + line for line in _block({"type": "doc", "content": content}).splitlines())
    if kind == "rule":
        return "---"
    if kind == "table":
        rows = []
        for r, row in enumerate(content):
            cells = [
                _block({"type": "doc", "content": c.get("content", [])}).replace("\n", " ") for c in row["content"]
            ]
            rows.append("| " + " | ".join(cells) + " |")
            if r == 0:
                rows.append("|" + "---|" * len(cells))
        return "\n".join(rows)
    return _inline_text(content) if content else str(node.get("text", ""))
