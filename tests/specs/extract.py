"""Write the trimmed API descriptions in this folder from the makers' published files.

The full descriptions are large (Jira Cloud's is 2.4 MB, Slack's 1.2 MB), so the test
suite keeps only the operations Interlock's connectors call, with every schema they
reference, unchanged. Run it again when a connector starts calling another operation:

    python tests/specs/extract.py /path/to/the/full/specs

The sources (see tests/specs/README.md): Atlassian's published Jira Cloud platform
REST API v3 description (``swagger-v3.v3.json``, licensed Apache 2.0 as its ``info``
says) and slackapi/slack-api-specs ``web-api/slack_web_openapi_v2.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

#: (source file, trimmed file, paths kept with the methods kept).
TRIMS: list[tuple[str, str, dict[str, list[str]]]] = [
    ("jira-cloud-rest-v3.json", "jira-cloud-rest-v3.trimmed.json", {
        "/rest/api/3/myself": ["get"],
        "/rest/api/3/issue": ["post"],
        "/rest/api/3/issue/{issueIdOrKey}": ["get", "put", "delete"],
        "/rest/api/3/issue/{issueIdOrKey}/transitions": ["get", "post"],
        "/rest/api/3/issue/{issueIdOrKey}/comment": ["get", "post"],
        "/rest/api/3/search/jql": ["get", "post"],
        # Kept to show why the README does not use it: Connect and OAuth 2.0 apps only.
        "/rest/api/3/webhook": ["post"],
    }),
    ("slack-web-api.json", "slack-web-api.trimmed.json", {
        "/chat.postMessage": ["post"],
        "/chat.update": ["post"],
        "/conversations.history": ["get"],
    }),
]


def trim(full: dict[str, Any], keep: dict[str, list[str]]) -> dict[str, Any]:
    paths = {path: {method: full["paths"][path][method] for method in methods}
             for path, methods in keep.items()}
    for path in keep:
        shared = full["paths"][path].get("parameters")
        if shared:
            paths[path]["parameters"] = shared
    trimmed: dict[str, Any] = {key: value for key, value in full.items()
                               if key not in ("paths", "components", "definitions", "tags",
                                              "x-atlassian-narrative")}
    trimmed["paths"] = paths
    wanted: set[tuple[str, ...]] = set()
    pending: list[Any] = [paths]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/"):
                parts = tuple(ref[2:].split("/"))
                if parts not in wanted:
                    wanted.add(parts)
                    pending.append(_at(full, parts))
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    for parts in sorted(wanted):
        place = trimmed
        for part in parts[:-1]:
            place = place.setdefault(part, {})
        place[parts[-1]] = _at(full, parts)
    if "components" in full and "securitySchemes" in full["components"]:
        trimmed.setdefault("components", {})["securitySchemes"] = \
            full["components"]["securitySchemes"]
    if "securityDefinitions" in full:
        trimmed["securityDefinitions"] = full["securityDefinitions"]
    return trimmed


def _at(document: dict[str, Any], parts: tuple[str, ...]) -> Any:
    node: Any = document
    for part in parts:
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def main(source: Path) -> None:
    for name, out, keep in TRIMS:
        full = json.loads((source / name).read_text())
        trimmed = trim(full, keep)
        (HERE / out).write_text(json.dumps(trimmed, indent=1, sort_keys=True) + "\n")
        print(f"{out}: {len(trimmed['paths'])} paths, "
              f"{(HERE / out).stat().st_size // 1024} KB")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
