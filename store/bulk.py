"""Bulk writes for imports: many rows per statement, no per-row ORM or compiler work.

Values go through SQLAlchemy's own bind processors (so they are stored exactly as the ORM would
store them — JSON text, SQLite date strings, UTC datetimes), computed once per column and
memoised for repeated values; then the driver takes the rows in one call: ``executemany`` on
SQLite, ``COPY`` on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import JSON, Table, bindparam, select, text, update
from sqlmodel.ext.asyncio.session import AsyncSession

_BATCH = 5000
#: rows per IN (...) list; well under SQLite's and asyncpg's parameter limits
CHUNK = 500


def chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _converter(table: Table, name: str, dialect: Any) -> Callable[[Any], Any] | None:
    """The column's bind processor (None when values pass as they are), memoised for values
    that repeat (dates, timestamps, short strings); JSON values are lists and dicts."""
    process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
    if process is None:
        return None
    if isinstance(table.c[name].type, JSON):
        return lambda v: None if v is None else process(v)
    memo: dict[Any, Any] = {}

    def convert(v: Any) -> Any:
        try:
            return memo[v]
        except KeyError:
            memo[v] = out = None if v is None else process(v)
            return out

    return convert


async def insert_rows(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT many rows, all with the same keys, as fast as the driver allows."""
    if rows:
        await insert_columns(session, table, {name: [r[name] for r in rows] for name in rows[0]})


async def insert_columns(
    session: AsyncSession, table: Table, columns: dict[str, Sequence[Any]]
) -> None:
    """INSERT rows given column by column (equal lengths)."""
    conn = await session.connection()
    dialect = conn.dialect
    names = list(columns)
    converted = []
    for name in names:
        convert = _converter(table, name, dialect)
        values = columns[name]
        converted.append(values if convert is None else list(map(convert, values)))
    records = list(zip(*converted, strict=True))
    if not records:
        return
    if dialect.name == "postgresql":
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.copy_records_to_table(table.name, records=records, columns=names)
        return
    placeholders = ", ".join("?" for _ in names)
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({placeholders})"
    for part in chunks(records, _BATCH):
        await conn.exec_driver_sql(sql, list(part))


async def reserve_ids(session: AsyncSession, table: Table, count: int) -> list[int]:
    """``count`` fresh primary keys for ``table``, for rows inserted in this transaction.

    On SQLite the writing transaction holds the database's write lock (BEGIN IMMEDIATE), so the
    ids after the current maximum are ours; on PostgreSQL they come from the table's sequence.
    """
    if count == 0:
        return []
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        # the sequence is named once: resolved per row, it cost four times the nextval calls
        sequence = (
            await conn.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table.name})
        ).scalar_one()
        ids = (
            await conn.execute(
                text("SELECT array_agg(nextval(CAST(:s AS regclass))) FROM generate_series(1, :n)"),
                {"s": sequence, "n": count},
            )
        ).scalar_one()
        return sorted(ids)
    top = (await conn.execute(select(table.c.id).order_by(table.c.id.desc()).limit(1))).scalar()
    start = (top or 0) + 1
    return list(range(start, start + count))


async def update_by_id(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """UPDATE many rows by primary key ``id``; each dict holds ``id`` and the new values."""
    if not rows:
        return
    columns = [c for c in rows[0] if c != "id"]
    stmt = (
        update(table)
        .where(table.c.id == bindparam("_id"))
        .values({c: bindparam(c) for c in columns})
    )
    for part in chunks(list(rows), _BATCH):
        await session.exec(
            stmt, params=[{"_id": r["id"], **{c: r[c] for c in columns}} for r in part]
        )
