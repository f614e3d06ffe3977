"""The Labour Inspectorate's visits to designated factories, and the improvement reports the
factories sent in response (FAQ: an applicant for readmission submits one for each visit)."""

from __future__ import annotations

from datetime import date

from sqlmodel import col
from sqlmodel import select as select_rows
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import InspectorateVisit


async def visits(session: AsyncSession, factory_id: str) -> list[InspectorateVisit]:
    """A factory's recorded visits, oldest first."""
    stmt = (
        select_rows(InspectorateVisit)
        .where(col(InspectorateVisit.factory_id) == factory_id)
        .order_by(col(InspectorateVisit.visited_on), col(InspectorateVisit.id))
    )
    return list((await session.exec(stmt)).all())


async def visit_on(session: AsyncSession, factory_id: str, day: date) -> InspectorateVisit | None:
    """The visit recorded to a factory on ``day``, if any."""
    stmt = select_rows(InspectorateVisit).where(
        col(InspectorateVisit.factory_id) == factory_id, col(InspectorateVisit.visited_on) == day
    )
    return (await session.exec(stmt)).first()


async def unanswered(
    session: AsyncSession, factory_id: str, since: date
) -> list[InspectorateVisit]:
    """The visits from ``since`` on that have no improvement report yet, oldest first."""
    stmt = (
        select_rows(InspectorateVisit)
        .where(
            col(InspectorateVisit.factory_id) == factory_id,
            col(InspectorateVisit.visited_on) >= since,
            col(InspectorateVisit.report).is_(None),
        )
        .order_by(col(InspectorateVisit.visited_on), col(InspectorateVisit.id))
    )
    return list((await session.exec(stmt)).all())


async def add_visit(session: AsyncSession, visit: InspectorateVisit) -> InspectorateVisit:
    """Record a visit; its id is set."""
    session.add(visit)
    await session.flush()
    return visit
