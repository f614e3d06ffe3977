"""What the alerts' buttons do (``bot.buttons``): each press calls the use case the matching
command calls, on the very thing the button names, and a press that comes second — two managers
pressing Approve at once — is refused with ``AlreadyDecided`` saying who decided it.

Each use case below is one transaction (the one of the use case it calls), audited there; the
door (``handlers.middleware``) has checked the presser's role with the same ``Permission``.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import date, datetime
from typing import Any, TypeVar

from bot.buttons import Button, Press
from bot.errors import AlreadyDecided, PncError, StateConflict, UnknownNotice, ZtpCaseConflict
from bot.roles import Actor, Permission, RoleLevel
from bot.usecases import (
    access,
    follow_ups,
    outbox_admin,
    reading,
    readmission,
    review,
    ztp,
)
from bot.usecases.core import Core
from bot.usecases.outbox_admin import Revived
from bot.usecases.read_models import StatusView
from bot.usecases.reevaluation import StateOutcome
from bot.vocabulary import NoticeMode, OutboxStatus
from store import access as access_rows
from store import history, presses, reminders

T = TypeVar("T")

#: ending a channel's pause is a retry of what waits on it: the same role
RESUME = Permission("outbox resume", RoleLevel.MANAGER)
#: what a factory's Status button shows, anyone with a role may see (``/pnc status``)
STATUS = Permission("status", RoleLevel.VIEWER)

#: the permission each button needs: the one of the command it stands for
PERMISSIONS: dict[Button, Permission] = {
    Button.APPROVE: readmission.APPROVE,
    Button.REJECT: readmission.REJECT,
    Button.MEETING_HELD: follow_ups.MEETING_HELD,
    Button.RETRY: outbox_admin.RETRY,
    Button.RETRY_ALL: outbox_admin.RETRY,
    Button.RESUME: RESUME,
    Button.RELEASE: review.RELEASE,
    Button.DISMISS: review.DISMISS,
    Button.ZTP_UPDATE: ztp.UPDATE,
    Button.STATUS: STATUS,
}


async def decide(core: Core, actor: Actor, press: Press, note: str | None) -> StateOutcome:
    """Approve or reject the application the button names (``readmission decide``)."""
    async with core.db.transaction() as s:
        application = await history.get_application(s, press.number)
    if application is None:
        raise StateConflict(f"There is no readmission application #{press.number}.")
    return await _or_decided(
        core,
        press,
        readmission.decide(
            core,
            actor,
            application.factory_id,
            press.button is Button.APPROVE,
            note,
            application_id=press.number,
        ),
    )


async def meeting_held(core: Core, actor: Actor, press: Press, day: str) -> date:
    """Close the stakeholder meeting the button names (``meeting held``)."""
    async with core.db.transaction() as s:
        follow_up = await reminders.get_follow_up(s, press.number)
    if follow_up is None:
        raise StateConflict(f"There is no stakeholder meeting #{press.number} to hold.")
    held: date = await _or_decided(
        core,
        press,
        follow_ups.meeting_held(core, actor, follow_up.factory_id, day, follow_up.id),
    )
    return held


async def retry(core: Core, actor: Actor, press: Press) -> None:
    """Send the dead notice the button names again (``outbox retry``); refused with
    ``AlreadyDecided`` if it is not dead any more."""
    await access.require(core, actor, outbox_admin.RETRY)
    async with core.db.transaction(write=True) as s:
        row = await presses.get_notice(s, press.number)
        if row is None:
            raise UnknownNotice(f"#{press.number}", extra="`outbox` lists the notices.")
        if await presses.revive_notice(s, press.number, core.clock()):
            core.audit(s, actor, access_rows.RETRIED, row.factory_id, {"notice": press.number})
            core.notices_written(s)
            return
    decided = await decision(core, press)
    raise decided or StateConflict(f"Notice #{press.number} is not dead.")


async def retry_all(core: Core, actor: Actor, press: Press) -> Revived:
    """Send every dead notice again (``outbox retry dead``); none left to send is a press that
    came second (if a retry is on record)."""
    revived = await outbox_admin.retry_dead(core, actor)
    if revived.count == 0 and (decided := await decision(core, press)) is not None:
        raise decided
    return revived


async def resume(core: Core, actor: Actor, press: Press) -> None:
    """End the pause of the channel the button names: its notices go out at once."""
    await access.require(core, actor, RESUME)
    async with core.db.transaction(write=True) as s:
        if await presses.resume_channel(s, press.subject, core.clock()):
            core.audit(s, actor, presses.RESUMED, None, {"channel": press.subject})
            core.notices_written(s)
            return
    decided = await decision(core, press)
    raise decided or StateConflict(f"Delivery by {press.subject} is not paused (any more).")


async def release(core: Core, actor: Actor, press: Press) -> review.ReviewOutcome:
    return await _or_decided(core, press, review.release(core, actor, press.number))


async def dismiss(core: Core, actor: Actor, press: Press, reason: str) -> review.ReviewOutcome:
    return await _or_decided(core, press, review.dismiss(core, actor, press.number, reason))


async def ztp_update(core: Core, actor: Actor, press: Press, status: str, note: str) -> Any:
    """Record progress on the zero-tolerance case the button names (``ztp update``)."""
    work = ztp.update(core, actor, press.number, status, note)
    return await _or_decided(core, press, work, when=ZtpCaseConflict)


async def status(core: Core, press: Press) -> StatusView:
    """The status of the factory the button names (``status``)."""
    return await reading.status(core, press.subject)


async def _or_decided(
    core: Core, press: Press, work: Awaitable[T], when: type[PncError] = PncError
) -> T:
    """``work``'s result; a refusal (of type ``when``) because someone came first becomes
    ``AlreadyDecided``."""
    try:
        return await work
    except AlreadyDecided:
        raise
    except when as exc:
        decided = await decision(core, press)
        if decided is not None:
            raise decided from exc
        raise


async def decision(core: Core, press: Press) -> AlreadyDecided | None:
    """Who already decided what the button names (None if it is still to decide)."""
    tz = core.settings.tz

    def local(moment: datetime | None) -> str | None:
        return f"{moment.astimezone(tz):%Y-%m-%d %H:%M}" if moment else None

    async with core.db.transaction() as s:
        match press.button:
            case Button.APPROVE | Button.REJECT:
                app = await history.get_application(s, press.number)
                if app is not None and app.decision:
                    thing = f"The readmission application of `{app.factory_id}`"
                    day = app.decided_on.isoformat() if app.decided_on else None
                    return AlreadyDecided(thing, app.decision, app.decided_by, day)
            case Button.MEETING_HELD:
                f = await reminders.get_follow_up(s, press.number)
                if f is not None and f.closed_on is not None:
                    thing = f"The stakeholder meeting of `{f.factory_id}`"
                    return AlreadyDecided(thing, "closed", f.closed_by, f.closed_on.isoformat())
            case Button.RELEASE | Button.DISMISS:
                event = await history.get_event(s, press.number)
                if event is not None and event.reviewed_at is not None:
                    what = "released" if event.notice == NoticeMode.DUE else "dismissed"
                    thing = f"Event #{press.number} of `{event.factory_id}`"
                    return AlreadyDecided(thing, what, event.reviewed_by, local(event.reviewed_at))
            case Button.RETRY:
                row = await presses.get_notice(s, press.number)
                if row is not None and row.status != OutboxStatus.DEAD:
                    for entry in await presses.last_done(s, [access_rows.RETRIED]):
                        if entry.detail.get("notice") == press.number or entry.detail.get("dead"):
                            what = "sent" if row.status == OutboxStatus.SENT else "retried"
                            return AlreadyDecided(
                                f"Notice #{press.number}", what, entry.actor, local(entry.at)
                            )
            case Button.RETRY_ALL:
                for entry in await presses.last_done(s, [access_rows.RETRIED], limit=1):
                    return AlreadyDecided(
                        "The dead notices", "retried", entry.actor, local(entry.at)
                    )
            case Button.RESUME:
                for entry in await presses.last_done(s, [presses.RESUMED]):
                    if entry.detail.get("channel") == press.subject:
                        thing = f"Delivery by {press.subject}"
                        return AlreadyDecided(thing, "resumed", entry.actor, local(entry.at))
            case Button.ZTP_UPDATE:
                case = await ztp.case_of(core, s, press.number)
                if case is not None and case.updated_by:
                    thing = f"Zero-tolerance case #{press.number}"
                    what = f"updated to `{case.status}`"
                    return AlreadyDecided(thing, what, case.updated_by, local(case.updated_at))
    return None


async def alert_of(core: Core, channel: str, ts: str) -> dict[str, Any] | None:
    """The staff alert a Slack message is (its kind, key and payload), to draw it again."""
    async with core.db.transaction() as s:
        row = await presses.alert_posted(s, channel, ts)
        if row is None:
            return None
        return {"kind": row.kind, "key": row.key, "payload": dict(row.payload)}
