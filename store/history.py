"""A factory's history — its assessments and readmission applications — and the events the
policy derived from it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Table, func, select, update
from sqlmodel import col
from sqlmodel import select as select_rows
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.policy import AssessmentRecord, ReadmissionRecord
from bot.vocabulary import Decision, NoticeMode
from store import bulk
from store.bulk import CHUNK, chunks
from store.db import execute
from store.models import (
    ASSESSMENTS,
    EVENTS,
    FACTORIES,
    READMISSIONS,
    Assessment,
    Factory,
    PncEvent,
    Readmission,
)
from store.registry import factory_facts

# --- assessments ------------------------------------------------------------------------------


async def live_assessments(session: AsyncSession, factory_id: str) -> list[Assessment]:
    stmt = (
        select_rows(Assessment)
        .where(col(Assessment.factory_id) == factory_id, col(Assessment.withdrawn_at).is_(None))
        .order_by(col(Assessment.assessed_on), col(Assessment.id))
    )
    return list((await session.exec(stmt)).all())


async def live_assessment_on(
    session: AsyncSession, factory_id: str, day: date
) -> Assessment | None:
    stmt = select_rows(Assessment).where(
        col(Assessment.factory_id) == factory_id,
        col(Assessment.assessed_on) == day,
        col(Assessment.withdrawn_at).is_(None),
    )
    return (await session.exec(stmt)).first()


async def withdrawn_assessments(session: AsyncSession, factory_id: str) -> list[Assessment]:
    stmt = (
        select_rows(Assessment)
        .where(col(Assessment.factory_id) == factory_id, col(Assessment.withdrawn_at).is_not(None))
        .order_by(col(Assessment.assessed_on), col(Assessment.id))
    )
    return list((await session.exec(stmt)).all())


async def recent_submissions(session: AsyncSession, user_id: str, limit: int) -> list[Row[Any]]:
    a, f = ASSESSMENTS, FACTORIES
    stmt = (
        select(a.c.factory_id, f.c.name, a.c.assessed_on, a.c.nc_issues, a.c.submitted_at)
        .join(f, f.c.id == a.c.factory_id)
        .where(a.c.submitted_by == user_id)
        .order_by(a.c.submitted_at.desc(), a.c.id.desc())
        .limit(limit)
    )
    return list((await execute(session, stmt)).all())


async def reserve_assessment_ids(session: AsyncSession, count: int) -> list[int]:
    return await bulk.reserve_ids(session, ASSESSMENTS, count)


async def add_assessments(session: AsyncSession, columns: dict[str, Sequence[Any]]) -> None:
    """Write many assessments, given column by column (an import)."""
    await bulk.insert_columns(session, ASSESSMENTS, columns)


# --- readmission applications -----------------------------------------------------------------


async def readmissions(session: AsyncSession, factory_id: str) -> list[Readmission]:
    stmt = (
        select_rows(Readmission)
        .where(col(Readmission.factory_id) == factory_id)
        .order_by(col(Readmission.id))
    )
    return list((await session.exec(stmt)).all())


async def get_application(session: AsyncSession, application_id: int) -> Readmission | None:
    return await session.get(Readmission, application_id)


# --- the policy's view of it ------------------------------------------------------------------


def as_record(row: Any) -> AssessmentRecord:
    return AssessmentRecord(row.id, row.assessed_on, frozenset(row.nc_issues), row.kind)


def as_readmission(row: Any) -> ReadmissionRecord:
    approved = None if row.decision is None else row.decision == Decision.APPROVED
    return ReadmissionRecord(row.id, row.applied_on, row.unannounced_on, row.decided_on, approved)


@dataclass
class Histories:
    """What re-evaluating some factories needs: their country, the state/streak snapshot on
    record, and their histories (live assessments and readmission applications)."""

    countries: dict[str, str]
    snapshots: dict[str, tuple[str, int]]
    assessments: dict[str, list[AssessmentRecord]]
    readmissions: dict[str, list[ReadmissionRecord]]
    #: whole factory rows the caller already held (their notices need not read them again)
    factories: dict[str, Any] = field(default_factory=dict)
    #: assessment id → its report's date, where given (Progress Report One); None: not read
    report_dates: dict[str, dict[int, date]] | None = None


async def _by_factory(
    session: AsyncSession,
    table: Table,
    columns: Sequence[Any],
    ids: Sequence[str],
    *where: ColumnElement[bool],
) -> dict[str, list[Row[Any]]]:
    """Rows of ``table`` grouped by factory id, for many factories in a few queries."""
    grouped: dict[str, list[Row[Any]]] = defaultdict(list)
    many = len(ids) > CHUNK
    parts: Iterable[Sequence[str] | None]
    wanted: set[str] | None
    if (
        many
        and len(ids) * 2
        > (await execute(session, select(func.count()).select_from(FACTORIES))).scalar_one()
    ):  # most factories: one scan beats many IN lists
        parts, wanted = [None], set(ids)
    else:
        parts, wanted = chunks(list(ids)), None
    for part in parts:
        stmt = select(*columns).where(*where)
        if part is not None:
            stmt = stmt.where(table.c.factory_id.in_(part))
        for row in (await execute(session, stmt)).all():
            if wanted is None or row.factory_id in wanted:
                grouped[row.factory_id].append(row)
    return grouped


async def readmission_records(
    session: AsyncSession, ids: Sequence[str]
) -> dict[str, list[ReadmissionRecord]]:
    r = READMISSIONS
    rows = await _by_factory(
        session,
        r,
        [r.c.id, r.c.factory_id, r.c.applied_on, r.c.unannounced_on, r.c.decided_on, r.c.decision],
        ids,
    )
    return {f: [as_readmission(x) for x in group] for f, group in rows.items()}


def _live_assessment_columns() -> list[Any]:
    a = ASSESSMENTS
    return [a.c.id, a.c.factory_id, a.c.assessed_on, a.c.nc_issues, a.c.kind, a.c.report_on]


async def load_histories(
    session: AsyncSession, ids: Sequence[str], factories: dict[str, Factory] | None = None
) -> Histories:
    """The histories of these factories; ``factories`` are rows the caller already holds
    (e.g. locked), which are not read again."""
    held = factories or {}
    facts: dict[str, Any] = {**held}
    if len(held) < len(ids):
        facts |= await factory_facts(session, [f for f in ids if f not in held])
    rows = await _by_factory(
        session, ASSESSMENTS, _live_assessment_columns(), ids, ASSESSMENTS.c.withdrawn_at.is_(None)
    )
    return Histories(
        countries={f: r.country for f, r in facts.items()},
        snapshots={f: (r.state, r.streak) for f, r in facts.items()},
        assessments={f: [as_record(x) for x in group] for f, group in rows.items()},
        readmissions=await readmission_records(session, ids),
        factories=dict(held),
        report_dates={
            f: {x.id: x.report_on for x in group if x.report_on} for f, group in rows.items()
        },
    )


async def live_days(session: AsyncSession, ids: Sequence[str]) -> dict[tuple[str, date], Any]:
    """(factory, day) → row of each live assessment of these factories."""
    grouped = await _by_factory(
        session, ASSESSMENTS, _live_assessment_columns(), ids, ASSESSMENTS.c.withdrawn_at.is_(None)
    )
    return {(row.factory_id, row.assessed_on): row for rows in grouped.values() for row in rows}


# --- events -----------------------------------------------------------------------------------


async def events(session: AsyncSession, factory_id: str) -> list[PncEvent]:
    stmt = (
        select_rows(PncEvent)
        .where(col(PncEvent.factory_id) == factory_id)
        .order_by(col(PncEvent.id))
    )
    return list((await session.exec(stmt)).all())


#: a recorded event as re-evaluation compares it: id, key, factory_id, kind, application_id,
#: notice, unsupported_at
RecordedEvent = Row[Any]


async def event_index(session: AsyncSession, ids: Sequence[str]) -> dict[str, list[RecordedEvent]]:
    """Recorded events (id, key, kind, application, notice, unsupported_at) of many
    factories."""
    e = EVENTS
    columns = [e.c.id, e.c.key, e.c.factory_id, e.c.kind, e.c.application_id]
    return await _by_factory(session, e, [*columns, e.c.notice, e.c.unsupported_at], ids)


async def reserve_event_ids(session: AsyncSession, count: int) -> list[int]:
    return await bulk.reserve_ids(session, EVENTS, count)


async def add_events(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await bulk.insert_rows(session, EVENTS, rows)


async def update_events(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Rewrite events by id: dicts with ``id`` and the new values."""
    await bulk.update_by_id(session, EVENTS, rows)


async def mark_events(
    session: AsyncSession, ids: Sequence[int], *, unsupported_at: datetime | None
) -> None:
    """Mark events the history no longer supports (a moment), or supports again (None)."""
    for part in chunks(list(ids)):
        await execute(
            session,
            update(EVENTS).where(EVENTS.c.id.in_(part)).values(unsupported_at=unsupported_at),
        )


async def unsupported_events(session: AsyncSession, event_ids: Iterable[int]) -> set[int]:
    """Those of these events the history no longer supports."""
    found: set[int] = set()
    for part in chunks(list(event_ids)):
        rows = await execute(
            session,
            select(EVENTS.c.id).where(EVENTS.c.id.in_(part), EVENTS.c.unsupported_at.is_not(None)),
        )
        found |= set(rows.scalars().all())
    return found


async def get_event(session: AsyncSession, event_id: int) -> PncEvent | None:
    return await session.get(PncEvent, event_id)


# --- events held for staff review -------------------------------------------------------------


def _held_columns() -> list[Any]:
    e = EVENTS
    return [
        e.c.id,
        e.c.key,
        e.c.factory_id,
        e.c.kind,
        e.c.occurred_on,
        e.c.payload,
        e.c.notice,
        e.c.created_at,
        e.c.unsupported_at,
        e.c.held_because,
        e.c.held_told,
        e.c.reviewed_at,
        e.c.reviewed_by,
        e.c.review_note,
    ]


async def held_events(session: AsyncSession, limit: int) -> tuple[list[Row[Any]], int]:
    """The events held for staff review, oldest first (at most ``limit``), with their
    factory's name (``factory_name``); and how many are held in all."""
    e, f = EVENTS, FACTORIES
    held = e.c.notice == NoticeMode.HELD.value
    stmt = (
        select(*_held_columns(), f.c.name.label("factory_name"))
        .join(f, f.c.id == e.c.factory_id)
        .where(held)
        .order_by(e.c.id)
        .limit(limit)
    )
    rows = list((await execute(session, stmt)).all())
    total = (await execute(session, select(func.count()).select_from(e).where(held))).scalar_one()
    return rows, total


async def events_by_key(session: AsyncSession, keys: Iterable[str]) -> dict[str, Row[Any]]:
    """key → (key, kind, occurred_on, payload) of the recorded events with these keys."""
    e = EVENTS
    found: dict[str, Row[Any]] = {}
    for part in chunks(sorted(set(keys))):
        stmt = select(e.c.key, e.c.kind, e.c.occurred_on, e.c.payload).where(e.c.key.in_(part))
        found |= {r.key: r for r in (await execute(session, stmt)).all()}
    return found


async def event_factory(session: AsyncSession, event_id: int) -> str | None:
    """The factory an event is about (None: there is no such event)."""
    stmt = select(EVENTS.c.factory_id).where(EVENTS.c.id == event_id)
    return (await execute(session, stmt)).scalar_one_or_none()


async def lock_event(session: AsyncSession, event_id: int) -> Row[Any] | None:
    """An event as a review reads it, locked against a concurrent review (``FOR UPDATE`` on
    PostgreSQL; on SQLite the one writer already holds the database)."""
    stmt = select(*_held_columns()).where(EVENTS.c.id == event_id).with_for_update()
    return (await execute(session, stmt)).one_or_none()


async def release_event(
    session: AsyncSession, event_id: int, payload: dict[str, Any], *, at: datetime, by: str
) -> bool:
    """A held event released by staff: due, notified now, with what its notices say written
    afresh. False if it was not held (nothing changed)."""
    return await _review(
        session,
        event_id,
        notice=NoticeMode.DUE.value,
        payload=payload,
        notified_at=at,
        reviewed_at=at,
        reviewed_by=by,
    )


async def dismiss_event(
    session: AsyncSession, event_id: int, note: str, *, at: datetime, by: str
) -> bool:
    """A held event closed by staff without notices, with their reason. False if it was not
    held (nothing changed)."""
    return await _review(
        session,
        event_id,
        notice=NoticeMode.DISMISSED.value,
        reviewed_at=at,
        reviewed_by=by,
        review_note=note,
    )


async def _review(session: AsyncSession, event_id: int, **values: Any) -> bool:
    stmt = (
        update(EVENTS)
        .where(EVENTS.c.id == event_id, EVENTS.c.notice == NoticeMode.HELD.value)
        .values(**values)
    )
    return (await execute(session, stmt)).rowcount > 0
