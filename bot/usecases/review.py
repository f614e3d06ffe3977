"""Events held for staff review (``/pnc review``, ``pnc-bot review``).

A new event is held, not notified, when the country's rules changed or when the history changed
under events people were told of. A manager releases it — its notices and follow-ups are
planned as if it had just happened, from the history as it is now, through the same steps as
re-evaluation — or dismisses it with a reason; either is recorded on the event and audited.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

from bot import validation
from bot.errors import AlreadyReviewed, Conflict, InvalidInput, StateConflict, UnknownHeldEvent
from bot.policy import EventKind
from bot.roles import Actor, Permission, RoleLevel
from bot.usecases import access, follow_ups, notifying, reevaluation, registry
from bot.usecases.core import Core, local_moment
from bot.vocabulary import NoticeMode
from store import history
from store.db import Session

LIST = Permission("review", RoleLevel.MANAGER)
RELEASE = Permission("review release", RoleLevel.MANAGER)
DISMISS = Permission("review dismiss", RoleLevel.MANAGER)

#: what tells people where the numbers come from
_LISTED = "`review` lists the held events with their numbers (`/pnc review`, `pnc-bot review`)."


# --- what a review shows -----------------------------------------------------------------------


@dataclass(frozen=True)
class ToldLine:
    """An event people had been told of, no longer supported by the history when another was
    held."""

    key: str
    kind: str
    #: None when the event is not on record (its key alone is known)
    occurred_on: date | None
    k: int | None = None
    consecutive: int | None = None


@dataclass(frozen=True)
class HeldLine:
    """An event held for staff review, as ``/pnc review`` lists it (by its id)."""

    id: int
    key: str
    factory_id: str
    factory_name: str
    kind: str
    occurred_on: date
    #: k of ``consecutive``, for an at-risk warning
    k: int | None
    consecutive: int | None
    held_at: datetime
    #: a ``HeldBecause`` value; None for events held before the reason was recorded
    held_because: str | None
    told: tuple[ToldLine, ...]
    #: whether the history still supports it (if not, it can only be dismissed)
    supported: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "factory_id": self.factory_id,
            "factory_name": self.factory_name,
            "kind": self.kind,
            "occurred_on": self.occurred_on.isoformat(),
            "k": self.k,
            "consecutive": self.consecutive,
            "held_at": self.held_at.isoformat(),
            "held_because": self.held_because,
            "told": [
                {
                    "key": t.key,
                    "kind": t.kind,
                    "occurred_on": t.occurred_on.isoformat() if t.occurred_on else None,
                    "k": t.k,
                }
                for t in self.told
            ],
            "supported": self.supported,
        }


@dataclass(frozen=True)
class HeldView:
    """The events held for staff review, oldest first, and how many there are in all."""

    events: tuple[HeldLine, ...]
    total: int

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "events": [e.to_json() for e in self.events]}


@dataclass(frozen=True)
class NoticeLine:
    """A notice written: to whom, over which channel."""

    recipient_type: str
    recipient: str
    channel: str


@dataclass(frozen=True)
class ReviewOutcome:
    """A held event released — its notices written, what it leaves to do opened — or
    dismissed with a reason."""

    event: HeldLine
    released: bool
    notices: tuple[NoticeLine, ...] = ()
    #: what could not be written (a recipient without an address)
    warnings: tuple[str, ...] = ()
    #: a designation: its stakeholder meeting is tracked, with reminders
    meeting: bool = False
    #: a designation: staff are reminded at the end of the service cycle, on this day
    cycle_end: date | None = None
    reason: str | None = None


# --- the review -------------------------------------------------------------------------------


async def pending(core: Core, actor: Actor, limit: int = 20) -> HeldView:
    """The events held for review, oldest first (at most ``limit``), with why and what people
    had been told."""
    await access.require(core, actor, LIST)
    async with core.db.transaction() as s:
        rows, total = await history.held_events(s, limit)
        told = await history.events_by_key(s, [k for r in rows for k in r.held_told or ()])
    return HeldView(tuple(_line(r, r.factory_name, told) for r in rows), total)


async def release(core: Core, actor: Actor, number: int | str) -> ReviewOutcome:
    """Release a held event: its notices and follow-ups, as if it had just happened, from the
    history as it is now. Refused if it is not held, or the history no longer supports it."""
    await access.require(core, actor, RELEASE)
    eid = _number(number, "release")
    async with core.db.transaction(write=True) as s:
        fid = await history.event_factory(s, eid)
        if fid is None:
            raise UnknownHeldEvent(f"#{eid}", extra=_LISTED)
        # the factory first, as every change to its history does: no deadlock, no history
        # changing under the release
        factory = await registry.existing_factory(s, fid, lock=True)
        row = await _held(core, s, eid)
        line = _line(row, factory.name, {})
        h = await history.load_histories(s, [fid], {fid: factory})
        recorded = (await history.event_index(s, [fid])).get(fid, [])
        derived = reevaluation.derive(core.countries, h, fid, recorded)
        event = next((e for e in derived.evaluation.events if e.key == row.key), None)
        if event is None or row.unsupported_at is not None:
            raise StateConflict(
                f"Event #{eid} of `{fid}` is no longer supported by the history: its notices "
                "would tell people something that is not so.",
                f"Dismiss it with `review dismiss {eid}` and a reason.",
            )
        by_id = {a.id: a for a in h.assessments.get(fid, [])}
        facts = reevaluation.payload(event, by_id, derived.evaluation)
        now = core.clock()
        if not await history.release_event(s, eid, facts, at=now, by=actor.user_id):
            raise Conflict(f"Event #{eid} is no longer held for review.", _LISTED)
        due = [follow_ups.Followed(eid, event, fid)]
        notified = await notifying.notify(core, s, due, {eid: facts}, h)
        await follow_ups.begin(core, s, due, set(), notified.parties)
        written = tuple(
            NoticeLine(n.recipient_type, n.recipient_name, n.channel) for n in notified.notices
        )
        core.audit(
            s,
            actor,
            "review.release",
            fid,
            {"event": eid, "key": row.key, "notices": len(written), "warnings": notified.warnings},
        )
    designated = event.kind is EventKind.PNC_DESIGNATED
    cycle_end = factory.cycle_end if designated else None
    if cycle_end is not None and local_moment(cycle_end, core.settings.tz) <= now:
        cycle_end = None  # over already: nothing to remind anyone of
    return ReviewOutcome(
        line, True, written, tuple(notified.warnings), meeting=designated, cycle_end=cycle_end
    )


async def dismiss(core: Core, actor: Actor, number: int | str, reason: str | None) -> ReviewOutcome:
    """Close a held event without notices; the reason is kept on the event."""
    await access.require(core, actor, DISMISS)
    eid = _number(number, "dismiss")
    if reason is None or not reason.strip():
        raise InvalidInput(
            "A dismissal needs a reason.",
            f"`review dismiss {eid} <reason>`: it is kept with the event, for the record.",
        )
    why = validation.text(reason, "reason", 500)
    async with core.db.transaction(write=True) as s:
        fid = await history.event_factory(s, eid)
        if fid is None:
            raise UnknownHeldEvent(f"#{eid}", extra=_LISTED)
        factory = await registry.existing_factory(s, fid)
        row = await _held(core, s, eid)
        if not await history.dismiss_event(s, eid, why, at=core.clock(), by=actor.user_id):
            raise Conflict(f"Event #{eid} is no longer held for review.", _LISTED)
        core.audit(s, actor, "review.dismiss", fid, {"event": eid, "key": row.key, "reason": why})
    return ReviewOutcome(_line(row, factory.name, {}), False, reason=why)


# --- helpers ----------------------------------------------------------------------------------


def _number(value: int | str, verb: str) -> int:
    """An event's number as ``review`` shows it (``12`` or ``#12``)."""
    try:
        eid = int(str(value).strip().lstrip("#"))
    except ValueError:
        raise InvalidInput(
            f"`{validation.shown(str(value))}` is not an event number.",
            f"Use the number shown by `review`, e.g. `review {verb} 12`.",
        ) from None
    if not 1 <= eid < 2**31:  # beyond any id the database can hold
        raise UnknownHeldEvent(f"#{eid}", extra=_LISTED)
    return eid


async def _held(core: Core, s: Session, eid: int) -> Any:
    """The event, locked, or a refusal saying why it is not held for review."""
    row = await history.lock_event(s, eid)
    if row is None:
        raise UnknownHeldEvent(f"#{eid}", extra=_LISTED)
    if row.notice == NoticeMode.HELD:
        return row
    if row.reviewed_at is None:
        raise StateConflict(
            f"Event #{eid} of `{row.factory_id}` was not held for review: "
            + (
                "its notices went out when it happened."
                if row.notice == NoticeMode.DUE
                else "it was imported as history, without notices."
            ),
            _LISTED,
        )
    released = row.notice == NoticeMode.DUE
    raise AlreadyReviewed(
        eid,
        row.factory_id,
        "released" if released else "dismissed",
        _local(row.reviewed_at, core.settings.tz),
        None if released else row.review_note,
        row.reviewed_by,
    )


def _local(moment: datetime, tz: tzinfo) -> str:
    return f"{moment.astimezone(tz):%Y-%m-%d %H:%M}"


def _line(row: Any, factory_name: str, told: Mapping[str, Any]) -> HeldLine:
    payload = row.payload or {}
    return HeldLine(
        id=row.id,
        key=row.key,
        factory_id=row.factory_id,
        factory_name=factory_name,
        kind=row.kind,
        occurred_on=row.occurred_on,
        k=payload.get("k"),
        consecutive=payload.get("consecutive"),
        held_at=row.created_at,
        held_because=row.held_because,
        told=tuple(_told(key, told.get(key)) for key in row.held_told or ()),
        supported=row.unsupported_at is None,
    )


def _told(key: str, row: Any) -> ToldLine:
    if row is None:  # not on record: what its key says
        parts = key.split("/")
        return ToldLine(key, parts[1] if len(parts) > 1 else key, None)
    payload = row.payload or {}
    return ToldLine(key, row.kind, row.occurred_on, payload.get("k"), payload.get("consecutive"))
