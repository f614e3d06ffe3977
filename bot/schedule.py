"""The schedule: quarterly buyer calls, and the reminders the workflow leaves behind.

Reminders are rows (``store.models.Reminder``), written in the same transaction as what causes
them: a call added, a readmission application, a designation. ``scheduler.reminders`` sends
them when they fall due. Times are stored in UTC; people give and read them in
``PNC_TIMEZONE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot import validation
from bot.errors import Conflict, InvalidDate, InvalidInput, UnknownCall
from bot.roles import Actor
from store import queries
from store.db import after_commit
from store.models import BuyerCall

if TYPE_CHECKING:
    from bot.services import Services

#: reminders about a day go out at this local time
WORKDAY_START = time(9, 0)


def local_moment(day: date, tz: ZoneInfo, at: time = WORKDAY_START) -> datetime:
    """``day`` at ``at`` in the time zone, as an aware datetime."""
    return datetime.combine(day, at, tzinfo=tz)


def reminder(kind: str, subject: str, due_at: datetime, now: datetime) -> dict[str, Any]:
    """A reminder row; a moment already past is due at once."""
    return {"kind": kind, "subject": subject, "due_at": max(due_at, now), "created_at": now}


@dataclass(frozen=True)
class CallLine:
    id: int
    held_at: datetime  # local
    reminder_at: datetime  # local


class Calls:
    """The quarterly buyer-call calendar (``/pnc calls …``)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    @property
    def tz(self) -> ZoneInfo:
        return self.services.settings.tz

    def _reminder_at(self, held_at: datetime) -> datetime:
        return held_at - timedelta(days=self.services.settings.call_reminder_days)

    async def add(self, actor: Actor, day: str, at: str | None = None) -> CallLine:
        """Add a call; its reminders are due ``PNC_CALL_REMINDER_DAYS`` before it (at once when
        that moment has passed)."""
        await self.services.require(actor, "calls add")
        on = validation.iso_date(day, "call date")
        clock = _time(at) if at else WORKDAY_START
        held_at = local_moment(on, self.tz, clock)
        now = self.services.clock()
        if held_at <= now:
            raise InvalidDate(
                f"The call on {on.isoformat()} at {clock.strftime('%H:%M')} is in the past.",
                "Give a date and time still to come.",
            )
        async with self.services.db.transaction(write=True) as s:
            if any(c.held_at == held_at for c in await queries.upcoming_calls(s, now)):
                raise Conflict(
                    f"There is already a call on {on.isoformat()} at {clock.strftime('%H:%M')}.",
                    "`calls list` shows them.",
                )
            call = BuyerCall(held_at=held_at, created_by=actor.user_id, created_at=now)
            s.add(call)
            await s.flush()
            await queries.add_reminders(
                s, [reminder("buyer_call", f"call:{call.id}", self._reminder_at(held_at), now)]
            )
            self.services.audit(s, actor, "call.add", None, {"held_at": held_at.isoformat()})
            after_commit(s, self.services.wake_reminders)
        assert call.id is not None
        return CallLine(
            call.id,
            held_at.astimezone(self.tz),
            max(self._reminder_at(held_at), now).astimezone(self.tz),
        )

    async def upcoming(self) -> list[CallLine]:
        now = self.services.clock()
        async with self.services.db.transaction() as s:
            calls = await queries.upcoming_calls(s, now)
        return [
            CallLine(
                c.id or 0,
                c.held_at.astimezone(self.tz),
                max(self._reminder_at(c.held_at), now).astimezone(self.tz),
            )
            for c in calls
        ]

    async def remove(self, actor: Actor, day: str) -> int:
        """Remove the calls of a day; their reminders are cancelled."""
        await self.services.require(actor, "calls remove")
        on = validation.iso_date(day, "call date")
        now = self.services.clock()
        async with self.services.db.transaction(write=True) as s:
            gone = [
                c
                for c in await queries.upcoming_calls(s, now - timedelta(days=1))
                if c.held_at.astimezone(self.tz).date() == on
            ]
            if not gone:
                raise UnknownCall(on.isoformat(), extra="`calls list` shows the calls to come.")
            for call in gone:
                call.removed_at, call.removed_by = now, actor.user_id
                s.add(call)
                await queries.cancel_reminders(s, f"call:{call.id}", note="call removed")
            self.services.audit(
                s,
                actor,
                "call.remove",
                None,
                {"day": on.isoformat(), "calls": [c.id for c in gone]},
            )
        return len(gone)


def _time(value: str) -> time:
    try:
        hours, minutes = value.strip().split(":")
        return time(int(hours), int(minutes))
    except (ValueError, OverflowError):
        raise InvalidInput(
            f"`{validation.shown(value)}` is not a time of day.", "Write it as HH:MM, e.g. 14:30."
        ) from None
