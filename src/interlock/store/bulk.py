"""Statements written for every delivery and every incident change, prebuilt: compiled
once per dialect and run by the driver on rows that are already in the driver's terms;
and reads of many rows decoded from the driver's values (:class:`Decoders`).

SQLAlchemy's executemany builds a dict and runs every column's type processors for each
row. For the few statements that run once per delivery (fan-out, attempt, outcome) that
was the largest share of the worker's database CPU: cProfile of the database side
(3,000 deliveries, SQLite) put parameter processing at 29 % of it, three times SQLite's
own executemany. Here a row is a tuple in the statement's column order, its datetimes
passed through :meth:`Prebuilt.time`, and nothing else happens to it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles

from interlock.domain import json_codec

#: A datetime as this dialect's driver takes it (see UtcDateTime, which it mirrors).
TimeParam = Callable[[datetime | None], Any]
JsonParam = Callable[[Any], Any]


def _sqlite_time(value: datetime | None) -> str | None:
    """Naive UTC text, as UtcDateTime and SQLAlchemy's SQLite DATETIME write it."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _remembering(convert: Callable[[datetime | None], Any]) -> TimeParam:
    """``convert``, remembering its last answer: the rows of one statement mostly carry
    the same moment (the batch's ``now``) in several columns."""
    last: list[Any] = [None, None]

    def remembered(value: datetime | None) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, convert(value)
        return last[1]

    return remembered


def _aware_time(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value


class Prebuilt:
    """An INSERT or UPDATE whose parameters are the bind parameters ``names``, in that
    order. Build it at import time; use it from any connection."""

    def __init__(self, statement: sa.Insert | sa.Update, names: Sequence[str], *,
                 by_arrays: Callable[[Dialect], str] | None = None) -> None:
        """``by_arrays``: the statement on PostgreSQL over one array per parameter, in
        the order of ``names`` (see :meth:`executemany`; :func:`insert`, :func:`update`
        make it)."""
        self._statement = statement
        self.names = tuple(names)
        self._by_arrays = by_arrays
        self._arrays_sql: str | None = None
        #: By dialect name and whether for executemany: the SQL, and for positional
        #: drivers the order of the row's values in it (None: the row's own order).
        self._compiled: dict[tuple[str, bool], tuple[str, tuple[int, ...] | None, bool]] = {}

    @staticmethod
    def time(dialect: Dialect) -> TimeParam:
        """The conversion for this dialect; take a new one for each batch of rows (it
        remembers its last value, and belongs to one thread)."""
        return _remembering(_sqlite_time) if dialect.name == "sqlite" else _aware_time

    @staticmethod
    def json(dialect: Dialect) -> JsonParam:
        """A JSON column's value as this dialect's driver takes it (see types.Json). On
        PostgreSQL, psycopg writes it with the engine's JSON serializer (store.engine)."""
        if dialect.name == "sqlite":
            return json_codec.dumps
        from psycopg.types.json import Jsonb

        return Jsonb

    def executemany(self, connection: sa.Connection, rows: Iterable[Sequence[Any]]) -> int:
        """Run the statement for every row; returns the rows it matched, as the driver
        counts them (-1: not counted).

        On PostgreSQL several rows are one statement whose parameters are one array
        per column (``INSERT ... SELECT * FROM unnest(...)``, inserted in their order,
        or ``UPDATE ... FROM unnest(...)``): psycopg's executemany sends the rows
        together, but the server runs the statement once per row, and the worker's
        per-row INSERTs and UPDATEs were the largest share of the server's time in a
        storm (pg_stat_statements, bench/storm.py). The arrays go in binary: in text,
        psycopg quotes every element with a regular expression, and the worker's CPU
        per payload rose a fifth (bench/processing.py); in binary it fell (6-8 µs a row
        in a microbenchmark, against 26-34 for executemany)."""
        if self._by_arrays is not None and connection.dialect.name == "postgresql":
            rows = list(rows)
            if len(rows) > 1:
                return connection.exec_driver_sql(self.by_arrays(connection.dialect),
                                                  arrays(rows)).rowcount
        sql, order, positional = self._compile(connection.dialect)
        params = [self._params(row, order, positional) for row in rows]
        if not params:
            return 0
        return connection.exec_driver_sql(sql, params).rowcount

    def by_arrays(self, dialect: Dialect) -> str:
        """The statement over one array per parameter (PostgreSQL), for :func:`arrays`
        of its rows."""
        if self._arrays_sql is None:
            assert self._by_arrays is not None, "built without an array form"
            self._arrays_sql = self._by_arrays(dialect)
        return self._arrays_sql

    def execute(self, connection: sa.Connection, row: Sequence[Any]) -> sa.CursorResult[Any]:
        """Run the statement once, for one row; its RETURNING columns, if it has any,
        are in the result. For statements that run on every incident change, one at a
        time: SQLAlchemy's own execution costs more than SQLite's for such a row."""
        sql, order, positional = self._compile(connection.dialect, many=False)
        return connection.exec_driver_sql(sql, self._params(row, order, positional))

    def _params(self, row: Sequence[Any], order: tuple[int, ...] | None, positional: bool
                ) -> Any:
        if not positional:
            return dict(zip(self.names, row, strict=True))
        if order is None:
            return tuple(row)
        return tuple(row[index] for index in order)

    def _compile(self, dialect: Dialect, *, many: bool = True
                 ) -> tuple[str, tuple[int, ...] | None, bool]:
        key = (dialect.name, many)
        compiled = self._compiled.get(key)
        if compiled is None:
            # for_executemany: no RETURNING of the new key, which nothing reads.
            statement = self._statement.compile(dialect=dialect, for_executemany=many)
            positions = statement.positiontup
            order: tuple[int, ...] | None = None
            if positions is not None:
                order = tuple(self.names.index(name) for name in positions)
                if order == tuple(range(len(self.names))):
                    order = None
            compiled = (statement.string, order, positions is not None)
            self._compiled[key] = compiled
        return compiled


def insert(table: sa.Table, columns: Sequence[str], *, sqlite_or_ignore: bool = False,
           returning: sa.Column[Any] | None = None) -> Prebuilt:
    """INSERT of ``columns`` of ``table``; a row holds their values in that order.
    ``sqlite_or_ignore``: on SQLite, a row whose key is taken is skipped. ``returning``:
    a column :meth:`Prebuilt.execute`'s result holds (executemany returns nothing)."""
    names = [f"v_{column}" for column in columns]
    statement = table.insert()
    if sqlite_or_ignore:
        statement = statement.prefix_with("OR IGNORE", dialect="sqlite")
    if returning is not None:
        statement = statement.returning(returning)

    def by_arrays(dialect: Dialect) -> str:
        return (f"INSERT INTO {table.name} ({', '.join(columns)}) "
                f"SELECT * FROM unnest({_arrays(table, columns, dialect)})")

    return Prebuilt(statement.values(
        {column: sa.bindparam(name) for column, name in zip(columns, names, strict=True)}),
        names, by_arrays=by_arrays)


def arrays(rows: Sequence[Sequence[Any]]) -> tuple[list[Any], ...]:
    """The parameters of a statement :meth:`Prebuilt.by_arrays`: one list per column."""
    return tuple(list(column) for column in zip(*rows, strict=True))


def update(table: sa.Table, columns: Sequence[str], keys: Sequence[str], *,
           nulls: Sequence[str] = ()) -> Prebuilt:
    """UPDATE of ``columns`` (and ``nulls`` set to NULL) of the row of ``table`` whose
    ``keys`` equal the values given; a row holds the columns' values, then the keys'.
    One row per key: on PostgreSQL the rows are joined to the table in one statement."""
    names = [*(f"b_{column}" for column in columns), *(f"w_{key}" for key in keys)]
    statement = (table.update()
                 .where(*(table.c[key] == sa.bindparam(f"w_{key}") for key in keys))
                 .values({**{column: sa.bindparam(f"b_{column}") for column in columns},
                          **{column: sa.null() for column in nulls}}))

    def by_arrays(dialect: Dialect) -> str:
        sets = [*(f"{column} = given.b_{column}" for column in columns),
                *(f"{column} = NULL" for column in nulls)]
        where = " AND ".join(f"{table.name}.{key} = given.w_{key}" for key in keys)
        return (f"UPDATE {table.name} SET {', '.join(sets)} "
                f"FROM unnest({_arrays(table, [*columns, *keys], dialect)}) "
                f"AS given({', '.join(names)}) WHERE {where}")

    return Prebuilt(statement, names, by_arrays=by_arrays)


def _arrays(table: sa.Table, columns: Sequence[str], dialect: Dialect) -> str:
    """Parameters, one array per column in binary (psycopg quotes each element of an
    array in text with a regular expression), cast to the columns' types: strings as
    text (a cast to ``varchar(n)`` would cut longer values where the column refuses
    them)."""
    return ", ".join(
        "%b::text[]" if isinstance(table.c[column].type, sa.String)
        else f"%b::{table.c[column].type.compile(dialect=dialect)}[]" for column in columns)


def _sqlite_read_moment(value: str) -> datetime:
    """Naive UTC text (see _sqlite_time) back to an aware datetime."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _sqlite_read_time(value: str | None) -> datetime | None:
    return None if value is None else _sqlite_read_moment(value)


def _postgres_read_moment(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _postgres_read_time(value: datetime | None) -> datetime | None:
    return None if value is None else _postgres_read_moment(value)


def _as_is(value: Any) -> Any:
    return value


class Decoders:
    """Rows read by the driver alone, without SQLAlchemy's result processing, decoded
    here: what UtcDateTime and the JSON type do, for the reads of many rows at once.

    Reading alerts by id through SQLAlchemy cost ~60 µs an alert on SQLite (timed: 10 µs
    of it SQLite's), half of it the columns' type processors and the row mappings; an
    incident's digest telling reads up to 20 (services/processing.py)."""

    def __init__(self, dialect: Dialect) -> None:
        sqlite = dialect.name == "sqlite"
        #: A UtcDateTime column's value; ``moment``: one that is never null.
        self.time: Callable[[Any], datetime | None] = (
            _sqlite_read_time if sqlite else _postgres_read_time)
        self.moment: Callable[[Any], datetime] = (
            _sqlite_read_moment if sqlite else _postgres_read_moment)
        #: A JSON column's value (psycopg decodes JSONB itself).
        self.json: Callable[[Any], Any] = json_codec.loads if sqlite else _as_is
        #: ``column`` + this is true when the column's value is in the list bound to
        #: the one parameter, which takes :meth:`any_of`'s value: one statement and one
        #: parameter for any number of keys, nothing to expand or to cache per length.
        self.in_list = " IN (SELECT value FROM json_each(?))" if sqlite else " = ANY(%s)"
        #: A positional parameter in the driver's style.
        self.param = "?" if sqlite else "%s"
        self.dialect = dialect.name
        self._sqlite = sqlite

    def any_of(self, values: Collection[str | int]) -> Any:
        """The parameter of :attr:`in_list`."""
        return json_codec.dumps(list(values)) if self._sqlite else list(values)


_DECODERS: dict[str, Decoders] = {}


def decoders(dialect: Dialect) -> Decoders:
    """This dialect's :class:`Decoders`, made once (they hold nothing else)."""
    found = _DECODERS.get(dialect.name)
    if found is None:
        found = _DECODERS[dialect.name] = Decoders(dialect)
    return found


#: Keys per IN list: well under SQLite's and PostgreSQL's limits on bound parameters.
CHUNK = 500


def chunks(values: list[str]) -> Iterator[list[str]]:
    """``values`` in lists of at most CHUNK, for ``IN`` lists of any length."""
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]


class _Values(sa.types.TypeDecorator[Collection[Any]]):
    """The parameter of :func:`one_of`: the values as an array (PostgreSQL) or as JSON
    text (SQLite's json_each)."""

    impl = sa.String
    cache_ok = True
    #: The array's element type on PostgreSQL.
    item: sa.types.TypeEngine[Any] = sa.String()

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import ARRAY

            return dialect.type_descriptor(ARRAY(self.item))
        return dialect.type_descriptor(sa.String())

    def process_bind_param(self, value: Collection[Any] | None, dialect: Dialect) -> Any:
        values = list(value or ())
        return values if dialect.name == "postgresql" else json_codec.dumps(values)


class _IntegerValues(_Values):
    cache_ok = True
    item = sa.BigInteger()


class _OneOf(sa.sql.expression.ColumnElement[bool]):
    """``column`` IN the values bound to ``parameter``: see :func:`one_of`."""

    inherit_cache = True
    type = sa.Boolean()
    #: A comparison: SQLite's WHERE takes it as it is, not "(...) = 1".
    _is_implicitly_boolean = True
    _traverse_internals = [
        ("column", sa.sql.visitors.InternalTraversal.dp_clauseelement),
        ("parameter", sa.sql.visitors.InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: sa.ColumnElement[Any], parameter: sa.BindParameter[Any]) -> None:
        self.column = column
        self.parameter = parameter


@compiles(_OneOf, "postgresql")
def _one_of_postgresql(element: _OneOf, compiler: Any, **kw: Any) -> str:
    return (f"{compiler.process(element.column, **kw)} = "
            f"ANY({compiler.process(element.parameter, **kw)})")


@compiles(_OneOf)
def _one_of_sqlite(element: _OneOf, compiler: Any, **kw: Any) -> str:
    return (f"{compiler.process(element.column, **kw)} IN "
            f"(SELECT value FROM json_each({compiler.process(element.parameter, **kw)}))")


def one_of(column: sa.ColumnElement[Any], name: str, values: Collection[Any] | None = None
           ) -> sa.ColumnElement[bool]:
    """``column`` is one of the values bound to ``name`` (any collection): one parameter
    and one statement text for any number of values. An expanding IN list is a new
    statement for each length: SQLAlchemy renders it, psycopg converts it without its
    cache, and PostgreSQL plans it afresh (its planning was ~4 % of the server's time
    in a storm, the rendering and converting ~5 % of the worker's; pg_stat_statements
    and py-spy, bench/storm.py). ``values``: bound now (else at execution)."""
    integers = isinstance(column.type, sa.Integer)
    return _OneOf(column, sa.bindparam(name, values,
                                       type_=_IntegerValues() if integers else _Values()))
