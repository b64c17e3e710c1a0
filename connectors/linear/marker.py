"""The hidden marker of tracker-bridge's status comment, in a form that survives Linear's Markdown.

Linear does not store Markdown as sent: it converts a comment to its rich-text (ProseMirror) document and serialises
it back to Markdown when asked for `body`. Raw HTML has no node in that document, so the core's `<!-- ... -->` marker
cannot be relied on to come back (it is dropped, or escaped into visible text). A link is a first-class mark and
round-trips, so the marker is a link to a reserved `.invalid` URL whose text is a single zero-width space: invisible
when rendered, present in `body`, and searchable server-side with `comments(filter: {body: {contains: ...}})`.
"""

from __future__ import annotations

import re

from tracker_bridge.protocols import STATUS_MARKER

MARKER_URL = "https://tracker-bridge.invalid/status-comment"
MARKER_LINK = f"[\u200b]({MARKER_URL})"
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)


def with_marker(body: str) -> str:
    """The body to send: the core's HTML-comment marker replaced by the invisible link at the end."""
    text = body.replace(STATUS_MARKER, "").strip()
    return f"{text}\n\n{MARKER_LINK}"


def has_marker(body: str) -> bool:
    # STATUS_MARKER too: a comment written by another client, or kept verbatim by a future Linear, still counts.
    return MARKER_URL in body or STATUS_MARKER in body


def same_content(stored: str, wanted: str) -> bool:
    """Whether an edit would change what people see, ignoring what Linear's Markdown round-trip normalises."""

    def norm(text: str) -> str:
        text = _HTML_COMMENT.sub("", text)
        return "\n".join(line.rstrip() for line in text.strip().splitlines())

    return norm(stored) == norm(wanted)
