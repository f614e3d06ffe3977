"""Sending reminders when they fall due.

Each batch is claimed and handled in one transaction: the due rows are locked
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so replicas take different ones; SQLite has one
writer), each handler checks that its subject still needs it (a call removed, an application
decided, a meeting held: the reminder is skipped), writes its notices to the outbox, schedules
the next occurrence of a recurring reminder (or, for a call of a quarterly series, the series'
next call, ``calls.plan_ahead``), and the reminder is marked done. If the process dies before
the commit, nothing of it happened and the next poll takes it again: a reminder is neither lost
nor repeated.

Each handler runs in a savepoint: one that fails (the database went away, a bug, data it cannot
read) has its own work undone and is logged; the other reminders of the batch go ahead. It stays
pending and is tried again with backoff (``Retries``: after a minute, then doubling, at most an
hour apart; its ``due_at`` is kept, ``retry_at`` says when). Once it succeeds it is done, and a
repeating one (a readmission review, a stakeholder meeting) schedules its next occurrence as
usual: the series goes on. After ten failed attempts (about four hours) it is marked ``failed``
with the last error and staff are alerted once, to follow it up by hand. One-off reminders (a
buyer call's agenda, a visit, a cycle's end) are retried the same way: what fails them is as
likely to pass. A reminder the runner cannot read at all (an unknown kind, a malformed subject)
is marked ``failed`` at once: no retry will fix it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot import agenda, notices, policy
from bot.usecases import access, calls, follow_ups, inspectorate
from bot.usecases.core import Core
from bot.vocabulary import (
    ApplicationSubject,
    CallSubject,
    CycleEndSubject,
    FollowUpSubject,
    NoticeKind,
    ReminderKind,
    ReminderStatus,
    Subject,
    parse_subject,
)
from store import history, registry, reminders
from store.db import Session
from store.models import Factory, Reminder

log = logging.getLogger(__name__)

#: what a reminder does when it falls due: None, or why it was skipped
Handler = Callable[["ReminderRunner", Session, Reminder, Any, datetime], Awaitable[str | None]]


@dataclass(frozen=True)
class Retries:
    """How a reminder whose handling failed is tried again, and for how long."""

    max_attempts: int = 10
    first_retry: timedelta = timedelta(minutes=1)
    max_retry: timedelta = timedelta(hours=1)

    def backoff(self, attempts: int) -> timedelta:
        """The wait after ``attempts`` failed attempts: doubling from the first, capped."""
        return min(self.max_retry, self.first_retry * (1 << min(max(attempts - 1, 0), 30)))


class ReminderRunner:
    def __init__(self, core: Core, *, batch: int = 20, retries: Retries | None = None) -> None:
        self.core = core
        self.batch = batch
        self.retries = retries or Retries()
        self._wake = asyncio.Event()
        self._stopping = False
        core.wakeups.reminders = self.wake

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self, safety_interval: float = 60.0) -> None:
        """Send what is due whenever woken (by the clock, or by a commit that wrote reminders)."""
        while not self._stopping:
            self._wake.clear()  # before the round: a wake-up during it brings another round
            try:
                await self.run_due()
            except Exception:
                log.exception("reminder round failed")
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), safety_interval)

    async def run_due(self) -> int:
        """Handle every reminder due now; returns how many."""
        total = 0
        while not self._stopping and (handled := await self._batch()):
            total += handled
        return total

    async def _batch(self) -> int:
        now = self.core.clock()
        async with self.core.db.transaction(write=True) as s:
            due = await reminders.claim_due(s, now, self.batch)
            for row in due:
                assert row.id is not None
                attempt = Attempt(row.id, row.kind, row.subject, row.due_at, row.attempts + 1)
                try:
                    handler = HANDLERS[ReminderKind(row.kind)]
                    about = parse_subject(row.subject)
                except (KeyError, ValueError) as exc:  # unreadable: no retry will fix it
                    await self._failed(s, attempt, exc, now, final=True)
                    continue
                try:
                    async with s.begin_nested():  # one reminder's failure undoes only its work
                        skipped = await handler(self, s, row, about, now)
                except Exception as exc:
                    final = attempt.number >= self.retries.max_attempts
                    await self._failed(s, attempt, exc, now, final=final)
                    continue
                row.status = ReminderStatus.SKIPPED if skipped else ReminderStatus.DONE
                row.done_at, row.note = now, (skipped or None)
                s.add(row)
                log.info("reminder %s %s %s: %s", row.id, row.kind, row.subject, row.status)
        return len(due)

    async def _failed(
        self, s: Session, a: Attempt, exc: Exception, now: datetime, *, final: bool
    ) -> None:
        """A failed attempt: tried again later, or (``final``) marked failed and staff told
        (once: it is not tried again)."""
        error = f"{type(exc).__name__}: {exc}"
        if not final:
            at = now + self.retries.backoff(a.number)
            log.warning(
                "reminder %s %s %s failed (attempt %d); trying again at %s",
                a.id,
                a.kind,
                a.subject,
                a.number,
                at.isoformat(),
                exc_info=exc,
            )
            await reminders.retry_later(
                s, a.id, at, f"attempt {a.number} failed: {error}", a.number
            )
            return
        log.error(
            "reminder %s %s %s failed (attempt %d): set aside",
            a.id,
            a.kind,
            a.subject,
            a.number,
            exc_info=exc,
        )
        tries = f"{a.number} attempts" if a.number > 1 else "1 attempt"
        await reminders.mark_failed(s, a.id, now, f"failed after {tries}: {error}", a.number)
        await self.staff(
            s,
            f"reminder_failed/{a.id}",
            NoticeKind.REMINDER_FAILED,
            None,
            {
                "reminder": a.kind,
                "subject": a.subject,
                "due_at": self.local(a.due_at),
                "error": error[:500],
                "attempts": a.number,
            },
        )

    # --- helpers for the handlers ------------------------------------------------------------

    async def staff(
        self,
        s: Session,
        key: str,
        kind: NoticeKind,
        factory: Factory | None,
        context: dict[str, Any],
    ) -> None:
        country = self.core.countries.get(factory.country) if factory else None
        notice = notices.staff_alert(
            key,
            kind,
            country,
            self.core.settings.staff_channel,
            {
                "factory": {"id": factory.id, "name": factory.name} if factory else None,
                "managers": await access.managers(self.core, s),
                **context,
            },
            factory_id=factory.id if factory else None,
        )
        if notice is None:
            log.warning("no staff channel for reminder %s: set PNC_STAFF_CHANNEL", key)
            return
        await self.core.enqueue(s, [notice])

    def local(self, moment: datetime) -> str:
        """A moment as people read it: local time, with the zone named."""
        settings = self.core.settings
        return f"{moment.astimezone(settings.tz).strftime('%Y-%m-%d %H:%M')} ({settings.timezone})"


@dataclass(frozen=True)
class Attempt:
    """What is known of a reminder being tried, read before its handler runs (a failed
    handler's savepoint is rolled back, and the row with it)."""

    id: int
    kind: str
    subject: str
    due_at: datetime
    #: this attempt's number, from 1
    number: int


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
    runner: ReminderRunner, s: Session, row: Reminder, subject: CallSubject, now: datetime
) -> str | None:
    call = await reminders.get_call(s, subject.call_id)
    if call is None or call.removed_at is not None:
        return "the call was removed"
    countries = runner.core.countries
    rows = await reminders.agenda(
        s,
        {code: c.rules.counted_kinds for code, c in countries.items()},
        countries.default.rules.counted_kinds,
    )
    issues = await reminders.last_assessments(s, sorted({(r.id, r.last_on) for r in rows}))
    planned, warnings = agenda.buyer_call(
        subject,
        runner.local(call.held_at),
        rows,
        issues,
        runner.core.countries,
        runner.core.settings.staff_channel,
    )
    for warning in warnings:
        log.warning("%s", warning)
    await runner.core.enqueue(s, planned)
    if call.series_id is not None:  # a series goes on: its next occurrence is written
        await calls.plan_ahead(runner.core, s, call.series_id)
    return None


async def _readmission_review(
    runner: ReminderRunner,
    s: Session,
    row: Reminder,
    subject: ApplicationSubject,
    now: datetime,
) -> str | None:
    application = await history.get_application(s, subject.application_id)
    if application is None or application.decided_on is not None:
        return "the application was decided"
    factory = await registry.get_factory(s, application.factory_id)
    days = (runner.core.today() - application.applied_on).days
    await runner.staff(
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
            **await inspectorate.review_facts(runner.core, s, factory),
        },
    )
    every = timedelta(days=runner.core.settings.readmission_reminder_days)
    await _again(s, row, subject, every, now)
    return None


async def _unannounced_visit(
    runner: ReminderRunner,
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
    await runner.staff(
        s,
        f"{subject}/visit/{row.id}",
        NoticeKind.UNANNOUNCED_VISIT_REMINDER,
        factory,
        {"visit_on": application.unannounced_on.isoformat()},
    )
    return None


async def _stakeholder_meeting(
    runner: ReminderRunner, s: Session, row: Reminder, subject: FollowUpSubject, now: datetime
) -> str | None:
    follow_up = await reminders.get_follow_up(s, subject.follow_up_id)
    if follow_up is None or follow_up.closed_on is not None:
        return "the meeting was held"
    factory = await registry.get_factory(s, follow_up.factory_id)
    event = await history.get_event(s, follow_up.event_id)
    buyers = (await registry.subscriber_parties(s, [follow_up.factory_id])).get(
        follow_up.factory_id, []
    )
    await runner.staff(
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
    runner: ReminderRunner, s: Session, row: Reminder, subject: CycleEndSubject, now: datetime
) -> str | None:
    factory = await registry.get_factory(s, subject.factory_id)
    if factory is None or factory.cycle_end != subject.day:
        return "the service cycle's end changed"
    if factory.state not in policy.DESIGNATED_STATES:
        return "the factory is no longer designated"
    await runner.staff(
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
