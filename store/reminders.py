"""What is to be done, and when: reminders (the truth of the schedule — APScheduler is only
the clock), the quarterly buyer calls they announce (one-off, or occurrences of a series), and
the follow-ups of designations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, and_, func, or_, select, tuple_, update
from sqlmodel import col
from sqlmodel import select as select_rows
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.vocabulary import CycleEndSubject, ReminderKind, ReminderStatus, Subject
from store.bulk import chunks, insert_rows
from store.db import execute
from store.models import (
    ASSESSMENTS,
    BUYERS,
    FACTORIES,
    REMINDERS,
    SUBSCRIPTIONS,
    BuyerCall,
    CallSeries,
    FollowUp,
    Reminder,
)
from store.registry import WATCHED_STATES


def reminder(
    kind: ReminderKind, subject: Subject, due_at: datetime, now: datetime
) -> dict[str, Any]:
    """A reminder row to write; a moment already past is due at once."""
    return {"kind": kind, "subject": str(subject), "due_at": max(due_at, now), "created_at": now}


async def add_reminders(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Write reminders (``reminder`` rows), skipping any already scheduled for the same
    subject, kind and moment — except a cancelled one, which is wanted again and pending
    again. Returns how many were new or pending again."""
    r = REMINDERS
    wanted = {(row["kind"], row["subject"], row["due_at"]): row for row in rows}
    found: dict[tuple[str, str, Any], Row[Any]] = {}
    for part in chunks(sorted({row["subject"] for row in rows})):
        stmt = select(r.c.id, r.c.kind, r.c.subject, r.c.due_at, r.c.status).where(
            r.c.subject.in_(part)
        )
        found.update(((x.kind, x.subject, x.due_at), x) for x in await execute(session, stmt))
    fresh = [
        {
            "status": ReminderStatus.PENDING,
            "done_at": None,
            "note": None,
            "attempts": 0,
            "retry_at": None,
            **row,
        }
        for key, row in wanted.items()
        if key not in found
    ]
    again = [
        found[key].id
        for key in wanted
        if key in found and found[key].status == ReminderStatus.CANCELLED
    ]
    if again:
        await execute(
            session,
            update(r)
            .where(r.c.id.in_(again))
            .values(
                status=ReminderStatus.PENDING, done_at=None, note=None, attempts=0, retry_at=None
            ),
        )
    await insert_rows(session, r, fresh)
    return len(fresh) + len(again)


async def cancel_reminders(
    session: AsyncSession,
    subject: Subject,
    kinds: Sequence[ReminderKind] | None = None,
    note: str = "",
) -> None:
    r = REMINDERS
    stmt = update(r).where(r.c.subject == str(subject), r.c.status == ReminderStatus.PENDING)
    if kinds:
        stmt = stmt.where(r.c.kind.in_(kinds))
    await execute(session, stmt.values(status=ReminderStatus.CANCELLED, note=note[:300] or None))


async def cancel_cycle_end(session: AsyncSession, factory_id: str, note: str) -> None:
    """Cancel the reminder of the end of a factory's service cycle (whatever its day)."""
    r = REMINDERS
    await execute(
        session,
        update(r)
        .where(
            r.c.kind == ReminderKind.CYCLE_END,
            r.c.status == ReminderStatus.PENDING,
            r.c.subject.startswith(CycleEndSubject.prefix(factory_id), autoescape=True),
        )
        .values(status=ReminderStatus.CANCELLED, note=note[:300]),
    )


async def claim_due(session: AsyncSession, now: datetime, limit: int) -> list[Reminder]:
    """Due reminders (not waiting to be tried again), locked for this transaction (skipped by
    other replicas on PostgreSQL)."""
    stmt = (
        select_rows(Reminder)
        .where(
            col(Reminder.status) == ReminderStatus.PENDING,
            col(Reminder.due_at) <= now,
            or_(col(Reminder.retry_at).is_(None), col(Reminder.retry_at) <= now),
        )
        .order_by(col(Reminder.due_at), col(Reminder.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.exec(stmt)).all())


async def mark_failed(
    session: AsyncSession, reminder_id: int, now: datetime, note: str, attempts: int
) -> None:
    """A reminder set aside after its last failed attempt (its savepoint was rolled back, so
    not through the session's copy of the row)."""
    await execute(
        session,
        update(REMINDERS)
        .where(REMINDERS.c.id == reminder_id)
        .values(
            status=ReminderStatus.FAILED,
            done_at=now,
            note=note[:300],
            attempts=attempts,
            retry_at=None,
        ),
    )


async def retry_later(
    session: AsyncSession, reminder_id: int, at: datetime, note: str, attempts: int
) -> None:
    """A reminder whose handler failed, to be tried again at ``at`` (still pending)."""
    await execute(
        session,
        update(REMINDERS)
        .where(REMINDERS.c.id == reminder_id)
        .values(retry_at=at, note=note[:300], attempts=attempts),
    )


# --- buyer calls ------------------------------------------------------------------------------


async def upcoming_calls(session: AsyncSession, since: datetime) -> list[BuyerCall]:
    """The calls (one-off and occurrences of a series) held from ``since`` on, not removed, as
    they are now (also when the session read them before)."""
    stmt = (
        select_rows(BuyerCall)
        .where(col(BuyerCall.removed_at).is_(None), col(BuyerCall.held_at) >= since)
        .order_by(col(BuyerCall.held_at), col(BuyerCall.id))
        .execution_options(populate_existing=True)
    )
    return list((await session.exec(stmt)).all())


async def get_call(session: AsyncSession, call_id: int) -> BuyerCall | None:
    return await session.get(BuyerCall, call_id)


async def add_calls(
    session: AsyncSession,
    moments: Sequence[datetime],
    *,
    by: str,
    now: datetime,
    series_id: int | None = None,
) -> list[BuyerCall]:
    """Write calls held at ``moments`` (occurrences of ``series_id``, if given), with ids."""
    rows = [
        BuyerCall(held_at=at, created_by=by, created_at=now, series_id=series_id) for at in moments
    ]
    session.add_all(rows)
    await session.flush()
    return rows


# --- call series --------------------------------------------------------------------------------


async def add_series(
    session: AsyncSession, first_held_at: datetime, months: int, *, by: str, now: datetime
) -> CallSeries:
    series = CallSeries(first_held_at=first_held_at, months=months, created_by=by, created_at=now)
    session.add(series)
    await session.flush()
    return series


async def lock_series(
    session: AsyncSession, series_id: int, *, wait: bool = True
) -> CallSeries | None:
    """A series, locked for this transaction (on PostgreSQL; SQLite has one writer). With
    ``wait=False`` a series another transaction holds is not waited for: None."""
    stmt = (
        select_rows(CallSeries)
        .where(col(CallSeries.id) == series_id)
        .with_for_update(skip_locked=not wait)
        .execution_options(populate_existing=True)
    )
    return (await session.exec(stmt)).first()


async def live_series(session: AsyncSession) -> list[CallSeries]:
    """The series not removed, oldest first."""
    stmt = (
        select_rows(CallSeries)
        .where(col(CallSeries.removed_at).is_(None))
        .order_by(col(CallSeries.id))
    )
    return list((await session.exec(stmt)).all())


async def series_calls(session: AsyncSession, series_id: int) -> list[BuyerCall]:
    """Every occurrence of a series written so far, removed ones too, in time order, as they
    are now."""
    stmt = (
        select_rows(BuyerCall)
        .where(col(BuyerCall.series_id) == series_id)
        .order_by(col(BuyerCall.held_at), col(BuyerCall.id))
        .execution_options(populate_existing=True)
    )
    return list((await session.exec(stmt)).all())


async def agenda(
    session: AsyncSession, counted: Mapping[str, frozenset[str]], default: frozenset[str]
) -> list[Row[Any]]:
    """Factories at risk or designated, with their subscribing buyers and last assessment of a
    kind their country counts (``counted``: country → kinds; ``default`` for a country not
    named, e.g. one since removed from the configuration)."""
    f, a, sub, b = FACTORIES, ASSESSMENTS, SUBSCRIPTIONS, BUYERS
    last = (
        select(a.c.factory_id, func.max(a.c.assessed_on).label("last_on"))
        .where(a.c.withdrawn_at.is_(None), _counted_kinds(counted, default))
        .group_by(a.c.factory_id)
        .subquery()
    )
    stmt = (
        select(
            f.c.id,
            f.c.name,
            f.c.country,
            f.c.state,
            f.c.streak,
            last.c.last_on,
            b.c.id.label("buyer_id"),
            b.c.name.label("buyer_name"),
            b.c.emails.label("buyer_emails"),
        )
        .join(last, last.c.factory_id == f.c.id, isouter=True)
        .join(sub, sub.c.factory_id == f.c.id, isouter=True)
        .join(b, b.c.id == sub.c.buyer_id, isouter=True)
        .where(f.c.state.in_(WATCHED_STATES))
        .order_by(f.c.id, b.c.id)
    )
    return list((await execute(session, stmt)).all())


def _counted_kinds(counted: Mapping[str, frozenset[str]], default: frozenset[str]) -> Any:
    """An assessment (``ASSESSMENTS``) of a kind its factory's country counts."""
    a = ASSESSMENTS
    others: dict[frozenset[str], list[str]] = {}
    for code, kinds in counted.items():
        if kinds != default:
            others.setdefault(kinds, []).append(code)
    if not others:
        return a.c.kind.in_(sorted(default))
    country = (
        select(FACTORIES.c.country)
        .where(FACTORIES.c.id == a.c.factory_id)
        .correlate(a)
        .scalar_subquery()
    )
    named = [code for codes in others.values() for code in codes]
    return or_(
        and_(country.not_in(named), a.c.kind.in_(sorted(default))),
        *(and_(country.in_(codes), a.c.kind.in_(sorted(k))) for k, codes in others.items()),
    )


async def last_assessments(
    session: AsyncSession, pairs: Sequence[tuple[str, date | None]]
) -> dict[str, list[str]]:
    """The issues of the assessment of each (factory, day), for the counts shown in agendas."""
    a = ASSESSMENTS
    wanted = [(fid, day) for fid, day in dict.fromkeys(pairs) if day is not None]
    found: dict[str, list[str]] = {}
    for part in chunks(wanted):
        stmt = select(a.c.factory_id, a.c.nc_issues).where(
            tuple_(a.c.factory_id, a.c.assessed_on).in_(part), a.c.withdrawn_at.is_(None)
        )
        found.update((r.factory_id, r.nc_issues) for r in await execute(session, stmt))
    return found


# --- follow-ups -------------------------------------------------------------------------------


async def open_follow_up(session: AsyncSession, factory_id: str, kind: str) -> FollowUp | None:
    stmt = (
        select_rows(FollowUp)
        .where(
            col(FollowUp.factory_id) == factory_id,
            col(FollowUp.kind) == kind,
            col(FollowUp.closed_on).is_(None),
        )
        .order_by(col(FollowUp.id).desc())
    )
    return (await session.exec(stmt)).first()


async def follow_ups_of(session: AsyncSession, event_ids: Sequence[int]) -> list[FollowUp]:
    """The follow-ups of these events (locked for this transaction on PostgreSQL)."""
    found: list[FollowUp] = []
    for part in chunks(list(event_ids)):
        stmt = (
            select_rows(FollowUp)
            .where(col(FollowUp.event_id).in_(part))
            .order_by(col(FollowUp.id))
            .with_for_update()
        )
        found += (await session.exec(stmt)).all()
    return found


async def get_follow_up(session: AsyncSession, follow_up_id: int) -> FollowUp | None:
    return await session.get(FollowUp, follow_up_id)
