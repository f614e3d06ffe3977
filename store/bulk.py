"""Bulk writes for imports: many rows in one statement, no per-row ORM round trips."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, bindparam, insert, update
from sqlmodel.ext.asyncio.session import AsyncSession

from store.queries import chunks


async def insert_rows(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT many rows (executemany; batched so memory stays flat)."""
    for part in chunks(list(rows), 5000):
        await session.exec(insert(table), params=list(part))


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
    for part in chunks(list(rows), 5000):
        await session.exec(
            stmt, params=[{"_id": r["id"], **{c: r[c] for c in columns}} for r in part]
        )
