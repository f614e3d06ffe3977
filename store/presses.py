"""The statements behind the alerts' buttons: a claim that only one press wins (a dead notice
made due, a paused channel resumed: ``UPDATE … WHERE`` still so), what an earlier press or
command did (the audit log), and the alert a Slack message was (its ``ts``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import desc, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.vocabulary import AuditOutcome, Channel, OutboxStatus
from store.db import execute
from store.models import AUDIT, CHANNELS, OUTBOX, AuditEntry, OutboxMessage

#: the audit log's action for a paused channel resumed by hand
RESUMED = "outbox.resume"


async def revive_notice(session: AsyncSession, notice_id: int, now: datetime) -> bool:
    """Make one dead notice due again now, its attempts counted afresh; False if it is not
    dead (any more): another press, or a command, came first."""
    o = OUTBOX
    stmt = (
        update(o)
        .where(o.c.id == notice_id, o.c.status == OutboxStatus.DEAD)
        .values(
            status=OutboxStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            lease_until=None,
            claimed_by=None,
        )
    )
    return int((await execute(session, stmt)).rowcount) == 1


async def resume_channel(session: AsyncSession, channel: str, now: datetime) -> bool:
    """End a channel's pause now (its failures are kept, so a new failure pauses it again for
    longer); False if it is not paused."""
    stmt = (
        update(CHANNELS)
        .where(CHANNELS.c.name == channel, CHANNELS.c.paused_until > now)
        .values(paused_until=None)
    )
    return int((await execute(session, stmt)).rowcount) == 1


async def get_notice(session: AsyncSession, notice_id: int) -> OutboxMessage | None:
    return await session.get(OutboxMessage, notice_id)


async def last_done(
    session: AsyncSession, actions: Sequence[str], since: datetime | None = None, limit: int = 50
) -> list[AuditEntry]:
    """The latest audit entries of ``actions`` that succeeded (newest first)."""
    stmt = select(AuditEntry).where(AUDIT.c.action.in_(actions), AUDIT.c.outcome == AuditOutcome.OK)
    if since is not None:
        stmt = stmt.where(AUDIT.c.at >= since)
    found = await session.exec(stmt.order_by(desc(AUDIT.c.id)).limit(limit))  # type: ignore[call-overload]
    return list(found.scalars().all())


async def alert_posted(session: AsyncSession, channel: str, ts: str) -> OutboxMessage | None:
    """The staff alert that Slack message is (posted to ``channel``, answered with ``ts``)."""
    o = OUTBOX
    stmt = (
        select(o.c.id, o.c.addresses)
        .where(o.c.channel == Channel.SLACK, o.c.provider_reply == f"ts:{ts}")
        .order_by(desc(o.c.id))
        .limit(20)
    )
    for row in (await execute(session, stmt)).all():
        if channel in (row.addresses or []):
            return await session.get(OutboxMessage, row.id)
    return None
