"""The outbox: notices written with what caused them, claimed under a lease, delivered, and
marked with their outcome; and the delivery channels paused for every replica.

``bot.delivery`` decides what happens to a notice (retries, pauses, alerts); the statements it
needs are here. Claims use ``UPDATE … RETURNING`` over rows picked ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL (dropped on SQLite, which has one writer), so any number of dispatchers claim each
notice once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, bindparam, func, null, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.vocabulary import OutboxStatus
from store.bulk import chunks, insert_rows
from store.db import dialect_insert, execute
from store.hot import HotPath, Query
from store.models import CHANNELS, OUTBOX, OutboxMessage

#: what an outbox row of an event whose history no longer supports it is left with
UNSUPPORTED = "the history no longer supports this event"


@dataclass(slots=True)
class Claimed:
    """A notice claimed for delivery: what the transports need to send it, and whether the
    claim was found taken over by another dispatcher meanwhile (then it is skipped)."""

    id: int
    key: str
    kind: str
    channel: str
    recipient_type: str
    recipient_id: str
    recipient_name: str
    addresses: list[str]
    delivered_to: list[str]
    language: str
    factory_id: str | None
    event_id: int | None
    payload: dict[str, Any]
    message_id: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    taken_over: bool = field(default=False)

    @classmethod
    def of(cls, row: Mapping[str, Any], notice_id: int = 0) -> Claimed:
        """The notice an outbox row (``bot.notices.outbox_row``) would be once claimed."""
        names = [n for n in cls.__dataclass_fields__ if n not in ("id", "taken_over")]
        return cls(id=notice_id, **{n: row[n] for n in names})


_CLAIMED = [OUTBOX.c[name] for name in Claimed.__dataclass_fields__ if name != "taken_over"]


# --- written with what caused them ------------------------------------------------------------


async def add_notices(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Write outbox rows, skipping any whose key is already there — except a notice cancelled
    because its event was no longer supported: the event is supported again and nobody was
    told, so the row is written afresh, due now. Returns how many rows were written."""
    o = OUTBOX
    keys = [r["key"] for r in rows]
    existing: set[str] = set()
    revivable: set[str] = set()
    for part in chunks(keys):
        found = await execute(
            session, select(o.c.key, o.c.status, o.c.last_error).where(o.c.key.in_(part))
        )
        for r in found.all():
            existing.add(r.key)
            if r.status == OutboxStatus.CANCELLED and r.last_error == UNSUPPORTED:
                revivable.add(r.key)
    fresh = [r for r in rows if r["key"] not in existing]
    revived = [r for r in rows if r["key"] in revivable]
    if revived:
        columns = [c for c in revived[0] if c != "key"]
        values: dict[str, Any] = {c: bindparam(c) for c in columns}
        values |= dict.fromkeys(("lease_until", "claimed_by", "last_error", "provider_reply"))
        values["sent_at"] = None
        stmt = (
            update(o)
            .where(o.c.key == bindparam("_key"), o.c.status == OutboxStatus.CANCELLED)
            .values(values)
        )
        await execute(
            session, stmt, [{"_key": r["key"], **{c: r[c] for c in columns}} for r in revived]
        )
    await insert_rows(session, o, fresh)
    return len(fresh) + len(revived)


#: notices that have reached nobody and are not being sent: cancelled when their event goes
UNSENT = (OutboxStatus.PENDING, OutboxStatus.DEAD, OutboxStatus.HELD)


async def cancel_unsent_notices(session: AsyncSession, event_ids: Sequence[int]) -> set[int]:
    """Cancel every notice of these events that has not reached anyone yet (waiting, retrying,
    dead, or held for an address); returns the events of which people were told: a notice sent,
    being sent (a live claim cannot be recalled) or delivered to some of its addresses."""
    o = OUTBOX
    for part in chunks(list(event_ids)):
        await execute(
            session,
            update(o)
            .where(o.c.event_id.in_(part), o.c.status.in_(UNSENT))
            .values(status=OutboxStatus.CANCELLED, last_error=UNSUPPORTED),
        )
    return await told_events(session, event_ids)


async def told_events(session: AsyncSession, event_ids: Sequence[int]) -> set[int]:
    """The events of which a notice reached someone, or may be reaching them now."""
    o = OUTBOX
    told: set[int] = set()
    reached = (OutboxStatus.SENT, OutboxStatus.SENDING)
    for part in chunks(list(event_ids)):
        rows = await execute(
            session,
            select(o.c.event_id, o.c.status, o.c.delivered_to).where(o.c.event_id.in_(part)),
        )
        told |= {r.event_id for r in rows.all() if r.status in reached or r.delivered_to}
    return told


# --- the staff alerts about dead notices: one row per cause and window, added to ------------


async def keyed(session: AsyncSession, key: str, *, lock: bool = False) -> Row[Any] | None:
    """The outbox row with this key (id, status, payload, factory, when written and sent),
    locked when ``lock`` — found by its unique key: one index probe."""
    o = OUTBOX
    columns = (o.c.id, o.c.key, o.c.status, o.c.payload, o.c.factory_id, o.c.created_at)
    stmt = select(*columns, o.c.sent_at).where(o.c.key == key)
    if lock:
        stmt = stmt.with_for_update()
    return (await execute(session, stmt)).one_or_none()


async def add_once(session: AsyncSession, row: dict[str, Any]) -> bool:
    """Write an outbox row unless its key is there already (``ON CONFLICT DO NOTHING``: two
    dispatchers writing the same key at once write it once, and neither fails); True if this
    call wrote it."""
    conn = await session.connection()
    insert = dialect_insert(conn.dialect.name)
    stmt = (
        insert(OUTBOX)
        .values(**row)
        .on_conflict_do_nothing(index_elements=[OUTBOX.c.key])
        .returning(OUTBOX.c.id)
    )
    return (await conn.execute(stmt)).scalar() is not None


async def add_to(
    session: AsyncSession, notice_id: int, payload: dict[str, Any], factory_id: str | None
) -> bool:
    """Rewrite what a notice not yet sent says (a summary counting one more); False if it is
    no longer waiting."""
    stmt = (
        update(OUTBOX)
        .where(OUTBOX.c.id == notice_id, OUTBOX.c.status == OutboxStatus.PENDING)
        .values(payload=payload, factory_id=factory_id)
    )
    return bool((await execute(session, stmt)).rowcount)


# --- what staff see and do --------------------------------------------------------------------


_LISTED = ("id", "kind", "channel", "recipient_name", "factory_id", "status", "attempts")


async def overview(session: AsyncSession, now: datetime, limit: int) -> dict[str, Any]:
    """Counts by status, the notices waiting, retrying and dead, and the paused channels."""
    o = OUTBOX
    counts = dict(
        (r.status, r.count)
        for r in await execute(
            session, select(o.c.status, func.count().label("count")).group_by(o.c.status)
        )
    )
    columns = [*(o.c[c] for c in _LISTED), o.c.next_attempt_at, o.c.last_error]

    async def listed(*where: ColumnElement[bool], newest: bool = False) -> list[Row[Any]]:
        order = (o.c.id.desc(),) if newest else (o.c.next_attempt_at, o.c.id)
        stmt = select(*columns).where(*where).order_by(*order).limit(limit)
        return list((await execute(session, stmt)).all())

    waiting = o.c.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING))
    paused = await execute(
        session,
        select(CHANNELS.c.name, CHANNELS.c.paused_until, CHANNELS.c.reason).where(
            CHANNELS.c.paused_until > now
        ),
    )
    return {
        "counts": counts,
        "pending": await listed(waiting, o.c.attempts == 0),
        "retrying": await listed(waiting, o.c.attempts > 0),
        "dead": await listed(o.c.status == OutboxStatus.DEAD, newest=True),
        "paused": list(paused.all()),
    }


async def get_notice(session: AsyncSession, notice_id: int) -> OutboxMessage | None:
    return await session.get(OutboxMessage, notice_id)


async def revive_dead(
    session: AsyncSession, now: datetime, *, kind: str | None, factory_id: str | None
) -> int:
    """Make every dead notice (of ``kind``, about ``factory_id``, when given) due again now, its
    attempts counted afresh, in one statement; returns how many."""
    o = OUTBOX
    which = [o.c.status == OutboxStatus.DEAD]
    if kind is not None:
        which.append(o.c.kind == kind)
    if factory_id is not None:
        which.append(o.c.factory_id == factory_id)
    stmt = (
        update(o)
        .where(*which)
        .values(_released(status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now))
    )
    return int((await execute(session, stmt)).rowcount)


# --- claims -----------------------------------------------------------------------------------


async def claim(
    session: AsyncSession,
    channel: str,
    now: datetime,
    *,
    limit: int,
    lease_until: datetime,
    claimed_by: str,
) -> list[Claimed]:
    """Claim up to ``limit`` due notices of a channel — waiting ones whose time has come, and
    claims whose lease ran out (their dispatcher stopped) — counting an attempt on each."""
    o = OUTBOX
    due = or_(
        and_(o.c.status == OutboxStatus.PENDING, o.c.next_attempt_at <= now),
        and_(o.c.status == OutboxStatus.SENDING, o.c.lease_until < now),  # a lost claim
    )
    pick = (
        select(o.c.id)
        .where(o.c.channel == channel, due)
        .order_by(o.c.next_attempt_at, o.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(o)
        .where(o.c.id.in_(pick))
        .values(
            status=OutboxStatus.SENDING,
            lease_until=lease_until,
            claimed_by=claimed_by,
            attempts=o.c.attempts + 1,
        )
        .returning(*_CLAIMED)
    )
    return [Claimed(**r._mapping) for r in await execute(session, stmt)]


def _ours(claimed_by: str, ids: Sequence[int]) -> tuple[ColumnElement[bool], ...]:
    """The rows among ``ids`` still claimed by ``claimed_by``."""
    o = OUTBOX
    which = o.c.id == ids[0] if len(ids) == 1 else o.c.id.in_(ids)
    return (which, o.c.claimed_by == claimed_by, o.c.status == OutboxStatus.SENDING)


def _released(**values: Any) -> dict[str, Any]:
    return {"lease_until": None, "claimed_by": None, **values}


async def cancel_claimed(session: AsyncSession, ids: Sequence[int], why: str) -> None:
    """Cancel claimed notices without counting the claim as an attempt."""
    o = OUTBOX
    await execute(
        session,
        update(o)
        .where(o.c.id.in_(ids))
        .values(
            _released(status=OutboxStatus.CANCELLED, attempts=o.c.attempts - 1, last_error=why)
        ),
    )


async def dead_letter(session: AsyncSession, ids: Sequence[int], why: str) -> None:
    """Dead-letter claimed notices, the claim not counted as an attempt (it never ended)."""
    o = OUTBOX
    await execute(
        session,
        update(o)
        .where(o.c.id.in_(ids))
        .values(_released(status=OutboxStatus.DEAD, attempts=o.c.attempts - 1, last_error=why)),
    )


async def record_now(
    hot: HotPath,
    notice_id: int,
    claimed_by: str,
    values: dict[str, Any],
    *,
    clear_pause: str | None = None,
) -> bool:
    """``record``, on the hot path (``store.hot``) in a transaction of its own, committed when
    this returns; with ``clear_pause``, that channel's pause is cleared in it too (it just
    delivered). False if another dispatcher took the notice over."""
    batch = [(_recording(frozenset(values)), _recording_params(notice_id, claimed_by, values))]
    if clear_pause is not None:
        batch.append((_CLEAR_PAUSE, {"channel": clear_pause}))
    return bool((await hot.write(batch))[0])


def _recording_params(notice_id: int, claimed_by: str, values: dict[str, Any]) -> dict[str, Any]:
    """``_recording``'s parameters (named apart from the columns, as SQLAlchemy requires)."""
    return {"notice": notice_id, "by": claimed_by, **{f"new_{k}": v for k, v in values.items()}}


@cache
def _recording(columns: frozenset[str]) -> Query:
    """``record``'s statement for one set of columns (each outcome sets its own few)."""
    o = OUTBOX
    return Query(
        "record",
        update(o)
        .where(
            o.c.id == bindparam("notice"),
            o.c.claimed_by == bindparam("by"),
            o.c.status == OutboxStatus.SENDING,
        )
        .values(
            {name: bindparam(f"new_{name}", type_=o.c[name].type) for name in sorted(columns)}
            | {"lease_until": null(), "claimed_by": null()}
        )
        .returning(o.c.id),
    )


async def record(
    conn: AsyncConnection, notice_id: int, claimed_by: str, values: dict[str, Any]
) -> bool:
    """Record a delivery's outcome, only if the claim is still ``claimed_by``'s; False if
    another dispatcher took it over."""
    params = _recording_params(notice_id, claimed_by, values)
    return bool((await conn.execute(_recording(frozenset(values)).statement, params)).all())


async def renew(
    conn: AsyncConnection, ids: Sequence[int], claimed_by: str, lease_until: datetime
) -> set[int]:
    """Extend the lease of the claims among ``ids`` still ``claimed_by``'s; returns those."""
    stmt = (
        update(OUTBOX)
        .where(*_ours(claimed_by, ids))
        .values(lease_until=lease_until)
        .returning(OUTBOX.c.id)
    )
    return set((await conn.execute(stmt)).scalars().all())


async def give_back(
    session: AsyncSession,
    rows: Sequence[Claimed],
    claimed_by: str,
    *,
    until: datetime,
    why: str,
) -> None:
    """Return claimed notices unsent, due again at ``until``, the claim not counted."""
    for row in rows:
        await execute(
            session,
            update(OUTBOX)
            .where(*_ours(claimed_by, [row.id]))
            .values(
                _released(
                    status=OutboxStatus.PENDING,
                    attempts=row.attempts - 1,
                    next_attempt_at=until,
                    last_error=why,
                )
            ),
        )


# --- channels ---------------------------------------------------------------------------------


async def paused_until(session: AsyncSession, channel: str) -> datetime | None:
    stmt = select(CHANNELS.c.paused_until).where(CHANNELS.c.name == channel)
    value: datetime | None = (await execute(session, stmt)).scalar()
    return value


async def lock_channel(session: AsyncSession, channel: str) -> Row[Any]:
    """The channel's row (failures, alerted), created on first use, locked: dispatchers
    pausing the channel at once count each failure (SQLite: one writer anyway)."""
    conn = await session.connection()
    insert = dialect_insert(conn.dialect.name)
    await conn.execute(
        insert(CHANNELS)
        .values(name=channel, failures=0, alerted=False)
        .on_conflict_do_nothing(index_elements=[CHANNELS.c.name])
    )
    stmt = select(CHANNELS).where(CHANNELS.c.name == channel).with_for_update()
    return (await conn.execute(stmt)).one()


async def pause_channel(
    session: AsyncSession,
    channel: str,
    *,
    until: datetime,
    reason: str,
    failures: int,
    alerted: bool,
) -> None:
    await execute(
        session,
        update(CHANNELS)
        .where(CHANNELS.c.name == channel)
        .values(paused_until=until, reason=reason[:500], failures=failures, alerted=alerted),
    )


#: the channel delivered again: its pause, failures and alert are forgotten
_CLEAR_PAUSE = Query(
    "clear_pause",
    update(CHANNELS)
    .where(CHANNELS.c.name == bindparam("channel"), CHANNELS.c.failures > 0)
    .values(paused_until=null(), reason=null(), failures=0, alerted=False),
)
