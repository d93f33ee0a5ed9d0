"""How the CLI prints a list: on a terminal, aligned columns when they fit its width and
one short block per row when they do not; piped, one line per row with every value in
full (so ``interlock keys list | grep status-page`` finds the row and
``awk '{print $1}'`` its id); or JSON for scripts.

Never a table squeezed to the terminal's width (Rich's), which wraps an id or a name
into a column one word wide, and is useless to ``grep`` and wrong in a log file.
"""

from __future__ import annotations

import enum
import json
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.markup import escape

from interlock.cli.common import stdout


class Output(enum.StrEnum):
    TABLE = "table"
    PLAIN = "plain"
    JSON = "json"


OutputOption = Annotated[Output | None, typer.Option(
    "--output", "-o", metavar="FORMAT",
    help="table, plain (one line per row, every value in full) or json; "
         "default: table on a terminal, plain when piped")]


@dataclass(frozen=True)
class Column:
    key: str  # the JSON field
    header: str


Value = str | list[str] | None


def _text(value: Value, separator: str) -> str:
    if isinstance(value, list):
        return separator.join(value)
    return value or ""


def show(columns: Sequence[Column], rows: Sequence[Mapping[str, Value]],
         output: Output | None, *, empty: str) -> None:
    """Print ``rows`` as ``output`` says (or as suits where standard output goes)."""
    chosen = output or (Output.TABLE if sys.stdout.isatty() else Output.PLAIN)
    if chosen is Output.JSON:
        print(json.dumps([dict(row) for row in rows], indent=2))
        return
    if not rows:
        print(empty)
        return
    if chosen is Output.PLAIN:
        for line in plain_lines(columns, rows):
            print(line)
        return
    width = shutil.get_terminal_size().columns
    lines = plain_lines(columns, rows, separator=", ")
    if max(len(line) for line in lines) <= width:
        stdout.print(f"[bold]{escape(lines[0])}[/bold]", highlight=False)
        for line in lines[1:]:
            print(line)
        return
    for line in record_lines(columns, rows):  # too wide: one short block per row
        print(line)


def record_lines(columns: Sequence[Column], rows: Sequence[Mapping[str, Value]]
                 ) -> list[str]:
    """Each row as its first two values on one line, then ``header: value`` lines, so
    nothing is cut or squeezed into a column one word wide on a narrow terminal."""
    lines: list[str] = []
    for row in rows:
        first = "  ".join(_text(row.get(column.key), ", ") for column in columns[:2])
        lines.append(first)
        lines += [f"    {column.header.lower()}: {_text(row.get(column.key), ', ')}"
                  for column in columns[2:] if _text(row.get(column.key), ", ")]
    return lines


def plain_lines(columns: Sequence[Column], rows: Sequence[Mapping[str, Value]], *,
                separator: str = ",") -> list[str]:
    """Aligned columns, two spaces apart, ``-`` for an empty value, nothing cut."""
    cells = [[column.header.upper() for column in columns]]
    cells += [[_text(row.get(column.key), separator) or "-" for column in columns]
              for row in rows]
    widths = [max(len(line[index]) for line in cells) for index in range(len(columns))]
    return ["  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)
                      ).rstrip() for line in cells]
