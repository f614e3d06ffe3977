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

What each kind does is its handler's: the workflow's in ``scheduler/workflow.py`` (a new kind of
reminder: its handlers in a module of their own, added to ``HANDLERS``), sharing
``scheduler/staff.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.usecases.core import Core
from bot.vocabulary import (
    NoticeKind,
    ReminderKind,
    ReminderStatus,
    parse_subject,
)
from scheduler import progress, staff, workflow, ztp
from scheduler.staff import Handler
from store import reminders
from store.db import Session

log = logging.getLogger(__name__)


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
                        skipped = await handler(self.core, s, row, about, now)
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
        await staff.alert(
            self.core,
            s,
            f"reminder_failed/{a.id}",
            NoticeKind.REMINDER_FAILED,
            None,
            {
                "reminder": a.kind,
                "subject": a.subject,
                "due_at": staff.local(self.core, a.due_at),
                "error": error[:500],
                "attempts": a.number,
            },
        )


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


#: what each kind of reminder does when it falls due
HANDLERS: dict[ReminderKind, Handler] = {
    **workflow.HANDLERS,
    **progress.HANDLERS,
    **ztp.HANDLERS,
}
