"""What a designation or a readmission application leaves to do, with its reminders.

A designation opens the stakeholder meeting (Better Work convenes subscribing buyers and
national stakeholders; staff are reminded weekly until they mark it held) and the end of the
factory's service cycle; an application opens its review (managers are reminded until they
decide) and, once scheduled, the unannounced verification visit. ``reevaluate`` opens them with
the events that cause them and closes them when the history no longer supports those events;
staff close the meeting with ``meeting held``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from bot import notices, validation
from bot.errors import StateConflict
from bot.policy import Event, EventKind
from bot.roles import Actor, Permission, RoleLevel
from bot.usecases import access, registry
from bot.usecases.core import SYSTEM, Core, local_moment
from bot.vocabulary import (
    ApplicationSubject,
    CycleEndSubject,
    FollowUpKind,
    FollowUpSubject,
    ReminderKind,
)
from store import reminders
from store.db import Session
from store.models import FollowUp
from store.registry import factory_parties

MEETING_HELD = Permission("meeting held", RoleLevel.ASSESSOR)

#: the kinds of event that leave something to do
FOLLOWED_UP = frozenset({EventKind.PNC_DESIGNATED, EventKind.READMISSION_APPLIED})
#: how often staff are reminded of a stakeholder meeting still to hold
MEETING_EVERY = timedelta(days=7)


class Followed(NamedTuple):
    """An event notified now, or a notified event the history supports again."""

    event_id: int
    event: Event
    factory_id: str


class Ended(NamedTuple):
    """A recorded event the history no longer supports."""

    event_id: int
    kind: str
    application_id: int | None
    factory_id: str
    #: whether the factory is still designated (by another designation)
    designated: bool


def visit_eve(core: Core, application_id: int, visit_on: date, now: datetime) -> dict[str, Any]:
    """The reminder to staff the day before an unannounced verification visit."""
    eve = local_moment(visit_on - timedelta(days=1), core.settings.tz)
    return reminders.reminder(
        ReminderKind.UNANNOUNCED_VISIT, ApplicationSubject(application_id), eve, now
    )


async def begin(
    core: Core,
    s: Session,
    due: Sequence[Followed],
    restored: set[int],
    parties: dict[str, tuple[notices.Party, date | None]],
) -> None:
    """Open what the events ``due`` leave to do, with their reminders. ``restored`` names the
    events the history supports again: a follow-up closed because its designation was no
    longer supported is reopened; one closed by staff stays closed."""
    if not due:
        return
    now, tz = core.clock(), core.settings.tz
    review = timedelta(days=core.settings.readmission_reminder_days)
    designations = [f for f in due if f.event.kind is EventKind.PNC_DESIGNATED]
    again = [f.event_id for f in designations if f.event_id in restored]
    kept = {f.event_id: f for f in await reminders.follow_ups_of(s, again)} if again else {}
    missing = sorted({f.factory_id for f in designations} - set(parties))
    if missing:
        parties = {**parties, **await factory_parties(s, missing)}
    rows: list[dict[str, Any]] = []
    for event_id, event, fid in due:
        if event.kind is EventKind.PNC_DESIGNATED:
            follow_up = kept.get(event_id)
            if follow_up is None:
                follow_up = FollowUp(
                    kind=FollowUpKind.STAKEHOLDER_MEETING,
                    factory_id=fid,
                    event_id=event_id,
                    opened_at=now,
                )
                s.add(follow_up)
                await s.flush()
            elif follow_up.closed_by == SYSTEM:  # closed when the designation was gone
                follow_up.closed_on = follow_up.closed_by = None
                s.add(follow_up)
                core.audit_system(
                    s, "follow_up.reopened", fid, {"follow_up": follow_up.id, "event": event_id}
                )
            if follow_up.closed_on is None:
                assert follow_up.id is not None
                rows.append(
                    reminders.reminder(
                        ReminderKind.STAKEHOLDER_MEETING,
                        FollowUpSubject(follow_up.id),
                        now + MEETING_EVERY,
                        now,
                    )
                )
            cycle_end = parties[fid][1]
            if cycle_end is not None and local_moment(cycle_end, tz) > now:
                rows.append(
                    reminders.reminder(
                        ReminderKind.CYCLE_END,
                        CycleEndSubject(fid, cycle_end),
                        local_moment(cycle_end, tz),
                        now,
                    )
                )
        elif event.kind is EventKind.READMISSION_APPLIED and event.application_id:
            rows.append(
                reminders.reminder(
                    ReminderKind.READMISSION_REVIEW,
                    ApplicationSubject(event.application_id),
                    now + review,
                    now,
                )
            )
        elif (
            event.kind is EventKind.UNANNOUNCED_SCHEDULED
            and event.application_id
            and event_id in restored  # a visit scheduled now: ``schedule_visit`` sees to it
            and local_moment(event.on, tz) > now
        ):
            rows.append(visit_eve(core, event.application_id, event.on, now))
    if rows:
        await reminders.add_reminders(s, rows)
        core.reminders_written(s)


async def end(core: Core, s: Session, ended: Sequence[Ended]) -> None:
    """Close what events the history no longer supports left to do: the stakeholder meeting
    and its reminders, the end of the service cycle (unless the factory is still designated),
    the review and the unannounced visit."""
    if not ended:
        return
    gone = "the history no longer supports the designation"
    designations = [e.event_id for e in ended if e.kind == EventKind.PNC_DESIGNATED]
    for follow_up in await reminders.follow_ups_of(s, designations) if designations else []:
        if follow_up.closed_on is not None:
            continue  # the meeting was held
        assert follow_up.id is not None
        follow_up.closed_on, follow_up.closed_by = core.today(), SYSTEM
        s.add(follow_up)
        await reminders.cancel_reminders(s, FollowUpSubject(follow_up.id), note=gone)
        core.audit_system(
            s,
            "follow_up.closed",
            follow_up.factory_id,
            {"follow_up": follow_up.id, "event": follow_up.event_id, "reason": gone},
        )
    for e in ended:
        if e.kind == EventKind.PNC_DESIGNATED and not e.designated:
            await reminders.cancel_cycle_end(s, e.factory_id, gone)
        elif e.kind == EventKind.READMISSION_APPLIED and e.application_id:
            await reminders.cancel_reminders(
                s,
                ApplicationSubject(e.application_id),
                note="the history no longer supports the application",
            )


async def meeting_held(
    core: Core, actor: Actor, factory_id: str, day: str, follow_up_id: int | None = None
) -> date:
    """Close the stakeholder-meeting follow-up of a designation (with ``follow_up_id``, a
    button's: only if that is the one open)."""
    await access.require(core, actor, MEETING_HELD)
    fid = validation.identifier(factory_id, "factory id")
    held = validation.past_date(day, core.today(), "meeting date")
    async with core.db.transaction(write=True) as s:
        await registry.existing_factory(s, fid, lock=True)  # one closes it, the other is told
        follow_up = await reminders.open_follow_up(s, fid, FollowUpKind.STAKEHOLDER_MEETING)
        if follow_up is None or follow_up_id not in (None, follow_up.id):
            raise StateConflict(
                f"`{fid}` has no stakeholder meeting to hold.",
                "A meeting is tracked after each designation until it is marked held.",
            )
        assert follow_up.id is not None
        follow_up.closed_on, follow_up.closed_by = held, actor.user_id
        s.add(follow_up)
        await reminders.cancel_reminders(s, FollowUpSubject(follow_up.id), note="meeting held")
        core.audit(
            s, actor, "meeting.held", fid, {"follow_up": follow_up.id, "held_on": held.isoformat()}
        )
    return held
