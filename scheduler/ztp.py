"""What a zero-tolerance case's reminders do when they fall due: at the investigation deadline
(48 h by default), if no investigation is recorded, an urgent staff alert; at the action-plan
deadline (72 h), if no action plan is recorded, the same, repeated daily until one is (or the
case is closed). A closed case cancels its reminders (``bot.usecases.ztp.update``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot import zero_tolerance as zt
from bot.usecases import ztp
from bot.usecases.core import Core
from bot.vocabulary import NoticeKind, ReminderKind, ZtpSubject
from scheduler import staff
from scheduler.staff import Handler
from store import registry, reminders
from store.db import Session
from store.models import Reminder

#: how often staff are reminded of a case still without an action plan, once it is late
AGAIN = timedelta(days=1)


async def _deadline(
    core: Core, s: Session, row: Reminder, subject: ZtpSubject, now: datetime
) -> str | None:
    kind = ReminderKind(row.kind)
    deadline = ztp.DEADLINE_OF[kind]
    case = await ztp.case_of(core, s, subject.case_id)
    if case is None:
        return "the case is gone"
    if not zt.overdue(case.status, deadline):
        return f"the case is {case.status_word}"
    factory = await registry.get_factory(s, case.factory_id)
    missed: datetime = getattr(case.deadlines, deadline)
    await staff.alert(
        core,
        s,
        f"{subject}/{deadline}/{row.id}",
        NoticeKind.ZTP_DEADLINE,
        factory,
        {
            "urgent": True,
            "deadline": deadline,
            "case": {
                "id": case.id,
                "code": case.code,
                "issue": case.issue,
                "status": case.status_word,
                "assessed_on": case.assessed_on.isoformat() if case.assessed_on else None,
                "by_hand": case.by_hand,
            },
            "opened_at": staff.local(core, case.opened_at),
            "due_at": staff.local(core, missed),
            "late_again": row.due_at > missed,
            "authorities": list(core.country(factory.country if factory else None).ztp.emails),
        },
    )
    if kind is ReminderKind.ZTP_ACTION_PLAN:
        due = max(row.due_at + AGAIN, now + AGAIN)
        await reminders.add_reminders(s, [reminders.reminder(kind, subject, due, now)])
    return None


HANDLERS: dict[ReminderKind, Handler] = {
    ReminderKind.ZTP_INVESTIGATION: _deadline,
    ReminderKind.ZTP_ACTION_PLAN: _deadline,
}
