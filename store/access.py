"""Who may do what (granted roles), what they did (the audit log), and the Slack requests
already served (a replayed one is refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.roles import RoleLevel
from store.db import Database, execute
from store.models import ROLES, SLACK_REQUESTS, AuditEntry, Role, SlackRequest


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


async def first_time(
    db: Database, signature: str, now: datetime, *, forget_before: datetime | None
) -> bool:
    """Record a served request's signature, in its own transaction; False if it was already
    recorded (a replay). With ``forget_before``, signatures older than that are dropped too."""
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
