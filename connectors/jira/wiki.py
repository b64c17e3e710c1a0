"""Markdown -> Jira wiki markup, the comment format of REST v2 (Jira Data Center).

Built on the ADF conversion so both API versions render the same document: Markdown is parsed once into ADF and
ADF is written out as wiki markup (h2., *bold*, ||header||, [text|url], {code}).
"""

from __future__ import annotations

from typing import Any

from tracker_bridge_connectors.jira.adf import markdown_to_adf

Node = dict[str, Any]


def markdown_to_wiki(markdown: str) -> str:
    return "\n\n".join(_block(n) for n in markdown_to_adf(markdown)["content"]).strip()


def _inline(nodes: list[Node]) -> str:
    out: list[str] = []
    for n in nodes:
        if n.get("type") != "text":
            continue
        text = str(n["text"])
        href = None
        for mark in n.get("marks", []):
            kind = mark.get("type")
            if kind == "strong":
                text = f"*{text}*"
            elif kind == "em":
                text = f"_{text}_"
            elif kind == "code":
                text = "{{" + text + "}}"
            elif kind == "link":
                href = mark["attrs"]["href"]
        out.append(f"[{text}|{href}]" if href and text != href else (f"[{href}]" if href else text))
    return "".join(out)


def _block(node: Node, depth: int = 1) -> str:
    kind = node.get("type")
    content: list[Node] = node.get("content", [])
    if kind == "paragraph":
        return _inline(content)
    if kind == "heading":
        return f"h{node['attrs']['level']}. {_inline(content)}"
    if kind in ("bulletList", "orderedList"):
        bullet = ("#" if kind == "orderedList" else "*") * depth
        lines: list[str] = []
        for item in content:
            for i, child in enumerate(item.get("content", [])):
                if child.get("type") in ("bulletList", "orderedList"):
                    lines.append(_block(child, depth + 1))
                elif i == 0:
                    lines.append(f"{bullet} {_block(child, depth)}")
                else:
                    lines.append(_block(child, depth))
        return "\n".join(lines)
    if kind == "codeBlock":
        return "{code}\n" + "".join(str(t.get("text", "")) for t in content) + "\n{code}"
    if kind == "table":
        rows = []
        for row in content:
            cells = [(c["type"], " ".join(_block(p) for p in c.get("content", []))) for c in row["content"]]
            rows.append(
                "".join(f"||{t}" if k == "tableHeader" else f"|{t}" for k, t in cells)
                + ("||" if cells and cells[-1][0] == "tableHeader" else "|")
            )
        return "\n".join(rows)
    if kind == "blockquote":
        return "{quote}\n" + "\n\n".join(_block(c) for c in content) + "\n{quote}"
    if kind == "rule":
        return "----"
    return _inline(content)
