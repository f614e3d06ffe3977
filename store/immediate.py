"""SQLite reads on the event loop's own thread.

aiosqlite runs each connection in a thread and hands every call over to it and back: about
150 µs a call, against about 12 µs for an indexed read done directly (``docs/benchmarks.md``).
In WAL mode a reader never waits for a writer, so a read transaction can run on the loop's
thread without blocking it for longer than its own work. ``connect`` gives SQLAlchemy's
aiosqlite dialect (through ``create_async_engine(..., async_creator=…)``) a connection with
aiosqlite's interface whose coroutines do their work at once, on the calling thread, and never
suspend. ``store.db.Database`` uses it for read transactions only: a writer may have to wait for
another process's lock (``busy_timeout``), which must not stall the loop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import Any


class _Cursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> _Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, operation: str, parameters: Any = ()) -> _Cursor:
        self._cursor.execute(operation, parameters)
        return self

    async def executemany(self, operation: str, parameters: Iterable[Any]) -> _Cursor:
        self._cursor.executemany(operation, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _AtOnce:
    """What aiosqlite's request queue is to SQLAlchemy's adapter (it sets the isolation level
    through it): each request is run as it is put."""

    def put_nowait(self, item: tuple[Any, Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:  # handed to the awaiting caller, as aiosqlite would
            future.set_exception(exc)


class Connection:
    """A ``sqlite3`` connection behind the part of aiosqlite's interface that SQLAlchemy's
    aiosqlite dialect uses; every coroutine completes without suspending."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._connection = conn  # the adapter checks it before commit and rollback
        self._tx = _AtOnce()

    def __await__(self) -> Any:  # ``await connect(...)`` in the adapter
        if False:  # pragma: no cover - makes this a generator
            yield
        return self

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> _Cursor:
        return _Cursor(self._conn.cursor())

    async def execute(self, operation: str, parameters: Any = ()) -> _Cursor:
        return _Cursor(self._conn.execute(operation, parameters))

    async def create_function(self, *args: Any, **kw: Any) -> None:
        self._conn.create_function(*args, **kw)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        if self._connection is not None:
            self._conn.close()
            self._connection = None  # type: ignore[assignment]

    def stop(self) -> None:
        if self._connection is not None:
            self._conn.close()
            self._connection = None  # type: ignore[assignment]


def creator(path: str) -> Callable[[], Connection]:
    """``create_async_engine``'s ``async_creator`` for the database file at ``path``: each call
    opens a connection (usable from the loop's thread only, as aiosqlite's are from theirs)."""

    def connect() -> Connection:
        return Connection(sqlite3.connect(path, check_same_thread=False))

    return connect
