"""The rules each country's stored snapshots were derived with, as fingerprints: when the
configuration changes a country's rules, its factories are re-evaluated at start."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, text
from sqlmodel.ext.asyncio.session import AsyncSession

from store.bulk import insert_rows
from store.db import execute
from store.models import COUNTRY_RULES

#: pg_advisory_xact_lock key: "pnc_rules"
_RULES_LOCK = 0x706E635F72756C


async def fingerprints(session: AsyncSession) -> dict[str, str]:
    """country → fingerprint of the rules its snapshots were derived with. On PostgreSQL,
    replicas starting together take turns (the lock lasts until the transaction ends)."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await execute(session, text("SELECT pg_advisory_xact_lock(:k)").bindparams(k=_RULES_LOCK))
    rows = await execute(session, select(COUNTRY_RULES))
    return {r.country: r.fingerprint for r in rows}


async def set_fingerprints(
    session: AsyncSession, fingerprints: dict[str, str], now: datetime
) -> None:
    t = COUNTRY_RULES
    await execute(session, delete(t).where(t.c.country.in_(list(fingerprints))))
    await insert_rows(
        session,
        t,
        [{"country": c, "fingerprint": f, "updated_at": now} for c, f in fingerprints.items()],
    )
