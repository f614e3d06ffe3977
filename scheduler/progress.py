"""What the reminders of Progress Report One do when they fall due: the factory's reminder
email (its language, with English below), and the staff alert once the report is overdue.
Each is skipped when its assessment is no longer the one tracked (withdrawn, or a later
counted assessment came) or the report was recorded meanwhile."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot import notices
from bot.remediation import Remediation
from bot.usecases import progress
from bot.usecases.core import Core
from bot.vocabulary import AssessmentSubject, Channel, NoticeKind, Recipient, ReminderKind
from scheduler import staff
from scheduler.staff import Handler
from store import progress as progress_rows
from store import registry
from store.db import Session
from store.models import Factory, Reminder


async def _standing(
    core: Core, s: Session, subject: AssessmentSubject
) -> tuple[Factory | None, Remediation | None, str | None]:
    """The factory and its remediation, or why the reminder is no longer wanted."""
    row = await progress_rows.assessment(s, subject.assessment_id)
    if row is None or row.withdrawn_at is not None:
        return None, None, "the assessment was withdrawn"
    factory = await registry.get_factory(s, row.factory_id)
    if factory is None:
        return None, None, "the factory is no longer registered"
    now = await progress.remediation_of(core, s, factory)
    if now.tracked is None or now.tracked.id != subject.assessment_id:
        return None, None, "a later assessment is tracked"
    if now.report is not None:
        return None, None, "the progress report was recorded"
    return factory, now, None


def context(core: Core, factory: Factory, r: Remediation) -> dict[str, Any]:
    """What the reminder and the overdue alert say."""
    assert r.tracked is not None and r.due_on is not None
    country = progress.country_of(core, factory.country)
    return {
        "factory": {"id": factory.id, "name": factory.name},
        "country": {"code": country.code, "name": country.name},
        "assessed_on": r.tracked.assessed_on.isoformat(),
        "report_on": r.tracked.report_date.isoformat(),
        "due_on": r.due_on.isoformat(),
        "days_left": (r.due_on - core.today()).days,
        "issues": notices.issues(sorted(r.tracked.nc_issues), country.catalogue),
    }


async def _due(
    core: Core, s: Session, row: Reminder, subject: AssessmentSubject, now: datetime
) -> str | None:
    factory, r, why = await _standing(core, s, subject)
    if factory is None or r is None:
        return why
    if not factory.emails:
        return "the factory has no email address"
    country = progress.country_of(core, factory.country)
    notice = notices.Notice(
        key=f"{subject}/progress/reminder/{row.id}",
        kind=NoticeKind.PROGRESS_REPORT_REMINDER,
        channel=Channel.EMAIL,
        recipient_type=Recipient.FACTORY,
        recipient_id=factory.id,
        recipient_name=factory.name,
        addresses=tuple(factory.emails),
        language=factory.language or country.language,
        factory_id=factory.id,
        payload={**context(core, factory, r), "recipient": Recipient.FACTORY.value},
    )
    await core.enqueue(s, [notice])
    return None


async def _overdue(
    core: Core, s: Session, row: Reminder, subject: AssessmentSubject, now: datetime
) -> str | None:
    factory, r, why = await _standing(core, s, subject)
    if factory is None or r is None:
        return why
    await staff.alert(
        core,
        s,
        f"{subject}/progress/overdue/{row.id}",
        NoticeKind.PROGRESS_REPORT_OVERDUE,
        factory,
        {**context(core, factory, r), "emails": bool(factory.emails)},
    )
    return None


HANDLERS: dict[ReminderKind, Handler] = {
    ReminderKind.PROGRESS_DUE: _due,
    ReminderKind.PROGRESS_OVERDUE: _overdue,
}
