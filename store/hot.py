"""The hot path: a few SQLAlchemy Core statements, compiled once per dialect, run on the
driver's own connection — no ORM session, no per-statement compile, no pool checkout ping, no
thread hand-off.

What a person waits for most (``/pnc status``, the role at the door) is a handful of small
indexed selects; every request on PostgreSQL also makes one small write, the replay check's
insert (``HotPath.statement``); the dispatcher records each delivery's outcome, a one-row
update, before the connection sends its next message (``HotPath.write``). Through
SQLAlchemy's async ORM session each statement cost about 0.4–1 ms on this project's machines;
the statement itself costs 12 µs in ``sqlite3``. Here:

- **SQLite**: one ``sqlite3`` connection of the process's own, used on the event loop's
  thread. A batch of statements runs synchronously between ``BEGIN`` and ``COMMIT`` (a WAL
  reader never waits for a writer; ``busy_timeout`` covers the rare checkpoint), so nothing
  else runs on the loop meanwhile and the one connection is never shared by two batches.
  Writes have a second connection, used under the process's one-writer lock: its
  ``BEGIN IMMEDIATE`` (or a lone statement, a transaction by itself) takes SQLite's write
  lock at once or fails before anything is done
  (``busy_timeout=0``) — when another process is writing, the batch waits for the lock on
  aiosqlite's thread instead, through the engine, so the loop never stalls on another process.
  That connection runs no WAL checkpoints (the engine's connections do): a commit only appends.
- **PostgreSQL**: an ``asyncpg`` pool of its own (up to 10 connections a process, no ping
  at checkout, no reset round trip at release). A ``Bundle`` is **one** statement (each query's
  rows as a JSON array): one round trip. A batch of several statements runs in one read-only
  ``REPEATABLE READ`` transaction, so its statements see one snapshot; a single statement
  (the role, the replay check's insert) runs on its own.

The statements stay SQLAlchemy Core (written in ``store/`` like every other); each parameter
goes through its type's bind processor and each value comes back through its column type's
result processor for the dialect, so the driver gets what SQLAlchemy would have sent and a row
holds what the ORM would have given (aware UTC datetimes, dates, parsed JSON). Parameters are
named with ``bindparam``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import Date, DateTime, Dialect, Select, func, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.dml import UpdateBase


class Database(Protocol):
    """What the hot reads need of ``store.db.Database`` (which holds them)."""

    url: URL
    engine: AsyncEngine

    @property
    def is_sqlite(self) -> bool: ...

    @property
    def is_postgresql(self) -> bool: ...

    def connection(
        self, *, write: bool = False
    ) -> AbstractAsyncContextManager[AsyncConnection]: ...


Processor = Callable[[Any], Any] | None


class HotRow(tuple[Any, ...]):
    """A row: fields by name (``row.factory_id``) and ``_mapping``, as a Core row has."""

    _fields: tuple[str, ...] = ()

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(zip(self._fields, self, strict=True))


class _Compiled:
    """A statement compiled for one dialect: its SQL, and its parameters in the order the
    driver takes them."""

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql: str = compiled.string
        self.order: tuple[str, ...] = tuple(compiled.positiontup or ())
        self.fixed = _fixed(compiled, dialect)
        #: the given parameters' bind processors (e.g. a datetime to SQLite's text, JSON)
        self.binders: dict[str, Callable[[Any], Any]] = {}
        for name in self.order:
            process = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            if name not in self.fixed and process is not None:
                self.binders[name] = process

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        fixed, binders = self.fixed, self.binders
        if not binders:
            return [fixed[n] if n in fixed else values[n] for n in self.order]
        found = []
        for n in self.order:
            if n in fixed:
                found.append(fixed[n])
            elif (process := binders.get(n)) is not None:
                found.append(process(values[n]))
            else:
                found.append(values[n])
        return found


class Query:
    """A Core select, insert or update (its ``RETURNING`` columns are its rows) whose
    parameters are ``bindparam``s, compiled once for each dialect."""

    def __init__(self, name: str, statement: Select[Any] | UpdateBase) -> None:
        self.name = name
        self.statement = statement
        self._prepared: dict[str, _Prepared] = {}

    def prepared(self, dialect: Dialect) -> _Prepared:
        found = self._prepared.get(dialect.name)
        if found is None:
            found = self._prepared[dialect.name] = _Prepared(self, dialect)
        return found


class _Prepared(_Compiled):
    def __init__(self, query: Query, dialect: Dialect) -> None:
        super().__init__(query.statement, dialect)
        columns = list(query.statement.exported_columns)
        self.processors: list[Processor] = [
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
        ]
        self.row: Any = type(
            f"{query.name}_row",
            (namedtuple(f"{query.name}_fields", [str(c.key) for c in columns]), HotRow),
            {"__slots__": ()},
        )

    def rows(self, raw: Sequence[Sequence[Any]]) -> list[Any]:
        return _rows(self.row._make, self.processors, raw)


class Bundle:
    """Queries sharing their parameters, read in **one** statement on PostgreSQL (each query's
    rows as a JSON array of arrays: one round trip instead of one per query); elsewhere, as a
    batch of its queries."""

    def __init__(self, name: str, queries: Sequence[Query]) -> None:
        self.name = name
        self.queries = tuple(queries)
        arrays = []
        for q in self.queries:
            assert isinstance(q.statement, Select), "a bundle reads"
            sub = q.statement.subquery()
            rows = func.json_agg(func.json_build_array(*sub.c))
            arrays.append(select(rows).select_from(sub).scalar_subquery())
        self.statement = select(*arrays)
        self._prepared: dict[str, _PreparedBundle] = {}

    def prepared(self, dialect: Dialect) -> _PreparedBundle:
        found = self._prepared.get(dialect.name)
        if found is None:
            found = self._prepared[dialect.name] = _PreparedBundle(self, dialect)
        return found


class _PreparedBundle(_Compiled):
    def __init__(self, bundle: Bundle, dialect: Dialect) -> None:
        super().__init__(bundle.statement, dialect)
        self.parts = [
            (q.prepared(dialect).row._make, _from_json(q, dialect)) for q in bundle.queries
        ]

    def rows(self, arrays: Sequence[Any]) -> list[list[Any]]:
        """Each query's rows from its JSON array (None: no rows)."""
        return [
            _rows(make, converters, array or ())
            for (make, converters), array in zip(self.parts, arrays, strict=True)
        ]


def _rows(
    make: Callable[[Any], Any], processors: Sequence[Processor], raw: Sequence[Sequence[Any]]
) -> list[Any]:
    """Rows made from the driver's, each value through its column's processor (None passes
    through untouched, as SQLAlchemy's processors also let it)."""
    if not any(processors):
        return [make(r) for r in raw]
    return [
        make([v if p is None or v is None else p(v) for p, v in zip(processors, r, strict=True)])
        for r in raw
    ]


def _fixed(compiled: Any, dialect: Dialect) -> dict[str, Any]:
    """The values a statement carries itself (``status != 'closed'``), bound and processed
    once; the others are given at each run."""
    fixed = {}
    for name, value in compiled.construct_params(_check=False).items():
        bind = compiled.binds[name]
        if bind.value is None and bind.callable is None:
            continue
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        fixed[name] = process(value) if process else value
    return fixed


def _from_json(query: Query, dialect: Dialect) -> list[Processor]:
    """For each column of ``query``, what turns its JSON value into the row's: dates and
    datetimes parsed (then through the column type's own processor: aware UTC datetimes),
    JSON as it is, the rest unchanged."""
    converters: list[Processor] = []
    for c in query.statement.exported_columns:
        affinity = c.type._type_affinity
        after = c.type.dialect_impl(dialect).result_processor(dialect, None)
        if affinity is not None and issubclass(affinity, DateTime):
            converters.append(_then(datetime.fromisoformat, after))
        elif affinity is not None and issubclass(affinity, Date):
            converters.append(date.fromisoformat)
        else:
            converters.append(None)
    return converters


def _then(first: Callable[[Any], Any], after: Processor) -> Callable[[Any], Any]:
    if after is None:
        return first
    return lambda value: after(first(value))


Batch = Sequence[tuple[Query, Mapping[str, Any]]]


class HotPath:
    """Runs batches of ``Query`` for one ``Database``: reads in one read transaction
    (``run``, ``bundle``), short writes in one write transaction (``write``), and single
    statements on their own (``statement``).

    ``one_writer``: on SQLite, the lock the database's writers take in turn (this process's
    writes to SQLite are one at a time)."""

    def __init__(
        self, db: Database, *, one_writer: asyncio.Lock | None = None, pool_size: int = 10
    ) -> None:
        self.db = db
        self.dialect = db.engine.dialect
        self._sqlite: sqlite3.Connection | None = None
        self._sqlite_writer: sqlite3.Connection | None = None
        self._one_writer = one_writer or asyncio.Lock()
        self._pool: Any = None
        self._pool_size = pool_size
        self._opening = asyncio.Lock()
        path = db.url.database or ""
        self._sqlite_path = (
            path
            if db.is_sqlite and path not in ("", ":memory:") and not path.startswith("file:")
            else None
        )

    @property
    def direct(self) -> bool:
        """Whether batches run on a driver connection of their own (else: through the
        engine, for an in-memory SQLite database that only the engine's connection sees)."""
        return self._sqlite_path is not None or self.db.is_postgresql

    async def bundle(self, bundle: Bundle, values: Mapping[str, Any]) -> list[list[Any]]:
        """Each of the bundle's queries' rows, read in one transaction (on PostgreSQL, in one
        statement)."""
        if not self.db.is_postgresql:
            return await self.run([(q, values) for q in bundle.queries])
        p = bundle.prepared(self.dialect)
        pool = self._pool or await self._open_pool()
        async with pool.acquire() as conn:
            return p.rows(await conn.fetchrow(p.sql, *p.args(values)))

    async def statement(self, query: Query, values: Mapping[str, Any]) -> list[Any]:
        """One statement on its own, committed at once — e.g. the replay check's insert that
        every request makes on PostgreSQL: one round trip on the pool's connection (no
        transaction around it, no ping)."""
        return (await self.write([(query, values)]))[0]

    async def write(self, batch: Batch) -> list[list[Any]]:
        """Each statement's rows (its ``RETURNING``), all run in one write transaction,
        committed before this returns. Keep it short: on SQLite it runs on the loop's thread."""
        if self._sqlite_path is not None:
            async with self._one_writer:
                found = self._write_sqlite(batch)
            if found is not None:
                return found
            # another process holds the write lock: wait for it off the loop's thread
        elif self.db.is_postgresql:
            return await self._run_postgresql(batch, write=True)
        return await self._run_engine(batch, write=True)

    def _write_sqlite(self, batch: Batch) -> list[list[Any]] | None:
        """The batch in one transaction on the loop's thread, or None (nothing done) when
        SQLite's write lock is another process's."""
        conn = self._sqlite_writer
        if conn is None:
            conn = self._sqlite_writer = _open_sqlite(self._sqlite_path or "", write=True)
        # one statement is a transaction by itself (one call into SQLite: each call lets go of
        # the GIL, and taking it back can wait for another thread's turn)
        try:
            if len(batch) == 1:
                return self._each_sqlite(conn, batch)
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:  # a statement fails whole: nothing was done
            if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
                return None
            raise
        try:
            found = self._each_sqlite(conn, batch)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # the connection is left ready for the next batch
                conn.execute("ROLLBACK")
            raise
        return found

    async def run(self, batch: Batch) -> list[list[Any]]:
        """Each query's rows, all read in one transaction."""
        if self._sqlite_path is not None:
            return self._run_sqlite(batch)
        if self.db.is_postgresql:
            return await self._run_postgresql(batch)
        return await self._run_engine(batch)

    def _run_sqlite(self, batch: Batch) -> list[list[Any]]:
        conn = self._sqlite
        if conn is None:
            conn = self._sqlite = _open_sqlite(self._sqlite_path or "")
        conn.execute("BEGIN")
        try:
            return self._each_sqlite(conn, batch)
        finally:
            conn.execute("COMMIT")

    def _each_sqlite(self, conn: sqlite3.Connection, batch: Batch) -> list[list[Any]]:
        found = []
        for query, values in batch:
            p = query.prepared(self.dialect)
            found.append(p.rows(conn.execute(p.sql, p.args(values)).fetchall()))
        return found

    async def _run_postgresql(self, batch: Batch, *, write: bool = False) -> list[list[Any]]:
        """The batch on a pool connection: one statement alone (a transaction by itself, one
        round trip; it sees one snapshot), several in one transaction — for reads, read-only
        and ``REPEATABLE READ``, so they see one snapshot too."""
        pool = self._pool or await self._open_pool()
        async with pool.acquire() as conn:
            if len(batch) == 1:
                return await self._each_postgresql(conn, batch)
            options = {} if write else {"isolation": "repeatable_read", "readonly": True}
            async with conn.transaction(**options):
                return await self._each_postgresql(conn, batch)

    async def _each_postgresql(self, conn: Any, batch: Batch) -> list[list[Any]]:
        found = []
        for query, values in batch:
            p = query.prepared(self.dialect)
            found.append(p.rows(await conn.fetch(p.sql, *p.args(values))))
        return found

    async def _run_engine(self, batch: Batch, *, write: bool = False) -> list[list[Any]]:
        async with self.db.connection(write=write) as conn:
            found = []
            for query, values in batch:
                result = await conn.execute(query.statement, dict(values))
                p = query.prepared(self.dialect)
                found.append([p.row._make(r) for r in result.all()])
        return found

    async def _open_pool(self) -> Any:
        async with self._opening:
            if self._pool is None:
                import asyncpg  # type: ignore[import-untyped]  # asyncpg: no type information

                # what the engine connects with (host, user, ssl…), as its dialect reads the
                # URL; less the options of SQLAlchemy's own adapter
                _, options = self.dialect.create_connect_args(self.db.url)
                for adapter_only in ("prepared_statement_name_func", "async_creator_fn"):
                    options.pop(adapter_only, None)
                # ``?prepared_statement_cache_size=0`` (behind PgBouncer) holds here too
                cache = options.pop("prepared_statement_cache_size", None)
                if cache is not None:
                    options["statement_cache_size"] = int(cache)
                self._pool = await asyncpg.create_pool(
                    **options,
                    min_size=1,
                    max_size=self._pool_size,
                    init=_postgresql_codecs,
                    reset=_nothing_to_reset,
                )
        return self._pool

    async def close(self) -> None:
        for conn in (self._sqlite, self._sqlite_writer):
            if conn is not None:
                conn.close()
        self._sqlite = self._sqlite_writer = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


def _open_sqlite(path: str, *, write: bool = False) -> sqlite3.Connection:
    """The reader (``query_only``; it waits out a checkpoint's brief lock) or the writer
    (never waits for a lock, runs no checkpoint; the engine's settings otherwise)."""
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    if write:
        for pragma in (
            "busy_timeout=0",
            "wal_autocheckpoint=0",
            "foreign_keys=ON",
            "synchronous=1",
        ):
            conn.execute(f"PRAGMA {pragma}")  # synchronous=1: NORMAL, as the engine's
    else:
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("PRAGMA query_only=ON")
    return conn


async def _nothing_to_reset(conn: Any) -> None:
    """A connection back in the pool needs no ``RESET ALL`` round trip: the hot statements
    change nothing in its session (asyncpg still rolls back a transaction left open)."""


async def _postgresql_codecs(conn: Any) -> None:
    """JSON parsed by the driver, as SQLAlchemy's asyncpg dialect sets it up (its JSON types
    then have no result processor)."""
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=str, decoder=orjson.loads, schema="pg_catalog")
