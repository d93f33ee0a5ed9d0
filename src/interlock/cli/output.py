"""How the CLI prints a list: a table that fits the terminal, or, when piped, one line per
row with every value in full (so ``interlock keys list | grep status-page`` finds the
row and ``awk '{print $1}'`` its id), or JSON for scripts.

Rich's tables are for people at a terminal: they squeeze columns to its width and wrap
or shorten cells, which is useless to ``grep`` and wrong in a log file.
"""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated

import typer
from rich import box
from rich.table import Table

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
    #: Never wrapped in a table (ids, times): the value must stay whole to be used.
    whole: bool = False


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
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in columns:
        table.add_column(column.header, no_wrap=column.whole, overflow="fold",
                         min_width=None)
    for row in rows:
        table.add_row(*(_text(row.get(column.key), ", ") for column in columns))
    stdout.print(table, soft_wrap=False)


def plain_lines(columns: Sequence[Column], rows: Sequence[Mapping[str, Value]]) -> list[str]:
    """Aligned columns, two spaces apart, ``-`` for an empty value, nothing cut."""
    cells = [[column.header.upper() for column in columns]]
    cells += [[_text(row.get(column.key), ",") or "-" for column in columns] for row in rows]
    widths = [max(len(line[index]) for line in cells) for index in range(len(columns))]
    return ["  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)
                      ).rstrip() for line in cells]
