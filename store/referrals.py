"""The Labour Inspectorate's referrals in the outbox: held while their country has no
Inspectorate address, released once it has one, and their log (the outbox rows of kind
``inspectorate_referral``, each with the designation it is of) — no table of their own."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.vocabulary import NoticeKind, OutboxStatus
from store.db import execute
from store.models import EVENTS, OUTBOX

_REFERRAL = OUTBOX.c.kind == NoticeKind.INSPECTORATE_REFERRAL


async def held_referrals(session: AsyncSession, factory_id: str) -> list[Row[Any]]:
    """The referrals about a factory waiting for an Inspectorate address (id, country, event)."""
    o = OUTBOX
    stmt = (
        select(o.c.id, o.c.recipient_id, o.c.event_id)
        .where(_REFERRAL, o.c.status == OutboxStatus.HELD, o.c.factory_id == factory_id)
        .order_by(o.c.id)
    )
    return list((await execute(session, stmt)).all())


async def held_countries(session: AsyncSession) -> set[str]:
    """The countries (by code) that have referrals waiting for an Inspectorate address."""
    o = OUTBOX
    stmt = (
        select(o.c.recipient_id)
        .where(_REFERRAL, o.c.status == OutboxStatus.HELD)
        .group_by(o.c.recipient_id)
    )
    return set((await execute(session, stmt)).scalars().all())


async def release_referrals(
    session: AsyncSession,
    now: datetime,
    *,
    country: str,
    addresses: Sequence[str],
    language: str,
    recipient_name: str,
    factory_id: str | None = None,
) -> list[tuple[int, str | None]]:
    """Address the held referrals of a country (about ``factory_id``, when given) and make them
    due now, in one statement; returns their ids and factories."""
    o = OUTBOX
    which = [_REFERRAL, o.c.status == OutboxStatus.HELD, o.c.recipient_id == country]
    if factory_id is not None:
        which.append(o.c.factory_id == factory_id)
    stmt = (
        update(o)
        .where(*which)
        .values(
            status=OutboxStatus.PENDING,
            addresses=list(addresses),
            language=language,
            recipient_name=recipient_name[:200],
            next_attempt_at=now,
            last_error=None,
        )
        .returning(o.c.id, o.c.factory_id)
    )
    return [(r.id, r.factory_id) for r in await execute(session, stmt)]


def referral_log_of(factory_id: Any) -> Select[Any]:
    """Every referral about a factory (an id, or a ``bindparam``), oldest first: when it was
    written and sent, to whom, its status and last error, and the designation (event) it is
    of."""
    o, e = OUTBOX, EVENTS
    return (
        select(
            o.c.id,
            o.c.status,
            o.c.addresses,
            o.c.delivered_to,
            o.c.language,
            o.c.attempts,
            o.c.created_at,
            o.c.sent_at,
            o.c.last_error,
            e.c.occurred_on.label("designated_on"),
            e.c.key.label("event_key"),
            e.c.unsupported_at,
        )
        .select_from(o.outerjoin(e, e.c.id == o.c.event_id))
        .where(_REFERRAL, o.c.factory_id == factory_id)
        .order_by(o.c.created_at, o.c.id)
    )


async def referral_log(session: AsyncSession, factory_id: str) -> list[Row[Any]]:
    """``referral_log_of`` one factory, in the session's transaction."""
    return list((await execute(session, referral_log_of(factory_id))).all())
