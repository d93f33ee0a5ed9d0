"""The generic HTTP connector's worked examples, read from the README.

Tests run exactly the JSON a reader copies, so the README cannot drift from what is
tested: each example is the ```` ```json ```` block of "The generic HTTP connector"
whose ``"name"`` is asked for. Only where it points (``base_url``) and its secrets are
replaced, by the loopback tool's.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from tests.support.readme import blocks

README = Path(__file__).resolve().parents[2] / "README.md"
GITHUB = "GitHub issues"
HELPDESK = "Helpdesk"


def readme_example(name: str) -> dict[str, Any]:
    """The POST /api/v1/connectors body of the README example called ``name``."""
    for block in blocks(README.read_text()):
        if block.language != "json":
            continue
        try:
            data = json.loads(block.text)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("kind") == "http" and data.get("name") == name:
            return data
    raise AssertionError(f"README.md has no http connector example named {name!r}")


def pointed_at(example: dict[str, Any], base_url: str, **credentials: str) -> dict[str, Any]:
    """The example with its base URL and credentials replaced (the names stay)."""
    made = copy.deepcopy(example)
    made["settings"]["base_url"] = base_url
    assert set(credentials) == set(made["credentials"]), "the README's credentials changed"
    made["credentials"] = credentials
    return made
