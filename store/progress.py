"""Progress reports (Progress Report One: what a factory reports it fixed of an assessment's
issues), the assessment reports' dates they are due after, and the reminders about them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.remediation import Report
from bot.vocabulary import AssessmentSubject, ReminderKind, ReminderStatus, parse_subject
from store.bulk import CHUNK, chunks
from store.db import execute
from store.models import ASSESSMENTS, PROGRESS_REPORTS, REMINDERS, Assessment, ProgressReport

#: the reminders of Progress Report One
KINDS = (ReminderKind.PROGRESS_DUE, ReminderKind.PROGRESS_OVERDUE)


async def add_report(session: AsyncSession, report: ProgressReport) -> ProgressReport:
    """Record a progress report; its id is set."""
    session.add(report)
    await session.flush()
    return report


def as_report(row: Any) -> Report:
    return Report(row.assessment_id, row.reported_on, frozenset(row.fixed), row.id)


async def reports(session: AsyncSession, factory_ids: Sequence[str]) -> dict[str, list[Report]]:
    """The progress reports of these factories, oldest first."""
    p = PROGRESS_REPORTS
    found: dict[str, list[Report]] = defaultdict(list)
    for part in chunks(list(factory_ids)):
        stmt = (
            select(p.c.id, p.c.factory_id, p.c.assessment_id, p.c.reported_on, p.c.fixed)
            .where(p.c.factory_id.in_(part))
            .order_by(p.c.reported_on, p.c.id)
        )
        for row in (await execute(session, stmt)).all():
            found[row.factory_id].append(as_report(row))
    return dict(found)


async def report_dates(
    session: AsyncSession, factory_ids: Sequence[str], since: date | None = None
) -> dict[str, dict[int, date | None]]:
    """factory → {assessment id: its report's date (None: the assessment's own)} of the live
    assessments of these factories — with ``since``, only those whose report (or, without
    one, the assessment) is dated on or after it, the only ones whose progress report can
    still be awaited. Many factories (an import) are read in one scan."""
    a = ASSESSMENTS
    when = func.coalesce(a.c.report_on, a.c.assessed_on)
    wanted: set[str] | None = None
    parts: Iterable[Sequence[str] | None] = chunks(list(factory_ids))
    if len(factory_ids) > CHUNK:
        parts, wanted = [None], set(factory_ids)
    found: dict[str, dict[int, date | None]] = defaultdict(dict)
    for part in parts:
        stmt = select(a.c.id, a.c.factory_id, a.c.report_on).where(a.c.withdrawn_at.is_(None))
        if since is not None:
            stmt = stmt.where(when >= since)
        else:
            stmt = stmt.where(a.c.report_on.is_not(None))
        if part is not None:
            stmt = stmt.where(a.c.factory_id.in_(part))
        for row in (await execute(session, stmt)).all():
            if wanted is None or row.factory_id in wanted:
                found[row.factory_id][row.id] = row.report_on
    return dict(found)


# --- the reminders ------------------------------------------------------------------------------


async def pending_reminders(
    session: AsyncSession, factory_ids: Sequence[str]
) -> dict[str, list[Row[Any]]]:
    """factory → the pending reminders of its assessments' progress reports (withdrawn ones
    too): rows of ``id``, ``kind``, ``subject``, ``due_at`` and ``assessment_id``. There are
    few (one or two per factory recently assessed): read all, then their assessments."""
    r = REMINDERS
    stmt = select(r.c.id, r.c.kind, r.c.subject, r.c.due_at).where(
        r.c.kind.in_(KINDS), r.c.status == ReminderStatus.PENDING
    )
    rows = list((await execute(session, stmt)).all())
    if not rows:
        return {}
    about: dict[int, int] = {}
    for row in rows:
        subject = parse_subject(row.subject)
        if isinstance(subject, AssessmentSubject):
            about[row.id] = subject.assessment_id
    owners: dict[int, str] = {}
    for part in chunks(sorted(set(about.values()))):
        stmt = select(ASSESSMENTS.c.id, ASSESSMENTS.c.factory_id).where(ASSESSMENTS.c.id.in_(part))
        owners.update((x.id, x.factory_id) for x in (await execute(session, stmt)).all())
    wanted = set(factory_ids)
    found: dict[str, list[Row[Any]]] = defaultdict(list)
    for row in rows:
        owner = owners.get(about.get(row.id, -1))
        if owner in wanted:
            found[owner].append(row)
    return dict(found)


async def cancel_reminders(session: AsyncSession, ids: Sequence[int], note: str) -> None:
    """Cancel these pending reminders, saying why."""
    for part in chunks(list(ids)):
        await execute(
            session,
            update(REMINDERS)
            .where(REMINDERS.c.id.in_(part), REMINDERS.c.status == ReminderStatus.PENDING)
            .values(status=ReminderStatus.CANCELLED, note=note[:300]),
        )


async def reminders_about(session: AsyncSession, subjects: Sequence[str]) -> list[Row[Any]]:
    """Every reminder of Progress Report One about these subjects, whatever its status: rows
    of ``id``, ``kind``, ``subject``, ``due_at`` and ``status``."""
    r = REMINDERS
    found: list[Row[Any]] = []
    for part in chunks(sorted(set(subjects))):
        stmt = select(r.c.id, r.c.kind, r.c.subject, r.c.due_at, r.c.status).where(
            r.c.kind.in_(KINDS), r.c.subject.in_(part)
        )
        found += list((await execute(session, stmt)).all())
    return found


async def assessment(session: AsyncSession, assessment_id: int) -> Assessment | None:
    """An assessment by id (withdrawn ones too)."""
    return await session.get(Assessment, assessment_id)
