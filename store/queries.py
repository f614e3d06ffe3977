"""Queries the services need. Every SQL statement of the project outside migrations lives here
or in ``store.bulk``; handlers never see a session."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import bindparam, case, delete, func, select, text, tuple_, update
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.notices import Party
from bot.policy import AssessmentRecord, ReadmissionRecord
from bot.suggest import close_matches
from store.bulk import CHUNK, chunks, insert_rows
from store.models import (
    Assessment,
    Buyer,
    BuyerCall,
    CountryRules,
    DeliveryChannel,
    Factory,
    FollowUp,
    OutboxMessage,
    PncEvent,
    Readmission,
    Reminder,
    Role,
    Subscription,
)


async def get_factory(
    session: AsyncSession, factory_id: str, *, lock: bool = False
) -> Factory | None:
    """The factory, locked against concurrent history changes when ``lock`` (PostgreSQL)."""
    stmt = select(Factory).where(Factory.id == factory_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.exec(stmt)).scalars().first()  # type: ignore[call-overload]


async def get_buyer(session: AsyncSession, buyer_id: str) -> Buyer | None:
    return await session.get(Buyer, buyer_id)


async def close_ids(
    session: AsyncSession, model: type[Factory] | type[Buyer], value: str
) -> list[str]:
    """Ids that look like ``value`` (for "did you mean …?")."""
    ids = (await session.exec(select(model.id))).scalars().all()  # type: ignore[call-overload]
    return close_matches(value, ids)


async def live_assessments(session: AsyncSession, factory_id: str) -> list[Assessment]:
    stmt = (
        select(Assessment)
        .where(Assessment.factory_id == factory_id, Assessment.withdrawn_at.is_(None))  # type: ignore[union-attr]
        .order_by(Assessment.assessed_on, Assessment.id)
    )
    return list((await session.exec(stmt)).scalars().all())  # type: ignore[call-overload]


async def live_assessment_on(
    session: AsyncSession, factory_id: str, day: date
) -> Assessment | None:
    stmt = select(Assessment).where(
        Assessment.factory_id == factory_id,
        Assessment.assessed_on == day,
        Assessment.withdrawn_at.is_(None),  # type: ignore[union-attr]
    )
    return (await session.exec(stmt)).scalars().first()  # type: ignore[call-overload]


async def readmissions(session: AsyncSession, factory_id: str) -> list[Readmission]:
    stmt = select(Readmission).where(Readmission.factory_id == factory_id).order_by(Readmission.id)
    return list((await session.exec(stmt)).scalars().all())  # type: ignore[call-overload]


async def mark_events(session: AsyncSession, ids: Sequence[int], **values: Any) -> None:
    table = PncEvent.__table__  # type: ignore[attr-defined]
    for part in chunks(list(ids)):
        await session.exec(update(table).where(table.c.id.in_(part)).values(**values))


async def events(session: AsyncSession, factory_id: str) -> list[PncEvent]:
    stmt = select(PncEvent).where(PncEvent.factory_id == factory_id).order_by(PncEvent.id)
    return list((await session.exec(stmt)).scalars().all())  # type: ignore[call-overload]


async def subscribers(session: AsyncSession, factory_id: str) -> list[Buyer]:
    stmt = (
        select(Buyer)
        .join(Subscription, Subscription.buyer_id == Buyer.id)  # type: ignore[arg-type]
        .where(Subscription.factory_id == factory_id)
        .order_by(Buyer.id)
    )
    return list((await session.exec(stmt)).scalars().all())  # type: ignore[call-overload]


async def get_subscription(
    session: AsyncSession, buyer_id: str, factory_id: str
) -> Subscription | None:
    return await session.get(Subscription, (buyer_id, factory_id))


async def delete_subscription(session: AsyncSession, buyer_id: str, factory_id: str) -> None:
    await session.exec(  # type: ignore[call-overload]
        delete(Subscription).where(
            Subscription.buyer_id == buyer_id,  # type: ignore[arg-type]
            Subscription.factory_id == factory_id,  # type: ignore[arg-type]
        )
    )


async def managers(session: AsyncSession) -> list[str]:
    stmt = select(Role.user_id).where(Role.role == "manager").order_by(Role.user_id)
    return list((await session.exec(stmt)).scalars().all())  # type: ignore[call-overload]


async def get_role(session: AsyncSession, user_id: str) -> Role | None:
    return await session.get(Role, user_id)


async def withdrawn_assessments(session: AsyncSession, factory_id: str) -> list[Assessment]:
    stmt = (
        select(Assessment)
        .where(Assessment.factory_id == factory_id, Assessment.withdrawn_at.is_not(None))  # type: ignore[union-attr]
        .order_by(Assessment.assessed_on, Assessment.id)
    )
    return list((await session.exec(stmt)).scalars().all())  # type: ignore[call-overload]


#: most urgent first
WATCHED_STATES = ("pnc", "readmission_review", "at_risk")


async def watched_factories(
    session: AsyncSession, country: str | None, limit: int
) -> tuple[list[Any], int]:
    """Factories at risk or designated (from the state snapshot), most urgent first, and how
    many there are in all."""
    t = Factory.__table__  # type: ignore[attr-defined]
    where = [t.c.state.in_(WATCHED_STATES)]
    if country:
        where.append(t.c.country == country)
    urgency = case({s: i for i, s in enumerate(WATCHED_STATES)}, value=t.c.state)
    stmt = (
        select(t.c.id, t.c.name, t.c.country, t.c.state, t.c.streak)
        .where(*where)
        .order_by(urgency, t.c.streak.desc(), t.c.id)
        .limit(limit)
    )
    rows = list((await session.exec(stmt)).all())
    total = (await session.exec(select(func.count()).select_from(t).where(*where))).scalar_one()
    return rows, total


async def recent_submissions(session: AsyncSession, user_id: str, limit: int) -> list[Any]:
    a = Assessment.__table__  # type: ignore[attr-defined]
    f = Factory.__table__  # type: ignore[attr-defined]
    stmt = (
        select(a.c.factory_id, f.c.name, a.c.assessed_on, a.c.nc_issues, a.c.submitted_at)
        .join(f, f.c.id == a.c.factory_id)
        .where(a.c.submitted_by == user_id)
        .order_by(a.c.submitted_at.desc(), a.c.id.desc())
        .limit(limit)
    )
    return list((await session.exec(stmt)).all())


# --- batches (imports) ----------------------------------------------------------------------


def as_record(row: Any) -> AssessmentRecord:
    return AssessmentRecord(row.id, row.assessed_on, frozenset(row.nc_issues), row.kind)


def as_readmission(row: Any) -> ReadmissionRecord:
    approved = None if row.decision is None else row.decision == "approved"
    return ReadmissionRecord(row.id, row.applied_on, row.unannounced_on, row.decided_on, approved)


async def factory_rows(
    session: AsyncSession, ids: Sequence[str] | None = None, *, lock: bool = False
) -> dict[str, Any]:
    """id → row (all columns) for the given factories, or for all when ``ids`` is None; with
    ``lock``, the given factories are locked as by ``factory_facts``."""
    table = Factory.__table__  # type: ignore[attr-defined]
    if ids is None:
        rows = (await session.exec(select(table))).all()
    else:
        rows = []
        for part in chunks(sorted(ids) if lock else list(ids)):
            stmt = select(table).where(table.c.id.in_(part))
            rows += (await session.exec(_locking(session, stmt, table) if lock else stmt)).all()
    return {r.id: r for r in rows}


def _locking(session: AsyncSession, stmt: Any, table: Any) -> Any:
    """``stmt`` locking the factory rows it reads (``SELECT … FOR UPDATE`` on PostgreSQL; on
    SQLite the one writer already holds the database). Rows are locked in id order (byte
    order, as Python sorts the chunks), so two transactions locking many factories take them
    in the same order and never deadlock."""
    if session.bind is None or session.bind.dialect.name != "postgresql":
        return stmt
    return stmt.order_by(table.c.id.collate("C")).with_for_update()


async def factory_ids(session: AsyncSession) -> list[str]:
    return list((await session.exec(select(Factory.id))).scalars().all())  # type: ignore[call-overload]


async def buyer_rows(session: AsyncSession) -> dict[str, Any]:
    table = Buyer.__table__  # type: ignore[attr-defined]
    return {r.id: r for r in (await session.exec(select(table))).all()}


async def subscription_pairs(session: AsyncSession) -> set[tuple[str, str]]:
    table = Subscription.__table__  # type: ignore[attr-defined]
    rows = (await session.exec(select(table.c.buyer_id, table.c.factory_id))).all()
    return {(r.buyer_id, r.factory_id) for r in rows}


async def _by_factory(
    session: AsyncSession, table: Any, columns: Sequence[Any], ids: Sequence[str], *where: Any
) -> dict[str, list[Any]]:
    """Rows of ``table`` grouped by factory id, for many factories in a few queries."""
    grouped: dict[str, list[Any]] = defaultdict(list)
    many = len(ids) > CHUNK
    if (
        many
        and len(ids) * 2
        > (await session.exec(select(func.count()).select_from(Factory))).scalar_one()
    ):  # most factories: one scan beats many IN lists
        parts: Iterable[Sequence[str] | None] = [None]
        wanted = set(ids)
    else:
        parts = chunks(list(ids))
        wanted = None
    for part in parts:
        stmt = select(*columns).where(*where)
        if part is not None:
            stmt = stmt.where(table.c.factory_id.in_(part))
        for row in (await session.exec(stmt)).all():
            if wanted is None or row.factory_id in wanted:
                grouped[row.factory_id].append(row)
    return grouped


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


async def factory_facts(
    session: AsyncSession, ids: Sequence[str], *, lock: bool = False
) -> dict[str, Any]:
    """id → (id, country, state, streak) for the given factories. With ``lock`` their rows are
    locked against concurrent history changes (as ``get_factory(lock=True)`` locks one), a
    statement per few hundred factories, before their histories are read."""
    t = Factory.__table__  # type: ignore[attr-defined]
    found: dict[str, Any] = {}
    for part in chunks(sorted(ids) if lock else list(ids)):
        stmt = select(t.c.id, t.c.country, t.c.state, t.c.streak).where(t.c.id.in_(part))
        found.update(
            (r.id, r)
            for r in (await session.exec(_locking(session, stmt, t) if lock else stmt)).all()
        )
    return found


async def readmission_records(
    session: AsyncSession, ids: Sequence[str]
) -> dict[str, list[ReadmissionRecord]]:
    r = Readmission.__table__  # type: ignore[attr-defined]
    rows = await _by_factory(
        session,
        r,
        [r.c.id, r.c.factory_id, r.c.applied_on, r.c.unannounced_on, r.c.decided_on, r.c.decision],
        ids,
    )
    return {f: [as_readmission(x) for x in group] for f, group in rows.items()}


async def load_histories(
    session: AsyncSession, ids: Sequence[str], factories: dict[str, Factory] | None = None
) -> Histories:
    """The histories of these factories; ``factories`` are rows the caller already holds
    (e.g. locked), which are not read again."""
    held = factories or {}
    facts: dict[str, Any] = {**held}
    if len(held) < len(ids):
        facts |= await factory_facts(session, [f for f in ids if f not in held])
    a = Assessment.__table__  # type: ignore[attr-defined]
    arows = await _by_factory(
        session,
        a,
        [a.c.id, a.c.factory_id, a.c.assessed_on, a.c.nc_issues, a.c.kind],
        ids,
        a.c.withdrawn_at.is_(None),
    )
    return Histories(
        countries={f: r.country for f, r in facts.items()},
        snapshots={f: (r.state, r.streak) for f, r in facts.items()},
        assessments={f: [as_record(x) for x in group] for f, group in arows.items()},
        readmissions=await readmission_records(session, ids),
        factories=dict(held),
    )


async def event_index(session: AsyncSession, ids: Sequence[str]) -> dict[str, list[Any]]:
    """Recorded events (id, key, kind, application, notice, unsupported_at) of many
    factories."""
    e = PncEvent.__table__  # type: ignore[attr-defined]
    columns = [e.c.id, e.c.key, e.c.factory_id, e.c.kind, e.c.application_id]
    return await _by_factory(session, e, [*columns, e.c.notice, e.c.unsupported_at], ids)


async def live_days(session: AsyncSession, ids: Sequence[str]) -> dict[tuple[str, date], Any]:
    """(factory, day) → row of each live assessment of these factories."""
    a = Assessment.__table__  # type: ignore[attr-defined]
    grouped = await _by_factory(
        session,
        a,
        [a.c.id, a.c.factory_id, a.c.assessed_on, a.c.nc_issues, a.c.kind],
        ids,
        a.c.withdrawn_at.is_(None),
    )
    return {(row.factory_id, row.assessed_on): row for rows in grouped.values() for row in rows}


async def set_snapshots(session: AsyncSession, snapshots: Sequence[dict[str, Any]]) -> None:
    """Rewrite factories' state/streak snapshots: dicts with id, state and streak."""
    if not snapshots:
        return
    table = Factory.__table__  # type: ignore[attr-defined]
    stmt = (
        update(table)
        .where(table.c.id == bindparam("fid"))
        .values(state=bindparam("state"), streak=bindparam("streak"))
    )
    await session.exec(
        stmt,
        params=[{"fid": s["id"], "state": s["state"], "streak": s["streak"]} for s in snapshots],
    )


# --- notices ----------------------------------------------------------------------------------


#: what an outbox row of an event whose history no longer supports it is left with
UNSUPPORTED = "the history no longer supports this event"


async def cancel_unsent_notices(session: AsyncSession, event_ids: Sequence[int]) -> set[int]:
    """Cancel every notice of these events that has not reached anyone yet (waiting, retrying
    or dead); returns the events of which people were told: a notice sent, being sent (a live
    claim cannot be recalled) or delivered to some of its addresses."""
    o = OutboxMessage.__table__  # type: ignore[attr-defined]
    for part in chunks(list(event_ids)):
        await session.exec(
            update(o)
            .where(o.c.event_id.in_(part), o.c.status.in_(("pending", "dead")))
            .values(status="cancelled", last_error=UNSUPPORTED)
        )
    return await told_events(session, event_ids)


async def unsupported_events(session: AsyncSession, event_ids: Iterable[int]) -> set[int]:
    """Those of these events the history no longer supports."""
    e = PncEvent.__table__  # type: ignore[attr-defined]
    found: set[int] = set()
    for part in chunks(list(event_ids)):
        rows = await session.exec(
            select(e.c.id).where(e.c.id.in_(part), e.c.unsupported_at.is_not(None))
        )
        found |= set(rows.scalars().all())
    return found


async def told_events(session: AsyncSession, event_ids: Sequence[int]) -> set[int]:
    """The events of which a notice reached someone, or may be reaching them now."""
    o = OutboxMessage.__table__  # type: ignore[attr-defined]
    told: set[int] = set()
    for part in chunks(list(event_ids)):
        rows = await session.exec(
            select(o.c.event_id, o.c.status, o.c.delivered_to).where(o.c.event_id.in_(part))
        )
        told |= {
            r.event_id for r in rows.all() if r.status in ("sent", "sending") or r.delivered_to
        }
    return told


async def add_notices(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Write outbox rows, skipping any whose key is already there — except a notice cancelled
    because its event was no longer supported: the event is supported again and nobody was
    told, so the row is written afresh, due now. Returns how many rows were written."""
    o = OutboxMessage.__table__  # type: ignore[attr-defined]
    keys = [r["key"] for r in rows]
    existing: set[str] = set()
    revivable: set[str] = set()
    for part in chunks(keys):
        found = await session.exec(
            select(o.c.key, o.c.status, o.c.last_error).where(o.c.key.in_(part))
        )
        for r in found.all():
            existing.add(r.key)
            if r.status == "cancelled" and r.last_error == UNSUPPORTED:
                revivable.add(r.key)
    fresh = [r for r in rows if r["key"] not in existing]
    revived = [r for r in rows if r["key"] in revivable]
    if revived:
        columns = [c for c in revived[0] if c != "key"]
        values: dict[str, Any] = {c: bindparam(c) for c in columns}
        values |= dict.fromkeys(("lease_until", "claimed_by", "last_error", "provider_reply"))
        values["sent_at"] = None
        stmt = (
            update(o).where(o.c.key == bindparam("_key"), o.c.status == "cancelled").values(values)
        )
        await session.exec(
            stmt, params=[{"_key": r["key"], **{c: r[c] for c in columns}} for r in revived]
        )
    await insert_rows(session, o, fresh)
    return len(fresh) + len(revived)


async def factory_parties(
    session: AsyncSession, ids: Sequence[str], known: dict[str, Any] | None = None
) -> dict[str, tuple[Party, date | None]]:
    """Factories as recipients: name, addresses, language, and their service cycle's end;
    ``known`` rows (whole factories) are not read again."""
    rows = {f: r for f, r in (known or {}).items() if f in ids}
    if len(rows) < len(ids):
        rows |= await factory_rows(session, [f for f in ids if f not in rows])
    return {
        fid: (Party(r.id, r.name, tuple(r.emails), r.language), r.cycle_end)
        for fid, r in rows.items()
    }


async def subscriber_parties(session: AsyncSession, ids: Sequence[str]) -> dict[str, list[Party]]:
    """The subscribing buyers of each factory, as recipients."""
    b = Buyer.__table__  # type: ignore[attr-defined]
    sub = Subscription.__table__  # type: ignore[attr-defined]
    found: dict[str, list[Party]] = defaultdict(list)
    for part in chunks(list(ids)):
        stmt = (
            select(sub.c.factory_id, b.c.id, b.c.name, b.c.emails)
            .join(b, b.c.id == sub.c.buyer_id)
            .where(sub.c.factory_id.in_(part))
            .order_by(sub.c.factory_id, b.c.id)
        )
        for r in (await session.exec(stmt)).all():
            found[r.factory_id].append(Party(r.id, r.name, tuple(r.emails)))
    return found


async def outbox_overview(session: AsyncSession, now: Any, limit: int) -> dict[str, Any]:
    """Counts by status, the notices waiting, retrying and dead, and the paused channels."""
    o = OutboxMessage.__table__  # type: ignore[attr-defined]
    counts = dict((await session.exec(select(o.c.status, func.count()).group_by(o.c.status))).all())
    columns = [
        o.c.id,
        o.c.kind,
        o.c.channel,
        o.c.recipient_name,
        o.c.factory_id,
        o.c.status,
        o.c.attempts,
        o.c.next_attempt_at,
        o.c.last_error,
    ]

    async def listed(*where: Any, newest: bool = False) -> list[Any]:
        order = (o.c.id.desc(),) if newest else (o.c.next_attempt_at, o.c.id)
        stmt = select(*columns).where(*where).order_by(*order).limit(limit)
        return list((await session.exec(stmt)).all())

    channels = DeliveryChannel.__table__  # type: ignore[attr-defined]
    paused = (
        await session.exec(
            select(channels.c.name, channels.c.paused_until, channels.c.reason).where(
                channels.c.paused_until > now
            )
        )
    ).all()
    return {
        "counts": counts,
        "pending": await listed(o.c.status.in_(("pending", "sending")), o.c.attempts == 0),
        "retrying": await listed(o.c.status.in_(("pending", "sending")), o.c.attempts > 0),
        "dead": await listed(o.c.status == "dead", newest=True),
        "paused": list(paused),
    }


# --- the schedule -----------------------------------------------------------------------------


async def add_reminders(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Write reminders (dicts with kind, subject, due_at, created_at), skipping any already
    scheduled for the same subject, kind and moment — except a cancelled one, which is wanted
    again and pending again. Returns how many were new or pending again."""
    r = Reminder.__table__  # type: ignore[attr-defined]
    wanted = {(row["kind"], row["subject"], row["due_at"]): row for row in rows}
    found: dict[tuple[str, str, Any], Any] = {}
    for part in chunks(sorted({row["subject"] for row in rows})):
        stmt = select(r.c.id, r.c.kind, r.c.subject, r.c.due_at, r.c.status).where(
            r.c.subject.in_(part)
        )
        found.update(((x.kind, x.subject, x.due_at), x) for x in (await session.exec(stmt)).all())
    fresh = [
        {"status": "pending", "done_at": None, "note": None, **row}
        for key, row in wanted.items()
        if key not in found
    ]
    again = [found[key].id for key in wanted if key in found and found[key].status == "cancelled"]
    if again:
        await session.exec(
            update(r).where(r.c.id.in_(again)).values(status="pending", done_at=None, note=None)
        )
    await insert_rows(session, r, fresh)
    return len(fresh) + len(again)


async def cancel_reminders(
    session: AsyncSession, subject: str, kinds: Sequence[str] | None = None, note: str = ""
) -> None:
    r = Reminder.__table__  # type: ignore[attr-defined]
    stmt = update(r).where(r.c.subject == subject, r.c.status == "pending")
    if kinds:
        stmt = stmt.where(r.c.kind.in_(kinds))
    await session.exec(stmt.values(status="cancelled", note=note[:300] or None))


async def cancel_cycle_end(session: AsyncSession, factory_id: str, note: str) -> None:
    """Cancel the reminder of the end of a factory's service cycle (whatever its day)."""
    r = Reminder.__table__  # type: ignore[attr-defined]
    await session.exec(
        update(r)
        .where(
            r.c.kind == "cycle_end",
            r.c.status == "pending",
            r.c.subject.startswith(f"factory:{factory_id}:", autoescape=True),
        )
        .values(status="cancelled", note=note[:300])
    )


async def claim_due_reminders(session: AsyncSession, now: Any, limit: int) -> list[Reminder]:
    """Due reminders, locked for this transaction (skipped by other replicas on PostgreSQL)."""
    stmt = (
        select(Reminder)
        .where(Reminder.status == "pending", Reminder.due_at <= now)  # type: ignore[arg-type]
        .order_by(Reminder.due_at, Reminder.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.exec(stmt)).scalars().all())  # type: ignore[call-overload]


async def upcoming_calls(session: AsyncSession, since: Any) -> list[BuyerCall]:
    stmt = (
        select(BuyerCall)
        .where(BuyerCall.removed_at.is_(None), BuyerCall.held_at >= since)  # type: ignore[union-attr]
        .order_by(BuyerCall.held_at)
    )
    return list((await session.exec(stmt)).scalars().all())  # type: ignore[call-overload]


async def agenda(session: AsyncSession) -> list[Any]:
    """Factories at risk or designated, with their subscribing buyers and last assessment."""
    f = Factory.__table__  # type: ignore[attr-defined]
    a = Assessment.__table__  # type: ignore[attr-defined]
    sub = Subscription.__table__  # type: ignore[attr-defined]
    b = Buyer.__table__  # type: ignore[attr-defined]
    last = (
        select(a.c.factory_id, func.max(a.c.assessed_on).label("last_on"))
        .where(a.c.withdrawn_at.is_(None))
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
    return list((await session.exec(stmt)).all())


async def last_assessments(
    session: AsyncSession, pairs: Sequence[tuple[str, Any]]
) -> dict[str, Any]:
    """The issues of the assessment of each (factory, day), for the counts shown in agendas."""
    a = Assessment.__table__  # type: ignore[attr-defined]
    wanted = [(fid, day) for fid, day in dict.fromkeys(pairs) if day is not None]
    found: dict[str, Any] = {}
    for part in chunks(wanted):
        stmt = select(a.c.factory_id, a.c.nc_issues).where(
            tuple_(a.c.factory_id, a.c.assessed_on).in_(part), a.c.withdrawn_at.is_(None)
        )
        found.update((r.factory_id, r.nc_issues) for r in (await session.exec(stmt)).all())
    return found


async def open_follow_up(session: AsyncSession, factory_id: str, kind: str) -> FollowUp | None:
    stmt = (
        select(FollowUp)
        .where(
            FollowUp.factory_id == factory_id, FollowUp.kind == kind, FollowUp.closed_on.is_(None)
        )  # type: ignore[union-attr]
        .order_by(FollowUp.id.desc())  # type: ignore[union-attr]
    )
    return (await session.exec(stmt)).scalars().first()  # type: ignore[call-overload]


async def follow_ups_of(session: AsyncSession, event_ids: Sequence[int]) -> list[FollowUp]:
    """The follow-ups of these events (locked for this transaction on PostgreSQL)."""
    found: list[FollowUp] = []
    for part in chunks(list(event_ids)):
        stmt = (
            select(FollowUp)
            .where(FollowUp.event_id.in_(part))  # type: ignore[attr-defined]
            .order_by(FollowUp.id)  # type: ignore[arg-type]
            .with_for_update()
        )
        found += (await session.exec(stmt)).scalars().all()  # type: ignore[call-overload]
    return found


# --- the rules in force -------------------------------------------------------------------------

#: pg_advisory_xact_lock key: "pnc_rules"
_RULES_LOCK = 0x706E635F72756C


async def rules_fingerprints(session: AsyncSession) -> dict[str, str]:
    """country → fingerprint of the rules its snapshots were derived with. On PostgreSQL,
    replicas starting together take turns (the lock lasts until the transaction ends)."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.exec(text("SELECT pg_advisory_xact_lock(:k)").bindparams(k=_RULES_LOCK))
    t = CountryRules.__table__  # type: ignore[attr-defined]
    return {r.country: r.fingerprint for r in (await session.exec(select(t))).all()}


async def set_rules_fingerprints(
    session: AsyncSession, fingerprints: dict[str, str], now: Any
) -> None:
    t = CountryRules.__table__  # type: ignore[attr-defined]
    await session.exec(delete(t).where(t.c.country.in_(list(fingerprints))))
    await insert_rows(
        session,
        t,
        [{"country": c, "fingerprint": f, "updated_at": now} for c, f in fingerprints.items()],
    )


async def factory_ids_in(session: AsyncSession, countries: Sequence[str]) -> list[str]:
    """The ids of the factories of these countries, sorted."""
    t = Factory.__table__  # type: ignore[attr-defined]
    stmt = select(t.c.id).where(t.c.country.in_(list(countries)))
    return sorted((await session.exec(stmt)).scalars())
