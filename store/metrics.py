"""The figures ``/metrics`` reads from the database at each scrape: the outbox's depth, its
oldest undelivered notice, the reminders due and late, the paused channels. Read from the
shared tables, they are the same on every replica.

Four small aggregate queries in one read-only transaction; the outbox's by status use its
``(status, next_attempt_at)`` index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.vocabulary import OutboxStatus, ReminderStatus
from store.models import CHANNELS, OUTBOX, REMINDERS

#: the statuses of notices still in the outbox (sent and cancelled ones have left it)
WAITING = (OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.HELD, OutboxStatus.DEAD)
#: the statuses of notices on their way (not held for an address, not dead)
UNDELIVERED = (OutboxStatus.PENDING, OutboxStatus.SENDING)


@dataclass(frozen=True)
class Figures:
    """What the database holds at one moment."""

    #: notices in the outbox by (status, channel), of the ``WAITING`` statuses
    depth: dict[tuple[str, str], int]
    #: by channel, when the oldest notice still on its way (``UNDELIVERED``) was written
    oldest_undelivered: dict[str, datetime]
    #: pending reminders whose moment has come
    reminders_due: int
    #: of those, the ones whose moment was before ``late_before``
    reminders_late: int
    #: channels paused for every replica now
    paused: frozenset[str]


async def figures(conn: AsyncConnection, now: datetime, late_before: datetime) -> Figures:
    """The figures at ``now``; a reminder due before ``late_before`` is late."""
    o, r, c = OUTBOX, REMINDERS, CHANNELS
    depth = await conn.execute(
        select(o.c.status, o.c.channel, func.count())
        .where(o.c.status.in_(WAITING))
        .group_by(o.c.status, o.c.channel)
    )
    oldest = await conn.execute(
        select(o.c.channel, func.min(o.c.created_at))
        .where(o.c.status.in_(UNDELIVERED))
        .group_by(o.c.channel)
    )
    due = r.c.due_at <= now
    reminders = await conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((r.c.due_at <= late_before, 1), else_=0)), 0),
        ).where(r.c.status == ReminderStatus.PENDING, due)
    )
    paused = await conn.execute(select(c.c.name).where(c.c.paused_until > now))
    due_count, late_count = reminders.one()
    return Figures(
        depth={(row[0], row[1]): int(row[2]) for row in depth.all()},
        oldest_undelivered={row[0]: row[1] for row in oldest.all() if row[1] is not None},
        reminders_due=int(due_count),
        reminders_late=int(late_count),
        paused=frozenset(row[0] for row in paused.all()),
    )
