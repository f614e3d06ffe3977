"""The async engine, sessions and transactions, for SQLite (embedded) and PostgreSQL.

``Database.transaction(write=True)`` is the only way the use cases open a unit of work. On SQLite
there is one writer at a time: within the process, writers queue on an asyncio lock before they
take a connection (so waiting writers hold no pooled connection and readers are never starved);
the transaction then starts with ``BEGIN IMMEDIATE``, so a writer in another process makes it
wait (up to ``busy_timeout``) instead of failing when a read lock is upgraded. Readers never
block in WAL mode, so on a SQLite file read transactions run on the event loop's own thread
(``store.immediate``), without aiosqlite's hand-offs. On PostgreSQL the use cases lock the rows
they change (``SELECT … FOR UPDATE``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import CursorResult, Executable, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import redaction
from store import immediate
from store.hot import HotPath

log = logging.getLogger(__name__)

#: a unit of work: the use cases pass it to the store's functions, which hold the SQL
Session = AsyncSession

_WRITE = "pnc_write"
_AFTER_COMMIT = "pnc_after_commit"


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the session's transaction has committed (never on rollback)."""
    pending = session.info.setdefault(_AFTER_COMMIT, [])
    if callback not in pending:
        pending.append(callback)


async def flush_unique(session: AsyncSession, refusal: Exception) -> None:
    """Flush, turning a race lost on a unique key into the refusal the check would give."""
    try:
        await session.flush()
    except IntegrityError:
        raise refusal from None


async def execute(
    session: AsyncSession,
    statement: Executable,
    params: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
) -> CursorResult[Any]:
    """Run a SQLAlchemy Core statement (on tables, not the session's objects) in the session's
    transaction."""
    conn = await session.connection()
    return await conn.execute(statement, params)


def dialect_insert(dialect: str) -> Any:
    """The dialect's own ``insert`` (for ``ON CONFLICT``), the one choice of it for every
    statement that needs it."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


class Database:
    def __init__(self, url: str | URL, **engine_options: Any) -> None:
        self.url = make_url(url)
        engine_options.setdefault("json_serializer", _json_dumps)
        engine_options.setdefault("json_deserializer", orjson.loads)
        if self.is_sqlite:
            _ensure_sqlite_folder(self.url)
        else:
            engine_options.setdefault("pool_pre_ping", True)
        self.engine: AsyncEngine = create_async_engine(self.url, **engine_options)
        #: read transactions' engine: on a SQLite file, on the loop's own thread
        #: (``store.immediate``); otherwise the same engine
        self.read_engine = self.engine
        if self.is_sqlite:
            _configure_sqlite(self.engine)
            path = self.url.database
            if path and path != ":memory:" and not path.startswith("file:") and not self.url.query:
                self.read_engine = create_async_engine(
                    self.url, async_creator=immediate.creator(path), **engine_options
                )
                _configure_sqlite(self.read_engine)
        self.sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        self.read_sessions = async_sessionmaker(
            self.read_engine, class_=AsyncSession, expire_on_commit=False
        )
        self._one_writer = asyncio.Lock() if self.is_sqlite else None
        #: the hot path (``store.hot``): the status, the role at the door, delivery outcomes
        self.hot = HotPath(self, one_writer=self._one_writer)

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def is_postgresql(self) -> bool:
        return self.url.get_backend_name() == "postgresql"

    def __repr__(self) -> str:
        return f"Database({redaction.url(self.url.render_as_string(hide_password=True))!r})"

    @asynccontextmanager
    async def transaction(self, *, write: bool = False) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits when the block ends, rolls back if it raises."""
        if write and self._one_writer is not None:
            async with self._one_writer, self._unit(write=True) as session:
                yield session
        else:
            async with self._unit(write=write) as session:
                yield session

    @asynccontextmanager
    async def connection(self, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
        """A plain Core connection in a transaction, under the same rules as ``transaction``
        (one writer on SQLite): for hot paths of a single statement or two."""
        if write and self._one_writer is not None:
            async with self._one_writer, self.engine.connect() as conn:
                await conn.execution_options(**{_WRITE: True})
                async with conn.begin():
                    yield conn
        else:
            async with (self.engine if write else self.read_engine).connect() as conn:
                await conn.execution_options(**{_WRITE: write})
                async with conn.begin():
                    yield conn

    @asynccontextmanager
    async def _unit(self, *, write: bool) -> AsyncIterator[AsyncSession]:
        async with (self.sessions if write else self.read_sessions)() as session:
            await session.connection(execution_options={_WRITE: write})
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
            for callback in session.info.pop(_AFTER_COMMIT, ()):
                try:
                    callback()
                except Exception:
                    log.exception("after-commit callback failed")

    async def ping(self) -> None:
        """Connect and ask the database the simplest question (health checks)."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.hot.close()
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _ensure_sqlite_folder(url: URL) -> None:
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # let SQLAlchemy's "begin" event below emit BEGIN, not the sqlite3 module
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
