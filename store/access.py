"""Who may do what (granted roles), what they did (the audit log), and the Slack requests
already served (a replayed one is refused)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.roles import RoleLevel
from bot.vocabulary import AuditOutcome
from store.bulk import chunks
from store.db import Database, dialect_insert, execute
from store.hot import Query
from store.models import AUDIT, ROLES, SLACK_REQUESTS, AuditEntry, Role, SlackRequest

#: the audit log's action for staff sending dead notices again (``outbox retry``)
RETRIED = "outbox.retry"


async def get_role(session: AsyncSession, user_id: str) -> Role | None:
    return await session.get(Role, user_id)


async def managers(session: AsyncSession) -> list[str]:
    """Everyone granted the manager role, by id."""
    manager = RoleLevel.MANAGER.label
    stmt = select(ROLES.c.user_id).where(ROLES.c.role == manager).order_by(ROLES.c.user_id)
    return list((await execute(session, stmt)).scalars().all())


def add_audit_entry(
    session: AsyncSession,
    *,
    at: datetime,
    actor: str,
    source: str,
    action: str,
    subject: str | None,
    outcome: str,
    detail: dict[str, Any],
) -> None:
    """One entry of the audit log, written with the transaction it records."""
    session.add(
        AuditEntry(
            at=at,
            actor=actor,
            source=source,
            action=action,
            subject=subject,
            outcome=outcome,
            detail=detail,
        )
    )


async def add_audit_entries(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Entries of the audit log (dicts of its columns but the id), in one statement."""
    if rows:
        await conn.execute(AUDIT.insert(), list(rows))


@cache
def _first_time() -> Query:
    """A signature recorded unless it already was (PostgreSQL); returns it when it was new."""
    return Query(
        "first_time",
        dialect_insert("postgresql")(SLACK_REQUESTS)
        .values(signature=bindparam("signature"), seen_at=bindparam("at"))
        .on_conflict_do_nothing()
        .returning(SLACK_REQUESTS.c.signature),
    )


async def first_time(
    db: Database, signature: str, now: datetime, *, forget_before: datetime | None
) -> bool:
    """Record a served request's signature, in its own transaction; False if it was already
    recorded (a replay). With ``forget_before``, signatures older than that are dropped too.
    Without, on PostgreSQL, it is one ``INSERT … ON CONFLICT DO NOTHING`` on the hot path
    (``store.hot``): every request served makes it."""
    if forget_before is None and db.is_postgresql:
        values = {"signature": signature[:100], "at": now}
        return bool(await db.hot.statement(_first_time(), values))
    try:
        async with db.transaction(write=True) as s:
            s.add(SlackRequest(signature=signature[:100], seen_at=now))
            if forget_before is not None:
                await execute(
                    s, delete(SLACK_REQUESTS).where(SLACK_REQUESTS.c.seen_at < forget_before)
                )
    except IntegrityError:
        return False
    return True


async def remember_requests(
    db: Database, requests: Sequence[tuple[str, datetime]], *, forget_before: datetime | None
) -> None:
    """Record many served requests' signatures (and when) in one transaction, skipping any
    already recorded; with ``forget_before``, signatures older than that are dropped too."""
    insert = dialect_insert(db.url.get_backend_name())
    async with db.transaction(write=True) as s:
        for batch in chunks(requests):
            rows = [{"signature": sig[:100], "seen_at": at} for sig, at in batch]
            stmt = insert(SLACK_REQUESTS).values(rows).on_conflict_do_nothing()
            await execute(s, stmt)
        if forget_before is not None:
            await execute(s, delete(SLACK_REQUESTS).where(SLACK_REQUESTS.c.seen_at < forget_before))


async def recent_requests(db: Database, *, since: datetime) -> dict[str, datetime]:
    """The signatures of the requests served since ``since``, with when."""
    stmt = select(SLACK_REQUESTS.c.signature, SLACK_REQUESTS.c.seen_at).where(
        SLACK_REQUESTS.c.seen_at >= since
    )
    async with db.transaction() as s:
        return {row.signature: row.seen_at for row in (await execute(s, stmt)).all()}


async def retried_since(session: AsyncSession, since: datetime) -> bool:
    """Whether staff retried notices (``outbox retry``, in the audit log) at or after ``since``;
    a range of the indexed time, so it reads only the entries since then."""
    stmt = (
        select(AUDIT.c.id)
        .where(AUDIT.c.at >= since, AUDIT.c.action == RETRIED, AUDIT.c.outcome == AuditOutcome.OK)
        .limit(1)
    )
    return (await execute(session, stmt)).first() is not None
