"""Zero-tolerance cases and the progress recorded on them.

A case is written with ``INSERT … ON CONFLICT (key) DO NOTHING``: re-evaluating a history
again, or two replicas recording the same finding at once, opens it once, and neither fails.
A historic import's cases are written in bulk (``add_cases``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlmodel import col
from sqlmodel import select as select_rows
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.vocabulary import ZtpStatus
from store.bulk import chunks, insert_rows
from store.db import dialect_insert, execute
from store.models import ASSESSMENTS, FACTORIES, ZTP_CASES, ZtpCase, ZtpUpdate


async def add_case(session: AsyncSession, row: dict[str, Any]) -> int | None:
    """Write a case unless one with its key is there already; its id if this call wrote it."""
    conn = await session.connection()
    insert = dialect_insert(conn.dialect.name)
    stmt = (
        insert(ZTP_CASES)
        .values(**row)
        .on_conflict_do_nothing(index_elements=[ZTP_CASES.c.key])
        .returning(ZTP_CASES.c.id)
    )
    found = (await conn.execute(stmt)).scalar()
    return int(found) if found is not None else None


async def add_cases(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Write many cases at once (a historic import), as fast as the driver allows. The caller
    has checked their keys are new under the lock of their factories (every re-evaluation
    locks them first); a key written meanwhile fails the transaction rather than repeat it."""
    await insert_rows(session, ZTP_CASES, rows)


async def existing_keys(session: AsyncSession, keys: Sequence[str]) -> set[str]:
    """Which of these case keys are recorded."""
    found: set[str] = set()
    for part in chunks(sorted(set(keys))):
        rows = await execute(session, select(ZTP_CASES.c.key).where(ZTP_CASES.c.key.in_(part)))
        found |= {r.key for r in rows}
    return found


async def recorded_at(session: AsyncSession, assessment_ids: Sequence[int]) -> dict[int, datetime]:
    """When each assessment was last written: submitted, or amended since."""
    a = ASSESSMENTS
    result: dict[int, datetime] = {}
    for part in chunks(sorted(set(assessment_ids))):
        rows = await execute(
            session, select(a.c.id, a.c.submitted_at, a.c.amended_at).where(a.c.id.in_(part))
        )
        for r in rows:
            result[r.id] = max(r.submitted_at, r.amended_at or r.submitted_at)
    return result


async def get_case(session: AsyncSession, case_id: int, *, lock: bool = False) -> ZtpCase | None:
    stmt = select_rows(ZtpCase).where(col(ZtpCase.id) == case_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.exec(stmt)).first()


def _listed() -> Any:
    c, f, a = ZTP_CASES, FACTORIES, ASSESSMENTS
    return (
        select(*c.c, f.c.name.label("factory_name"), f.c.country, a.c.assessed_on)
        .join(f, f.c.id == c.c.factory_id)
        .outerjoin(a, a.c.id == c.c.assessment_id)
        .order_by(c.c.opened_at, c.c.id)
    )


def open_cases_of(factory_id: Any | None = None) -> Any:
    """Cases not closed (of one factory — an id or a ``bindparam`` — or all), oldest first,
    with the factory's name and country and the day of the assessment that found each."""
    stmt = _listed().where(ZTP_CASES.c.status != ZtpStatus.CLOSED)
    if factory_id is not None:
        stmt = stmt.where(ZTP_CASES.c.factory_id == factory_id)
    return stmt


async def open_cases(session: AsyncSession, factory_id: str | None = None) -> list[Row[Any]]:
    """``open_cases_of``, in the session's transaction."""
    return list((await execute(session, open_cases_of(factory_id))).all())


async def listed_case(session: AsyncSession, case_id: int) -> Row[Any] | None:
    """One case as ``open_cases`` lists it."""
    return (await execute(session, _listed().where(ZTP_CASES.c.id == case_id))).one_or_none()


async def cases_of(session: AsyncSession, factory_id: str) -> list[Row[Any]]:
    """Every case of a factory, closed ones too, oldest first."""
    stmt = _listed().where(ZTP_CASES.c.factory_id == factory_id)
    return list((await execute(session, stmt)).all())


async def open_numbers(session: AsyncSession, limit: int = 10) -> list[int]:
    """The numbers of the latest open cases (for a refusal's hint)."""
    c = ZTP_CASES
    stmt = select(c.c.id).where(c.c.status != ZtpStatus.CLOSED).order_by(c.c.id.desc())
    return [r.id for r in await execute(session, stmt.limit(limit))]


async def count_open(session: AsyncSession) -> int:
    c = ZTP_CASES
    stmt = select(func.count()).select_from(c).where(c.c.status != ZtpStatus.CLOSED)
    return int((await execute(session, stmt)).scalar_one())


async def add_update(session: AsyncSession, update: ZtpUpdate) -> None:
    session.add(update)
    await session.flush()


async def updates(session: AsyncSession, case_id: int) -> list[ZtpUpdate]:
    stmt = (
        select_rows(ZtpUpdate)
        .where(col(ZtpUpdate.case_id) == case_id)
        .order_by(col(ZtpUpdate.at), col(ZtpUpdate.id))
    )
    return list((await session.exec(stmt)).all())
