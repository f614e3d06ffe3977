"""The quarterly buyer-call calendar (``/pnc calls …``). Each call's reminder — an agenda for
staff, and to each subscribing buyer the list of its own factories at risk or designated — is a
row written with the call; ``scheduler.reminders`` sends it when it falls due. Times are stored
in UTC; people give and read them in ``PNC_TIMEZONE``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from bot import validation
from bot.errors import Conflict, InvalidDate, InvalidInput, UnknownCall
from bot.roles import Actor, Permission, RoleLevel
from bot.usecases import access
from bot.usecases.core import WORKDAY_START, Core, local_moment
from bot.vocabulary import CallSubject, ReminderKind
from store import reminders
from store.models import BuyerCall

ADD = Permission("calls add", RoleLevel.MANAGER)
REMOVE = Permission("calls remove", RoleLevel.MANAGER)


@dataclass(frozen=True)
class CallLine:
    id: int
    held_at: datetime  # local
    reminder_at: datetime  # local


def _reminder_at(core: Core, held_at: datetime) -> datetime:
    return held_at - timedelta(days=core.settings.call_reminder_days)


def _line(core: Core, call_id: int, held_at: datetime, now: datetime) -> CallLine:
    tz = core.settings.tz
    return CallLine(
        call_id, held_at.astimezone(tz), max(_reminder_at(core, held_at), now).astimezone(tz)
    )


async def add(core: Core, actor: Actor, day: str, at: str | None = None) -> CallLine:
    """Add a call; its reminders are due ``PNC_CALL_REMINDER_DAYS`` before it (at once when
    that moment has passed)."""
    await access.require(core, actor, ADD)
    on = validation.iso_date(day, "call date")
    clock = _time(at) if at else WORKDAY_START
    held_at = local_moment(on, core.settings.tz, clock)
    now = core.clock()
    if held_at <= now:
        raise InvalidDate(
            f"The call on {on.isoformat()} at {clock.strftime('%H:%M')} is in the past.",
            "Give a date and time still to come.",
        )
    async with core.db.transaction(write=True) as s:
        if any(c.held_at == held_at for c in await reminders.upcoming_calls(s, now)):
            raise Conflict(
                f"There is already a call on {on.isoformat()} at {clock.strftime('%H:%M')}.",
                "`calls list` shows them.",
            )
        call = BuyerCall(held_at=held_at, created_by=actor.user_id, created_at=now)
        s.add(call)
        await s.flush()
        assert call.id is not None
        await reminders.add_reminders(
            s,
            [
                reminders.reminder(
                    ReminderKind.BUYER_CALL,
                    CallSubject(call.id),
                    _reminder_at(core, held_at),
                    now,
                )
            ],
        )
        core.audit(s, actor, "call.add", None, {"held_at": held_at.isoformat()})
        core.reminders_written(s)
    return _line(core, call.id, held_at, now)


async def upcoming(core: Core) -> list[CallLine]:
    now = core.clock()
    async with core.db.transaction() as s:
        calls = await reminders.upcoming_calls(s, now)
    return [_line(core, c.id or 0, c.held_at, now) for c in calls]


async def remove(core: Core, actor: Actor, day: str) -> int:
    """Remove the calls of a day; their reminders are cancelled."""
    await access.require(core, actor, REMOVE)
    on = validation.iso_date(day, "call date")
    now = core.clock()
    tz = core.settings.tz
    async with core.db.transaction(write=True) as s:
        gone = [
            c
            for c in await reminders.upcoming_calls(s, now - timedelta(days=1))
            if c.held_at.astimezone(tz).date() == on
        ]
        if not gone:
            raise UnknownCall(on.isoformat(), extra="`calls list` shows the calls to come.")
        for call in gone:
            assert call.id is not None
            call.removed_at, call.removed_by = now, actor.user_id
            s.add(call)
            await reminders.cancel_reminders(s, CallSubject(call.id), note="call removed")
        core.audit(
            s, actor, "call.remove", None, {"day": on.isoformat(), "calls": [c.id for c in gone]}
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
