"""The README as a test: its shell blocks, in order, with the output each should print.

A ```` ```sh ```` block is a step. A fence that opens on the very next line, with no
language or ``json``, is the output it must print. An HTML comment on the line before a
fence (blank lines between are allowed) tells the runner what else to do; a reader of
the rendered README never sees it:

``<!-- readme-test: skip REASON -->``
    Not run (a real Jira, DNS, minutes of benchmark); reported as skipped with REASON.
``<!-- readme-test: server -->``
    A ``make run`` block: the runner starts (or restarts, on the same database)
    ``interlock serve`` itself, on a free port, with any ``NAME=value`` the block puts
    before ``make run``.
``<!-- readme-test: background NAME -->``
    Run the block in the background (a "second terminal"), its output kept as NAME.
``<!-- readme-test: output of NAME -->``
    On an output fence: the output of the server or of background NAME must come to
    show these lines, in this order (other lines may come between them).
``<!-- readme-test: eventually -->``
    A block that only reads state the worker reaches a moment later: run again until
    its output matches (it must be safe to repeat).
``<!-- readme-test: instead COMMAND -->``
    Run COMMAND in place of the block (a throwaway server the tests already have).

What cannot be the same from run to run is masked on both sides before comparing: ids,
secrets, times, durations, lengths and the loopback ports the runner chose.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

VERBS = ("skip", "server", "background", "output of", "eventually", "instead")
DIRECTIVE = re.compile(r"^<!--\s*readme-test:\s*(?P<verb>[a-z ]+?)(?:\s+(?P<rest>.*?))?\s*-->$")
KNOWN = re.compile(rf"^(?P<verb>{'|'.join(VERBS)})(?:\s+(?P<rest>.*))?$")


@dataclass
class Block:
    """One fenced block of the README and what the runner is told about it."""

    line: int  # 1-based line of the opening fence
    language: str
    text: str
    verb: str | None = None
    argument: str = ""
    expected: Block | None = None  # the output fence right after a shell block

    @property
    def name(self) -> str:
        return f"README.md:{self.line}"


@dataclass
class Step:
    """What the runner does, in order: a shell block, or an output to wait for."""

    block: Block
    kind: str  # "run", "skip", "server", "background", "output", "instead"
    expected: str | None = None
    eventually: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.block.name


def blocks(text: str) -> list[Block]:
    """Every fenced block, with the directive just before it."""
    found: list[Block] = []
    lines = text.splitlines()
    directive: tuple[str, str] | None = None
    index = 0
    previous_end = -2
    while index < len(lines):
        line = lines[index]
        match = DIRECTIVE.match(line.strip())
        if match:
            known = KNOWN.match(f"{match['verb']} {match['rest'] or ''}".strip())
            if not known:
                raise ValueError(f"README.md:{index + 1}: unknown readme-test directive")
            directive = (known["verb"], known["rest"] or "")
        elif line.startswith("```"):
            language = line[3:].strip()
            start = index
            index += 1
            body: list[str] = []
            while index < len(lines) and not lines[index].startswith("```"):
                body.append(lines[index])
                index += 1
            block = Block(start + 1, language, "\n".join(body) + "\n")
            if directive:
                block.verb, block.argument = directive
            follows_shell = (found and start == previous_end + 1
                             and found[-1].language == "sh" and not block.verb)
            if follows_shell and language in ("", "json"):
                found[-1].expected = block
            else:
                found.append(block)
            previous_end = index
            directive = None
        elif line.strip():
            directive = None
        index += 1
    return found


def steps(readme: Path) -> list[Step]:
    """The README's shell blocks and awaited outputs, in document order."""
    planned: list[Step] = []
    for block in blocks(readme.read_text()):
        expected = block.expected.text if block.expected else None
        if block.verb == "output of":
            planned.append(Step(block, "output", expected=block.text))
        elif block.language != "sh":
            continue
        elif block.verb == "skip":
            planned.append(Step(block, "skip"))
        elif block.verb == "server":
            planned.append(Step(block, "server", extra=make_run_environment(block)))
        elif block.verb in ("background", "instead"):
            planned.append(Step(block, block.verb, expected=expected))
        else:
            planned.append(Step(block, "run", expected=expected,
                                eventually=block.verb == "eventually"))
    return planned


def make_run_environment(block: Block) -> dict[str, str]:
    """``A=1 B=2 make run`` -> {"A": "1", "B": "2"}."""
    command = block.text.strip()
    match = re.fullmatch(r"((?:[A-Z_]+=\S+\s+)*)make run", command)
    if not match:
        raise ValueError(f"{block.name}: a server block must be `[NAME=value ...] make run`")
    return dict(item.split("=", 1) for item in match[1].split())


# -- masking ------------------------------------------------------------------------

_MASKS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(ilk|ilt|whsec)_[A-Za-z0-9_+/=-]{20,}"), r"\1_<secret>"),
    (re.compile(r"\bilk_[A-Za-z0-9_-]{6}(?=…|\")"), "ilk_<prefix>"),
    (re.compile(r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)?"), "<time>"),
    (re.compile(r"\b\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT"), "<time>"),
    (re.compile(r"\b\d\d:\d\d:\d\d\b"), "<time>"),
    (re.compile(r"\b\d+(\.\d+)? ms\b"), "<n> ms"),
    (re.compile(r"(?i)\b(content-length: )\d+"), r"\1<n>"),
    (re.compile(r"process \[\d+\]"), "process [<pid>]"),
    (re.compile(r"\b(pid|PID) \d+"), r"\1 <pid>"),
]
_IDS = re.compile(r"\b([a-z]{2,4})_[0-9A-HJKMNP-TV-Z]{26}\b")
_UUIDS = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


def mask(text: str) -> str:
    """``text`` with what changes from run to run replaced by placeholders. Ids become
    ``<prefix#n>``, numbered by first appearance, so two mentions of one id must still
    be one id."""
    seen: dict[str, str] = {}
    counts: dict[str, int] = {}

    def number(match: re.Match[str], prefix: str) -> str:
        if match[0] not in seen:
            counts[prefix] = counts.get(prefix, 0) + 1
            seen[match[0]] = f"<{prefix}#{counts[prefix]}>"
        return seen[match[0]]

    text = text.replace("\r\n", "\n")
    text = _IDS.sub(lambda m: number(m, m[1]), text)
    text = _UUIDS.sub(lambda m: number(m, "uuid"), text)
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def contains_in_order(actual: str, expected: str) -> bool:
    """Every expected line appears in ``actual``, in this order."""
    remaining: Iterator[str] = iter(actual.split("\n"))
    return all(any(line == candidate for candidate in remaining)
               for line in expected.split("\n") if line)
