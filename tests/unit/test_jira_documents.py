"""Markdown status comments become ADF (Jira Cloud) or wiki markup (Data Center) that Jira renders properly."""

from __future__ import annotations

from typing import Any

from tests.sims.jira import adf_problems
from tracker_bridge_connectors.jira.adf import adf_to_text, markdown_to_adf
from tracker_bridge_connectors.jira.wiki import markdown_to_wiki

STATUS = """<!-- tracker-bridge:status -->
### tracker-bridge: declined: not ready for an agent yet

**Stage:** `declined` (column *Needs Refinement*) · **Pull request:** https://git.example/pr/7

**Why:** score 0.31 is below the threshold 0.60

| factor | value | why |
|---|---|---|
| clarity | 0.20 | no acceptance criteria |
| scope | 0.50 | touches five modules |

- add acceptance criteria
- name the failing test, see [the guide](https://docs.example/guide)
  - nested detail
1. first
2. second
"""


def nodes(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    found = []

    def walk(n: dict[str, Any]) -> None:
        if n.get("type") == kind:
            found.append(n)
        for c in n.get("content", []):
            walk(c)

    walk(doc)
    return found


def marks_of(doc: dict[str, Any], text: str) -> set[str]:
    return {m["type"] for t in nodes(doc, "text") if t["text"] == text for m in t.get("marks", [])}


def test_status_comment_becomes_valid_adf_with_structure() -> None:
    doc = markdown_to_adf(STATUS)
    assert adf_problems(doc) == []
    heading = nodes(doc, "heading")[0]
    assert heading["attrs"]["level"] == 3
    assert "tracker-bridge" in adf_to_text(heading)
    assert marks_of(doc, "Stage:") == {"strong"}
    assert marks_of(doc, "declined") == {"code"}
    assert marks_of(doc, "Needs Refinement") == {"em"}
    link = next(t for t in nodes(doc, "text") if t["text"] == "the guide")
    assert link["marks"][0] == {"type": "link", "attrs": {"href": "https://docs.example/guide"}}
    bare = next(t for t in nodes(doc, "text") if t["text"] == "https://git.example/pr/7")
    assert bare["marks"][0]["attrs"]["href"] == "https://git.example/pr/7"
    table = nodes(doc, "table")[0]
    assert len(table["content"]) == 3
    assert [c["type"] for c in table["content"][0]["content"]] == ["tableHeader"] * 3
    assert adf_to_text(table["content"][1]["content"][2]) == "no acceptance criteria"
    bullets = nodes(doc, "bulletList")
    assert len(bullets[0]["content"]) == 2 and len(bullets) == 2  # the nested list lives inside the second item
    assert len(nodes(doc, "orderedList")[0]["content"]) == 2
    # The hidden marker is not shown as text: Jira would print it literally.
    assert "tracker-bridge:status" not in adf_to_text(doc)


def test_code_blocks_quotes_and_rules() -> None:
    doc = markdown_to_adf("```python\nprint('x')\n```\n\n> quoted **text**\n\n---\n\nend")
    assert adf_problems(doc) == []
    assert nodes(doc, "codeBlock")[0]["attrs"] == {"language": "python"}
    assert adf_to_text(nodes(doc, "codeBlock")[0]).strip("`\n") == "print('x')"
    assert nodes(doc, "blockquote") and nodes(doc, "rule")


def test_adf_descriptions_flatten_to_readable_text() -> None:
    description = {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Expected"}]},
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "round_cents", "marks": [{"type": "code"}]},
                    {"type": "text", "text": " returns 0.01"},
                ],
            },
            {
                "type": "bulletList",
                "content": [
                    {
                        "type": "listItem",
                        "content": [{"type": "paragraph", "content": [{"type": "text", "text": "a"}]}],
                    },
                ],
            },
        ],
    }
    assert adf_to_text(description) == "## Expected\n\n`round_cents` returns 0.01\n\n- a"
    assert adf_to_text("plain v2 text") == "plain v2 text"
    assert adf_to_text(None) == ""


def test_wiki_markup_for_data_center() -> None:
    wiki = markdown_to_wiki(STATUS)
    assert wiki.startswith("h3. tracker-bridge: declined")
    assert "*Stage:*" in wiki and "{{declined}}" in wiki and "_Needs Refinement_" in wiki
    assert "||factor||value||why||" in wiki and "|clarity|0.20|no acceptance criteria|" in wiki
    assert "* add acceptance criteria" in wiki and "** nested detail" in wiki and "# first" in wiki
    assert "[the guide|https://docs.example/guide]" in wiki
    assert "<!--" not in wiki
