"""What the workflow's reminders do when they fall due: the buyer call's agenda and lists, the
readmission review and the unannounced visit, the stakeholder meeting, the end of a service
cycle. Each handler returns None, or why the reminder was skipped (its subject no longer needs
it); the runner (``scheduler.reminders``) claims, retries and records."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot import agenda, policy
from bot.usecases import calls, follow_ups, inspectorate, progress
from bot.usecases.core import Core
from bot.vocabulary import (
    ApplicationSubject,
    CallSubject,
    CycleEndSubject,
    FollowUpSubject,
    NoticeKind,
    ReminderKind,
    Subject,
)
from scheduler import staff
from scheduler.staff import Handler
from store import history, registry, reminders
from store.db import Session
from store.models import Reminder

log = logging.getLogger(__name__)


async def _again(
    s: Session, row: Reminder, subject: Subject, interval: timedelta, now: datetime
) -> None:
    """Schedule the next occurrence of a repeating reminder: ``interval`` after this one was
    due, or after now if that is already past (a reminder sent late does not bunch up)."""
    due = max(row.due_at + interval, now + interval)
    await reminders.add_reminders(
        s, [reminders.reminder(ReminderKind(row.kind), subject, due, now)]
    )


async def _buyer_call(
    core: Core, s: Session, row: Reminder, subject: CallSubject, now: datetime
) -> str | None:
    call = await reminders.get_call(s, subject.call_id)
    if call is None or call.removed_at is not None:
        return "the call was removed"
    countries = core.countries
    rows = await reminders.agenda(
        s,
        {code: c.rules.counted_kinds for code, c in countries.items()},
        countries.default.rules.counted_kinds,
    )
    issues = await reminders.last_assessments(s, sorted({(r.id, r.last_on) for r in rows}))
    tracked = await progress.remediations(core, s, sorted({r.id for r in rows}))
    planned, warnings = agenda.buyer_call(
        subject,
        staff.local(core, call.held_at),
        rows,
        issues,
        core.countries,
        core.settings.staff_channel,
        {fid: r.counts for fid, r in tracked.items() if r.issues},
    )
    for warning in warnings:
        log.warning("%s", warning)
    await core.enqueue(s, planned)
    if call.series_id is not None:  # a series goes on: its next occurrence is written
        await calls.plan_ahead(core, s, call.series_id)
    return None


async def _readmission_review(
    core: Core,
    s: Session,
    row: Reminder,
    subject: ApplicationSubject,
    now: datetime,
) -> str | None:
    application = await history.get_application(s, subject.application_id)
    if application is None or application.decided_on is not None:
        return "the application was decided"
    factory = await registry.get_factory(s, application.factory_id)
    days = (core.today() - application.applied_on).days
    await staff.alert(
        core,
        s,
        f"{subject}/review/{row.id}",
        NoticeKind.READMISSION_REVIEW_REMINDER,
        factory,
        {
            "applied_on": application.applied_on.isoformat(),
            "days_open": days,
            "evidence": list(application.evidence),
            "reports": list(application.inspectorate_reports),
            "visit_on": application.unannounced_on.isoformat()
            if application.unannounced_on
            else None,
            **await inspectorate.review_facts(core, s, factory),
            "remediation": (await progress.remediation_of(core, s, factory)).to_json()
            if factory
            else None,
        },
    )
    every = timedelta(days=core.settings.readmission_reminder_days)
    await _again(s, row, subject, every, now)
    return None


async def _unannounced_visit(
    core: Core,
    s: Session,
    row: Reminder,
    subject: ApplicationSubject,
    now: datetime,
) -> str | None:
    application = await history.get_application(s, subject.application_id)
    if application is None or application.decided_on is not None:
        return "the application was decided"
    if application.unannounced_on is None:
        return "no visit is scheduled"
    factory = await registry.get_factory(s, application.factory_id)
    await staff.alert(
        core,
        s,
        f"{subject}/visit/{row.id}",
        NoticeKind.UNANNOUNCED_VISIT_REMINDER,
        factory,
        {"visit_on": application.unannounced_on.isoformat()},
    )
    return None


async def _stakeholder_meeting(
    core: Core, s: Session, row: Reminder, subject: FollowUpSubject, now: datetime
) -> str | None:
    follow_up = await reminders.get_follow_up(s, subject.follow_up_id)
    if follow_up is None or follow_up.closed_on is not None:
        return "the meeting was held"
    factory = await registry.get_factory(s, follow_up.factory_id)
    event = await history.get_event(s, follow_up.event_id)
    buyers = (await registry.subscriber_parties(s, [follow_up.factory_id])).get(
        follow_up.factory_id, []
    )
    await staff.alert(
        core,
        s,
        f"{subject}/meeting/{row.id}",
        NoticeKind.STAKEHOLDER_MEETING_REMINDER,
        factory,
        {
            "designated_on": event.occurred_on.isoformat() if event else None,
            "buyers": [b.name for b in buyers],
        },
    )
    await _again(s, row, subject, follow_ups.MEETING_EVERY, now)
    return None


async def _cycle_end(
    core: Core, s: Session, row: Reminder, subject: CycleEndSubject, now: datetime
) -> str | None:
    factory = await registry.get_factory(s, subject.factory_id)
    if factory is None or factory.cycle_end != subject.day:
        return "the service cycle's end changed"
    if factory.state not in policy.DESIGNATED_STATES:
        return "the factory is no longer designated"
    await staff.alert(
        core,
        s,
        f"{subject}/ended",
        NoticeKind.CYCLE_END_NOTICE,
        factory,
        {"cycle_end": subject.day.isoformat()},
    )
    return None


HANDLERS: dict[ReminderKind, Handler] = {
    ReminderKind.BUYER_CALL: _buyer_call,
    ReminderKind.READMISSION_REVIEW: _readmission_review,
    ReminderKind.UNANNOUNCED_VISIT: _unannounced_visit,
    ReminderKind.STAKEHOLDER_MEETING: _stakeholder_meeting,
    ReminderKind.CYCLE_END: _cycle_end,
}
