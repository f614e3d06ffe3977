"""The quarterly buyer-call calendar (``/pnc calls …``). Each call's reminder — an agenda for
staff, and to each subscribing buyer the list of its own factories at risk or designated — is a
row written with the call; ``scheduler.reminders`` sends it when it falls due. Times are stored
in UTC; people give and read them in ``PNC_TIMEZONE``.

A call may recur: a series (``calls add … quarterly``) falls every three months on the day of
the month of its first call (the month's last day when it is shorter), at the same local time,
counted from the first call so that it never drifts: 31 Jan, 30 Apr, 31 Jul, 31 Oct, 31 Jan.
Its occurrences are written ahead as calls of their own, each with its reminder, so that a
series survives restarts and is sent once by any number of replicas like any call: always the
occurrences up to the ``PLANNED``-th whose reminder is still to come. When an occurrence's
reminder goes out, ``plan_ahead`` writes the next one; removing an occurrence plans one more.
"""

from __future__ import annotations

import calendar as months_of
import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot import validation
from bot.errors import Conflict, InvalidDate, InvalidInput, UnknownCall
from bot.roles import Actor, Permission, RoleLevel
from bot.usecases import access
from bot.usecases.core import SYSTEM, WORKDAY_START, Core, local_moment
from bot.vocabulary import CallSubject, ReminderKind
from store import reminders
from store.db import Session
from store.models import BuyerCall, CallSeries

ADD = Permission("calls add", RoleLevel.MANAGER)
REMOVE = Permission("calls remove", RoleLevel.MANAGER)

#: a series' months between occurrences
QUARTERLY = 3
#: how many occurrences of a series with their reminder still to come are kept written ahead
PLANNED = 4


@dataclass(frozen=True)
class CallLine:
    id: int
    held_at: datetime  # local
    reminder_at: datetime  # local
    #: the series it is an occurrence of, if any
    series_id: int | None = None


@dataclass(frozen=True)
class SeriesLine:
    """A series and its next occurrences (local times)."""

    id: int
    first_held_at: datetime  # local
    months: int
    next: tuple[CallLine, ...]

    @property
    def day(self) -> int:
        """The day of the month its calls fall on (or the month's last day)."""
        return self.first_held_at.day


@dataclass(frozen=True)
class Calendar:
    """The calls to come: the one-off calls (and those left of a series that ended), and each
    series with its next ``PLANNED`` occurrences."""

    calls: tuple[CallLine, ...]
    series: tuple[SeriesLine, ...]


@dataclass(frozen=True)
class SeriesRemoved:
    """A series removed from one of its occurrences on (``calls remove <day> series``)."""

    day: date
    #: the occurrences removed, their reminders cancelled (local times)
    removed: tuple[datetime, ...]
    #: earlier occurrences still to come, which stay (local times)
    kept: tuple[datetime, ...]


# --- when a series' calls fall (pure) -----------------------------------------------------------


def occurrence_day(first: date, n: int, months: int = QUARTERLY) -> date:
    """The day of a series' ``n``-th call (0: the first): ``n * months`` months after the first
    call's month, on its day of the month or the month's last day when that is shorter —
    counted from the first call, never from the previous one, so that it does not drift."""
    index = first.month - 1 + n * months
    year, month = first.year + index // 12, index % 12 + 1
    return date(year, month, min(first.day, months_of.monthrange(year, month)[1]))


def occurrence(first: datetime, n: int, months: int, tz: ZoneInfo) -> datetime:
    """The moment of a series' ``n``-th call: its day at the first call's local time in
    ``tz`` (the same wall-clock time whatever daylight saving time does)."""
    local = first.astimezone(tz)
    return local_moment(occurrence_day(local.date(), n, months), tz, local.time())


# --- the use cases --------------------------------------------------------------------------------


def _reminder_at(core: Core, held_at: datetime) -> datetime:
    return held_at - timedelta(days=core.settings.call_reminder_days)


def _line(core: Core, call: BuyerCall, now: datetime) -> CallLine:
    tz = core.settings.tz
    return CallLine(
        call.id or 0,
        call.held_at.astimezone(tz),
        max(_reminder_at(core, call.held_at), now).astimezone(tz),
        call.series_id,
    )


def _moment(core: Core, day: str, at: str | None) -> datetime:
    """A call's moment from what people type; refused in the past."""
    on = validation.iso_date(day, "call date")
    clock = _time(at) if at else WORKDAY_START
    held_at = local_moment(on, core.settings.tz, clock)
    if held_at <= core.clock():
        raise InvalidDate(
            f"The call on {on.isoformat()} at {clock.strftime('%H:%M')} is in the past.",
            "Give a date and time still to come.",
        )
    return held_at


async def add(core: Core, actor: Actor, day: str, at: str | None = None) -> CallLine:
    """Add a call; its reminders are due ``PNC_CALL_REMINDER_DAYS`` before it (at once when
    that moment has passed)."""
    await access.require(core, actor, ADD)
    held_at = _moment(core, day, at)
    now = core.clock()
    async with core.db.transaction(write=True) as s:
        await _free(s, [held_at], now)
        (call,) = await reminders.add_calls(s, [held_at], by=actor.user_id, now=now)
        await _remind(core, s, [call], now)
        core.audit(s, actor, "call.add", None, {"held_at": held_at.isoformat()})
    return _line(core, call, now)


async def add_series(core: Core, actor: Actor, day: str, at: str | None = None) -> SeriesLine:
    """Add a quarterly series from its first call; its next ``PLANNED`` calls are written with
    their reminders, and later ones as the series goes on."""
    await access.require(core, actor, ADD)
    held_at = _moment(core, day, at)
    now = core.clock()
    tz = core.settings.tz
    async with core.db.transaction(write=True) as s:
        first = [occurrence(held_at, n, QUARTERLY, tz) for n in range(PLANNED + 1)]
        await _free(s, first, now)
        series = await reminders.add_series(s, held_at, QUARTERLY, by=actor.user_id, now=now)
        planned = await _top_up(core, s, series, now, actor.user_id)
        core.audit(
            s,
            actor,
            "call.add",
            None,
            {
                "held_at": held_at.isoformat(),
                "series_id": series.id,
                "every_months": QUARTERLY,
                "calls": [c.id for c in planned],
            },
        )
    return _series_line(core, series, planned, now)


async def plan_ahead(core: Core, s: Session, series_id: int) -> list[BuyerCall]:
    """Write the series' next occurrences, if it needs any (an occurrence's reminder has just
    gone out), in the caller's transaction. A series another transaction is writing or
    removing just now is left to it: replicas never write an occurrence twice."""
    series = await reminders.lock_series(s, series_id, wait=False)
    if series is None:
        return []
    return await _top_up(core, s, series, core.clock(), SYSTEM)


async def upcoming(core: Core) -> list[CallLine]:
    """Every call to come, one-off or of a series, in time order."""
    now = core.clock()
    async with core.db.transaction() as s:
        calls = await reminders.upcoming_calls(s, now)
    return [_line(core, c, now) for c in calls]


async def calendar(core: Core) -> Calendar:
    """The one-off calls to come and each series with its next ``PLANNED`` calls."""
    now = core.clock()
    tz = core.settings.tz
    async with core.db.transaction() as s:
        calls = await reminders.upcoming_calls(s, now)
        live = await reminders.live_series(s)
    ids = {series.id for series in live}
    lines = [_line(core, c, now) for c in calls]
    series = [
        SeriesLine(
            series.id or 0,
            series.first_held_at.astimezone(tz),
            series.months,
            tuple(line for line in lines if line.series_id == series.id)[:PLANNED],
        )
        for series in live
    ]
    series.sort(key=lambda x: (x.next[0].held_at if x.next else x.first_held_at, x.id))
    return Calendar(tuple(line for line in lines if line.series_id not in ids), tuple(series))


async def remove(core: Core, actor: Actor, day: str) -> int:
    """Remove the calls of a day, their reminders cancelled; a series they belong to goes on
    (its next occurrence is planned in their place)."""
    await access.require(core, actor, REMOVE)
    on = validation.iso_date(day, "call date")
    now = core.clock()
    async with core.db.transaction(write=True) as s:
        series = await _lock_series_of(s, await _calls_on(core, s, on, now))
        gone = await _calls_on(core, s, on, now)  # read again under the locks
        if not gone:
            raise UnknownCall(on.isoformat(), extra="`calls list` shows the calls to come.")
        await _cancel(s, gone, actor, now)
        planned: list[BuyerCall] = []
        for one in series:  # a series goes on: one more occurrence in place of the one removed
            planned += await _top_up(core, s, one, now, SYSTEM)
        core.audit(
            s,
            actor,
            "call.remove",
            None,
            {
                "day": on.isoformat(),
                "calls": [c.id for c in gone],
                **({"planned": [c.id for c in planned]} if planned else {}),
            },
        )
    return len(gone)


async def remove_series(core: Core, actor: Actor, day: str) -> SeriesRemoved:
    """Remove the series of a day's call from that call on: it and the later calls of the
    series are removed, their reminders cancelled; the earlier ones stay."""
    await access.require(core, actor, REMOVE)
    on = validation.iso_date(day, "call date")
    now = core.clock()
    tz = core.settings.tz
    async with core.db.transaction(write=True) as s:
        series = await _lock_series_of(s, await _calls_on(core, s, on, now))
        that_day = await _calls_on(core, s, on, now)  # read again under the locks
        if not that_day:
            raise UnknownCall(on.isoformat(), extra="`calls list` shows the calls to come.")
        if not series:
            raise InvalidInput(
                f"The buyer call on {on.isoformat()} is not part of a series.",
                f"Remove it alone with `/pnc calls remove {on.isoformat()}`.",
            )
        gone: list[BuyerCall] = []
        kept: list[BuyerCall] = []
        for one in series:
            start = min(c.held_at for c in that_day if c.series_id == one.id)
            later = [
                c
                for c in await reminders.series_calls(s, one.id or 0)
                if c.removed_at is None and c.held_at >= now - timedelta(days=1)
            ]
            gone += [c for c in later if c.held_at >= start]
            kept += [c for c in later if now <= c.held_at < start]
            one.removed_at, one.removed_by = one.removed_at or now, actor.user_id
            s.add(one)
        await _cancel(s, gone, actor, now)
        core.audit(
            s,
            actor,
            "call.series.remove",
            None,
            {
                "day": on.isoformat(),
                "series": [one.id for one in series],
                "calls": [c.id for c in gone],
            },
        )
    return SeriesRemoved(
        on,
        tuple(sorted(c.held_at.astimezone(tz) for c in gone)),
        tuple(sorted(c.held_at.astimezone(tz) for c in kept)),
    )


# --- helpers ----------------------------------------------------------------------------------


async def _free(s: Session, moments: list[datetime], now: datetime) -> None:
    """Refuse a call at the moment of one already planned."""
    taken = {c.held_at for c in await reminders.upcoming_calls(s, now)}
    clash = sorted(m for m in moments if m in taken)
    if clash:
        first = clash[0]
        raise Conflict(
            f"There is already a call on {first.date().isoformat()} at {first.strftime('%H:%M')}.",
            "`calls list` shows them.",
        )


async def _remind(core: Core, s: Session, calls: list[BuyerCall], now: datetime) -> None:
    """Write the calls' reminders (due at once when their moment has passed)."""
    await reminders.add_reminders(
        s,
        [
            reminders.reminder(
                ReminderKind.BUYER_CALL,
                CallSubject(c.id or 0),
                _reminder_at(core, c.held_at),
                now,
            )
            for c in calls
        ],
    )
    if calls:
        core.reminders_written(s)


async def _top_up(
    core: Core, s: Session, series: CallSeries, now: datetime, by: str
) -> list[BuyerCall]:
    """Write the series' occurrences still to come that are missing, up to the ``PLANNED``-th
    whose reminder is still to come (the caller holds the series' row). An occurrence written
    before — removed or not — is never written again."""
    if series.removed_at is not None or series.id is None:
        return []
    tz = core.settings.tz
    written = {c.held_at: c.removed_at is None for c in await reminders.series_calls(s, series.id)}
    wanted: list[datetime] = []
    ahead = 0
    for n in itertools.count():
        if ahead >= PLANNED:
            break
        held_at = occurrence(series.first_held_at, n, series.months, tz)
        if held_at <= now or written.get(held_at) is False:
            continue  # past, or removed
        if held_at not in written:
            wanted.append(held_at.astimezone(UTC))
        if _reminder_at(core, held_at) > now:
            ahead += 1
    calls = await reminders.add_calls(s, wanted, by=by, now=now, series_id=series.id)
    await _remind(core, s, calls, now)
    return calls


async def _calls_on(core: Core, s: Session, on: date, now: datetime) -> list[BuyerCall]:
    """The calls (not removed) of a local day, from yesterday on."""
    tz = core.settings.tz
    return [
        c
        for c in await reminders.upcoming_calls(s, now - timedelta(days=1))
        if c.held_at.astimezone(tz).date() == on
    ]


async def _lock_series_of(s: Session, calls: list[BuyerCall]) -> list[CallSeries]:
    """The series these calls belong to, locked (waiting for a replica writing them)."""
    found = []
    for series_id in sorted({c.series_id for c in calls if c.series_id is not None}):
        series = await reminders.lock_series(s, series_id)
        if series is not None:
            found.append(series)
    return found


async def _cancel(s: Session, calls: list[BuyerCall], actor: Actor, now: datetime) -> None:
    for call in calls:
        call.removed_at, call.removed_by = now, actor.user_id
        s.add(call)
        await reminders.cancel_reminders(s, CallSubject(call.id or 0), note="call removed")


def _series_line(
    core: Core, series: CallSeries, planned: list[BuyerCall], now: datetime
) -> SeriesLine:
    return SeriesLine(
        series.id or 0,
        series.first_held_at.astimezone(core.settings.tz),
        series.months,
        tuple(_line(core, c, now) for c in planned[:PLANNED]),
    )


def _time(value: str) -> time:
    try:
        hours, minutes = value.strip().split(":")
        return time(int(hours), int(minutes))
    except (ValueError, OverflowError):
        raise InvalidInput(
            f"`{validation.shown(value)}` is not a time of day.", "Write it as HH:MM, e.g. 14:30."
        ) from None
