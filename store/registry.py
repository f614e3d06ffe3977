"""Factories, buyers and subscriptions: who is assessed and who is told."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, bindparam, case, delete, func, select, update
from sqlmodel import col
from sqlmodel import select as select_rows
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.notices import Party
from bot.policy import State
from bot.suggest import close_matches
from store import bulk
from store.bulk import chunks
from store.db import execute
from store.models import BUYERS, FACTORIES, SUBSCRIPTIONS, Buyer, Factory, Subscription

#: the states of the factories watched (at risk or designated), most urgent first
WATCHED_STATES = (State.PNC, State.READMISSION_REVIEW, State.AT_RISK)


async def get_factory(
    session: AsyncSession, factory_id: str, *, lock: bool = False
) -> Factory | None:
    """The factory, locked against concurrent history changes when ``lock`` (PostgreSQL)."""
    stmt = select_rows(Factory).where(col(Factory.id) == factory_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.exec(stmt)).first()


async def get_buyer(session: AsyncSession, buyer_id: str) -> Buyer | None:
    return await session.get(Buyer, buyer_id)


async def close_factory_ids(session: AsyncSession, value: str) -> list[str]:
    """Factory ids that look like ``value`` (for "did you mean …?")."""
    return close_matches(value, await factory_ids(session))


async def close_buyer_ids(session: AsyncSession, value: str) -> list[str]:
    ids = (await execute(session, select(BUYERS.c.id))).scalars().all()
    return close_matches(value, ids)


async def factory_ids(session: AsyncSession) -> list[str]:
    return list((await execute(session, select(FACTORIES.c.id))).scalars().all())


async def factory_ids_in(session: AsyncSession, countries: Sequence[str]) -> list[str]:
    """The ids of the factories of these countries, sorted."""
    stmt = select(FACTORIES.c.id).where(FACTORIES.c.country.in_(list(countries)))
    return sorted((await execute(session, stmt)).scalars())


async def subscribers(session: AsyncSession, factory_id: str) -> list[Buyer]:
    stmt = (
        select_rows(Buyer)
        .join(Subscription, col(Subscription.buyer_id) == col(Buyer.id))
        .where(col(Subscription.factory_id) == factory_id)
        .order_by(col(Buyer.id))
    )
    return list((await session.exec(stmt)).all())


async def get_subscription(
    session: AsyncSession, buyer_id: str, factory_id: str
) -> Subscription | None:
    return await session.get(Subscription, (buyer_id, factory_id))


async def delete_subscription(session: AsyncSession, buyer_id: str, factory_id: str) -> None:
    await execute(
        session,
        delete(SUBSCRIPTIONS).where(
            SUBSCRIPTIONS.c.buyer_id == buyer_id, SUBSCRIPTIONS.c.factory_id == factory_id
        ),
    )


async def watched_factories(
    session: AsyncSession, country: str | None, limit: int
) -> tuple[list[Row[Any]], int]:
    """Factories at risk or designated (from the state snapshot), most urgent first, and how
    many there are in all."""
    t = FACTORIES
    where: list[ColumnElement[bool]] = [t.c.state.in_(WATCHED_STATES)]
    if country:
        where.append(t.c.country == country)
    urgency = case({s: i for i, s in enumerate(WATCHED_STATES)}, value=t.c.state)
    stmt = (
        select(t.c.id, t.c.name, t.c.country, t.c.state, t.c.streak)
        .where(*where)
        .order_by(urgency, t.c.streak.desc(), t.c.id)
        .limit(limit)
    )
    rows = list((await execute(session, stmt)).all())
    total = (await execute(session, select(func.count()).select_from(t).where(*where))).scalar_one()
    return rows, total


# --- many at a time (imports, re-evaluation) ------------------------------------------------


def locking(session: AsyncSession, stmt: Select[Any]) -> Select[Any]:
    """``stmt`` locking the factory rows it reads (``SELECT … FOR UPDATE`` on PostgreSQL; on
    SQLite the one writer already holds the database). Rows are locked in id order (byte
    order, as Python sorts the chunks), so two transactions locking many factories take them
    in the same order and never deadlock."""
    if session.bind is None or session.bind.dialect.name != "postgresql":
        return stmt
    return stmt.order_by(FACTORIES.c.id.collate("C")).with_for_update()


async def factory_rows(
    session: AsyncSession, ids: Sequence[str] | None = None, *, lock: bool = False
) -> dict[str, Row[Any]]:
    """id → row (all columns) for the given factories, or for all when ``ids`` is None; with
    ``lock``, the given factories are locked as by ``factory_facts``."""
    if ids is None:
        rows = list((await execute(session, select(FACTORIES))).all())
    else:
        rows = []
        for part in chunks(sorted(ids) if lock else list(ids)):
            stmt = select(FACTORIES).where(FACTORIES.c.id.in_(part))
            rows += (await execute(session, locking(session, stmt) if lock else stmt)).all()
    return {r.id: r for r in rows}


async def factory_facts(
    session: AsyncSession, ids: Sequence[str], *, lock: bool = False
) -> dict[str, Row[Any]]:
    """id → (id, country, state, streak) for the given factories. With ``lock`` their rows are
    locked against concurrent history changes (as ``get_factory(lock=True)`` locks one), a
    statement per few hundred factories, before their histories are read."""
    t = FACTORIES
    found: dict[str, Row[Any]] = {}
    for part in chunks(sorted(ids) if lock else list(ids)):
        stmt = select(t.c.id, t.c.country, t.c.state, t.c.streak).where(t.c.id.in_(part))
        found.update(
            (r.id, r) for r in (await execute(session, locking(session, stmt) if lock else stmt))
        )
    return found


async def buyer_rows(session: AsyncSession) -> dict[str, Row[Any]]:
    return {r.id: r for r in (await execute(session, select(BUYERS))).all()}


async def subscription_pairs(session: AsyncSession) -> set[tuple[str, str]]:
    t = SUBSCRIPTIONS
    rows = (await execute(session, select(t.c.buyer_id, t.c.factory_id))).all()
    return {(r.buyer_id, r.factory_id) for r in rows}


async def set_snapshots(session: AsyncSession, snapshots: Sequence[dict[str, Any]]) -> None:
    """Rewrite factories' state/streak snapshots: dicts with id, state and streak."""
    if not snapshots:
        return
    t = FACTORIES
    stmt = (
        update(t)
        .where(t.c.id == bindparam("fid"))
        .values(state=bindparam("state"), streak=bindparam("streak"))
    )
    await execute(
        session,
        stmt,
        [{"fid": s["id"], "state": s["state"], "streak": s["streak"]} for s in snapshots],
    )


# --- as recipients ----------------------------------------------------------------------------


async def factory_parties(
    session: AsyncSession, ids: Sequence[str], known: dict[str, Any] | None = None
) -> dict[str, tuple[Party, date | None]]:
    """Factories as recipients: name, addresses, language, and their service cycle's end;
    ``known`` rows (whole factories) are not read again."""
    rows: dict[str, Any] = {f: r for f, r in (known or {}).items() if f in ids}
    if len(rows) < len(ids):
        rows |= await factory_rows(session, [f for f in ids if f not in rows])
    return {
        fid: (Party(r.id, r.name, tuple(r.emails), r.language), r.cycle_end)
        for fid, r in rows.items()
    }


async def subscriber_parties(session: AsyncSession, ids: Sequence[str]) -> dict[str, list[Party]]:
    """The subscribing buyers of each factory, as recipients."""
    b, sub = BUYERS, SUBSCRIPTIONS
    found: dict[str, list[Party]] = defaultdict(list)
    for part in chunks(list(ids)):
        stmt = (
            select(sub.c.factory_id, b.c.id, b.c.name, b.c.emails)
            .join(b, b.c.id == sub.c.buyer_id)
            .where(sub.c.factory_id.in_(part))
            .order_by(sub.c.factory_id, b.c.id)
        )
        for r in (await execute(session, stmt)).all():
            found[r.factory_id].append(Party(r.id, r.name, tuple(r.emails)))
    return found


# --- imports ----------------------------------------------------------------------------------


async def add_factories(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await bulk.insert_rows(session, FACTORIES, rows)


async def update_factories(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Rewrite factories by id: dicts with ``id`` and the new values."""
    await bulk.update_by_id(session, FACTORIES, rows)


async def add_buyers(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await bulk.insert_rows(session, BUYERS, rows)


async def update_buyers(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await bulk.update_by_id(session, BUYERS, rows)


async def add_subscriptions(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await bulk.insert_rows(session, SUBSCRIPTIONS, rows)
