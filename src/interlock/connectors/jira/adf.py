"""Plain text to and from Atlassian Document Format (ADF).

Jira Cloud's REST API v3 takes and returns rich text (issue descriptions, comment
bodies) only as ADF documents: a tree of block nodes (``paragraph``) holding inline
nodes (``text``, ``hardBreak``, ``mention``…). Interlock keeps plain text, so this module
is deliberately lossy: it writes the smallest valid document for a text (paragraphs,
line breaks, links) and reads any document back as readable text, ignoring formatting
it does not know rather than failing on it (people write tables and panels in Jira).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

#: Block nodes whose text starts on a new line when read back.
_BLOCKS = frozenset({
    "paragraph", "heading", "blockquote", "codeBlock", "bulletList", "orderedList",
    "listItem", "panel", "rule", "table", "tableRow", "tableHeader", "tableCell",
    "mediaSingle", "mediaGroup", "expand", "nestedExpand", "decisionList", "decisionItem",
    "taskList", "taskItem",
})

_BLANK_LINES = re.compile(r"\n\s*\n")


def document(*paragraphs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """An ADF document with one paragraph per sequence of inline nodes (empty ones are
    dropped: Jira rejects a paragraph node with empty text)."""
    content = [{"type": "paragraph", "content": list(nodes)} for nodes in paragraphs if nodes]
    return {"type": "doc", "version": 1, "content": content}


def inline(text: str) -> list[dict[str, Any]]:
    """Inline nodes for one paragraph of text: single newlines become hard breaks."""
    nodes: list[dict[str, Any]] = []
    for index, line in enumerate(text.split("\n")):
        if index:
            nodes.append({"type": "hardBreak"})
        if line:
            nodes.append({"type": "text", "text": line})
    return nodes


def link(label: str, href: str) -> dict[str, Any]:
    """A text node that links to ``href``."""
    return {"type": "text", "text": label,
            "marks": [{"type": "link", "attrs": {"href": href}}]}


def from_text(text: str) -> dict[str, Any]:
    """A document for plain text; a blank line separates paragraphs."""
    paragraphs = [part.strip("\n") for part in _BLANK_LINES.split(text.strip())]
    return document(*(inline(part) for part in paragraphs))


def to_text(node: Any) -> str:
    """Readable text for an ADF document (or a plain string, as webhooks and API v2 send
    bodies): paragraphs separated by a blank line, unknown nodes read for their text."""
    if isinstance(node, str):
        return node
    if not isinstance(node, Mapping):
        return ""
    blocks: list[str] = []
    _collect(node, blocks, [])
    return "\n\n".join(block for block in blocks if block.strip()).strip()


def _collect(node: Mapping[str, Any], blocks: list[str], line: list[str]) -> None:
    kind = node.get("type")
    if kind == "text":
        line.append(str(node.get("text", "")))
        return
    if kind == "hardBreak":
        line.append("\n")
        return
    if kind in ("mention", "emoji", "status", "date"):
        attrs = node.get("attrs") or {}
        line.append(str(attrs.get("text") or attrs.get("shortName") or ""))
        return
    if kind in ("inlineCard", "blockCard"):
        line.append(str((node.get("attrs") or {}).get("url", "")))
        return
    children = node.get("content") or []
    if kind in _BLOCKS or kind == "doc":
        own: list[str] = []
        for child in children:
            if isinstance(child, Mapping):
                _collect(child, blocks, own)
        if own:
            blocks.append("".join(own))
        return
    for child in children:
        if isinstance(child, Mapping):
            _collect(child, blocks, line)
