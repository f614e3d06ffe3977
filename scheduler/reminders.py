"""Sending reminders when they fall due.

Each batch is claimed and handled in one transaction: the due rows are locked
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so replicas take different ones; SQLite has one
writer), each handler checks that its subject still needs it (a call removed, an application
decided, a meeting held: the reminder is skipped), writes its notices to the outbox, schedules
the next occurrence of a recurring reminder, and the reminder is marked done. If the process
dies before the commit, nothing of it happened and the next poll takes it again: a reminder is
neither lost nor repeated.

Each handler runs in a savepoint: one that fails (a bug, data it cannot read) has its own work
undone, is marked ``failed`` with the error, logged, and reported to staff once; the other
reminders of the batch go ahead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import notices, policy
from bot.schedule import reminder
from bot.services import Services
from store import queries
from store.models import BuyerCall, Factory, FollowUp, PncEvent, Readmission, Reminder

log = logging.getLogger(__name__)

Handler = Callable[["ReminderRunner", AsyncSession, Reminder, datetime], Awaitable[str | None]]


class ReminderRunner:
    def __init__(self, services: Services, *, batch: int = 20) -> None:
        self.services = services
        self.batch = batch
        self._wake = asyncio.Event()
        self._stopping = False
        services.on_reminders = self.wake

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
        now = self.services.clock()
        async with self.services.db.transaction(write=True) as s:
            due = await queries.claim_due_reminders(s, now, self.batch)
            for row in due:
                rid, kind, subject, due_at = row.id, row.kind, row.subject, row.due_at
                try:
                    async with s.begin_nested():  # one reminder's failure undoes only its work
                        skipped = await HANDLERS[kind](self, s, row, now)
                except Exception as exc:
                    log.exception("reminder %s %s %s failed", rid, kind, subject)
                    await self._failed(s, rid, kind, subject, due_at, exc, now)
                    continue
                row.status = "skipped" if skipped else "done"
                row.done_at, row.note = now, (skipped or None)
                s.add(row)
                log.info("reminder %s %s %s: %s", rid, kind, subject, row.status)
        return len(due)

    async def _failed(
        self,
        s: AsyncSession,
        rid: int | None,
        kind: str,
        subject: str,
        due_at: datetime,
        exc: Exception,
        now: datetime,
    ) -> None:
        """Mark a reminder whose handler failed, and tell staff (once: it is not tried again)."""
        error = f"{type(exc).__name__}: {exc}"
        await s.exec(
            update(Reminder)
            .where(Reminder.id == rid)  # type: ignore[arg-type]
            .values(status="failed", done_at=now, note=f"failed: {error}"[:300])
        )
        await self.staff(
            s,
            f"reminder_failed/{rid}",
            "reminder_failed",
            None,
            {
                "reminder": kind,
                "subject": subject,
                "due_at": self.local(due_at),
                "error": error[:500],
            },
        )

    # --- helpers for the handlers ------------------------------------------------------------

    async def staff(
        self, s: AsyncSession, key: str, kind: str, factory: Factory | None, context: dict[str, Any]
    ) -> None:
        country = self.services.countries.get(factory.country) if factory else None
        notice = notices.staff_alert(
            key,
            kind,
            country,
            self.services.settings.staff_channel,
            {
                "factory": {"id": factory.id, "name": factory.name} if factory else None,
                "managers": await self.services.managers(s),
                **context,
            },
            factory_id=factory.id if factory else None,
        )
        if notice is None:
            log.warning("no staff channel for reminder %s: set PNC_STAFF_CHANNEL", key)
            return
        await self.services.enqueue(s, [notice])

    def local(self, moment: datetime) -> str:
        """A moment as people read it: local time, with the zone named."""
        settings = self.services.settings
        return f"{moment.astimezone(settings.tz).strftime('%Y-%m-%d %H:%M')} ({settings.timezone})"


def _id(subject: str) -> int:
    return int(subject.split(":")[1])


async def _again(s: AsyncSession, row: Reminder, interval: timedelta, now: datetime) -> None:
    """Schedule the next occurrence of a repeating reminder: ``interval`` after this one was
    due, or after now if that is already past (a reminder sent late does not bunch up)."""
    due = max(row.due_at + interval, now + interval)
    await queries.add_reminders(s, [reminder(row.kind, row.subject, due, now)])


async def _buyer_call(
    runner: ReminderRunner, s: AsyncSession, row: Reminder, now: datetime
) -> str | None:
    call = await s.get(BuyerCall, _id(row.subject))
    if call is None or call.removed_at is not None:
        return "the call was removed"
    countries = runner.services.countries
    factories: dict[str, dict[str, Any]] = {}
    by_buyer: dict[str, dict[str, Any]] = {}
    rows = await queries.agenda(s)
    issues = await queries.last_assessments(s, sorted({(r.id, r.last_on) for r in rows}))
    for r in rows:
        # a country since removed from the configuration: the default country's rules
        consecutive = (countries.get(r.country) or countries.default).rules.consecutive
        factory = factories.setdefault(
            r.id,
            {
                "id": r.id,
                "name": r.name,
                "country": r.country,
                "state": r.state,
                "label": policy.label_for(policy.State(r.state), r.streak, consecutive),
                "last_assessed_on": r.last_on.isoformat() if r.last_on else None,
                "last_nc_count": len(issues.get(r.id, [])),
                "buyers": [],
            },
        )
        if r.buyer_id:
            factory["buyers"].append((r.buyer_name, r.buyer_id))
            buyer = by_buyer.setdefault(
                r.buyer_id,
                {
                    "id": r.buyer_id,
                    "name": r.buyer_name,
                    "emails": tuple(r.buyer_emails or ()),
                    "factories": [],
                },
            )
            buyer["factories"].append(factory)
    held_at = runner.local(call.held_at)
    planned = []
    for buyer in by_buyer.values():  # each buyer: its own factories only, nothing of others
        if not buyer["emails"]:
            log.warning("buyer %s has no email address: no list for the call", buyer["id"])
            continue
        own = [{k: v for k, v in f.items() if k != "buyers"} for f in buyer["factories"]]
        planned.append(
            notices.Notice(
                f"call:{call.id}/email/buyer/{buyer['id']}",
                "buyer_call_reminder",
                notices.EMAIL,
                notices.BUYER,
                buyer["id"],
                buyer["name"],
                buyer["emails"],
                "en",
                None,
                {
                    "recipient": notices.BUYER,
                    "buyer": {"id": buyer["id"], "name": buyer["name"]},
                    "call": {"held_at": held_at},
                    "factories": own,
                    "country": {"code": "", "name": ""},
                },
            )
        )
    # staff: the agenda grouped by buyer, in each staff channel for its countries' factories
    channels: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for factory in factories.values():
        channel = (countries.get(factory["country"]) or countries.default).staff_channel
        channel = channel or runner.services.settings.staff_channel
        if channel:
            channels[channel].append(factory)
    if not channels and runner.services.settings.staff_channel:
        channels[runner.services.settings.staff_channel] = []
    for channel, listed in channels.items():
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for factory in listed:  # grouped by buyer id (two buyers may share a name)
            shown = {k: v for k, v in factory.items() if k != "buyers"}
            for buyer in factory["buyers"] or [("(no subscribing buyer)", "")]:
                groups[buyer].append(shown)
        planned.append(
            notices.Notice(
                f"call:{call.id}/slack/staff/{channel}",
                "buyer_call_agenda",
                notices.SLACK,
                notices.STAFF,
                channel,
                "staff",
                (channel,),
                "en",
                None,
                {
                    "recipient": notices.STAFF,
                    "urgent": False,
                    "call": {"held_at": held_at},
                    "groups": [
                        {"buyer": name, "factories": f} for (name, _), f in sorted(groups.items())
                    ],
                },
            )
        )
    await runner.services.enqueue(s, planned)
    return None


async def _readmission_review(
    runner: ReminderRunner, s: AsyncSession, row: Reminder, now: datetime
) -> str | None:
    application = await s.get(Readmission, _id(row.subject))
    if application is None or application.decided_on is not None:
        return "the application was decided"
    factory = await s.get(Factory, application.factory_id)
    days = (runner.services.today() - application.applied_on).days
    await runner.staff(
        s,
        f"{row.subject}/review/{row.id}",
        "readmission_review_reminder",
        factory,
        {
            "applied_on": application.applied_on.isoformat(),
            "days_open": days,
            "evidence": list(application.evidence),
            "reports": list(application.inspectorate_reports),
            "visit_on": application.unannounced_on.isoformat()
            if application.unannounced_on
            else None,
        },
    )
    await _again(s, row, timedelta(days=runner.services.settings.readmission_reminder_days), now)
    return None


async def _unannounced_visit(
    runner: ReminderRunner, s: AsyncSession, row: Reminder, now: datetime
) -> str | None:
    application = await s.get(Readmission, _id(row.subject))
    if application is None or application.decided_on is not None:
        return "the application was decided"
    if application.unannounced_on is None:
        return "no visit is scheduled"
    factory = await s.get(Factory, application.factory_id)
    await runner.staff(
        s,
        f"{row.subject}/visit/{row.id}",
        "unannounced_visit_reminder",
        factory,
        {"visit_on": application.unannounced_on.isoformat()},
    )
    return None


async def _stakeholder_meeting(
    runner: ReminderRunner, s: AsyncSession, row: Reminder, now: datetime
) -> str | None:
    follow_up = await s.get(FollowUp, _id(row.subject))
    if follow_up is None or follow_up.closed_on is not None:
        return "the meeting was held"
    factory = await s.get(Factory, follow_up.factory_id)
    event = await s.get(PncEvent, follow_up.event_id)
    buyers = (await queries.subscriber_parties(s, [follow_up.factory_id])).get(
        follow_up.factory_id, []
    )
    await runner.staff(
        s,
        f"{row.subject}/meeting/{row.id}",
        "stakeholder_meeting_reminder",
        factory,
        {
            "designated_on": event.occurred_on.isoformat() if event else None,
            "buyers": [b.name for b in buyers],
        },
    )
    await _again(s, row, timedelta(days=7), now)
    return None


async def _cycle_end(
    runner: ReminderRunner, s: AsyncSession, row: Reminder, now: datetime
) -> str | None:
    _, factory_id, day = row.subject.split(":", 2)
    factory = await s.get(Factory, factory_id)
    if factory is None or factory.cycle_end is None or factory.cycle_end.isoformat() != day:
        return "the service cycle's end changed"
    if factory.state not in ("pnc", "readmission_review"):
        return "the factory is no longer designated"
    await runner.staff(s, f"{row.subject}/ended", "cycle_end_notice", factory, {"cycle_end": day})
    return None


HANDLERS: dict[str, Handler] = {
    "buyer_call": _buyer_call,
    "readmission_review": _readmission_review,
    "unannounced_visit": _unannounced_visit,
    "stakeholder_meeting": _stakeholder_meeting,
    "cycle_end": _cycle_end,
}
