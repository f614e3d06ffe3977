"""Zero-tolerance cases (Better Work's Zero Tolerance Protocol): opened by an assessment with a
zero-tolerance code (``open_found``, from re-evaluation) or by hand (``open_by_hand``), followed
until staff close them (``update``).

Opening a case, in the transaction that finds it: the case row (once, by its key), the audit
entry, and its escalation (``ztp_escalation``: the urgent staff alert, the authorities' email,
the reminders of its deadlines). The factory is not emailed: the protocol escalates to the
authorities. A case never counts towards
PNC. Which findings are escalated, recorded only or left alone: ``zero_tolerance.handling``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bot import validation
from bot import zero_tolerance as zt
from bot.countries import Country
from bot.errors import InvalidInput, UnknownZtpCase, ZtpCaseConflict
from bot.notices import Party
from bot.roles import Actor, Permission, RoleLevel
from bot.suggest import close_matches
from bot.usecases import access, registry
from bot.usecases import ztp_escalation as escalation
from bot.usecases.core import SYSTEM, Core
from bot.vocabulary import NoticeMode, ReminderKind, ZtpStatus, ZtpSubject
from store import registry as registry_rows
from store import reminders
from store import ztp as cases
from store.db import Session
from store.history import Histories
from store.models import ZtpUpdate

log = logging.getLogger(__name__)

#: cases are read by any staff; opened and moved on by assessors, like other facts from the field
LIST = Permission("ztp", RoleLevel.VIEWER)
OPEN = Permission("ztp open", RoleLevel.ASSESSOR)
UPDATE = Permission("ztp update", RoleLevel.ASSESSOR)

#: the deadline each reminder is of
DEADLINE_OF = {
    ReminderKind.ZTP_INVESTIGATION: "investigation",
    ReminderKind.ZTP_ACTION_PLAN: "action_plan",
}
#: what a case recorded from a historic import says
IMPORTED = "found in a historic import: recorded, not escalated"


@dataclass(frozen=True)
class Found:
    """What ``open_found`` did: the cases it opened (escalated), and the findings of a historic
    import it recorded closed without telling anyone."""

    opened: tuple[int, ...] = ()
    recorded: int = 0


@dataclass(frozen=True)
class Opened:
    """A case opened: its line, and whether the authorities' email went out (an address is
    configured) or staff were told none is."""

    case: zt.CaseLine
    emailed: tuple[str, ...]
    staff_told: bool


async def open_found(
    core: Core, s: Session, factory_ids: Sequence[str], h: Histories, mode: NoticeMode
) -> Found:
    """Open a case for each zero-tolerance finding of these factories' histories that has
    none, in the caller's transaction (re-evaluation calls it). A historic import
    (``SUPPRESSED``) records them closed, telling nobody; the import's summary counts them."""
    found = [
        f
        for fid in factory_ids
        for f in zt.findings(
            fid, h.assessments.get(fid, []), core.country(h.countries[fid]).ztp.codes
        )
    ]
    if not found:
        return Found()
    known = await cases.existing_keys(s, [f.key for f in found])
    new = [f for f in found if f.key not in known]
    if not new:
        return Found()
    now = core.clock()
    if mode is NoticeMode.SUPPRESSED:
        rows = [
            _row(f.key, f.factory_id, f.code, f.assessment_id, now, SYSTEM, IMPORTED) for f in new
        ]
        for row in rows:
            row.update(
                status=ZtpStatus.CLOSED.value, closed_at=now, updated_at=now, updated_by=SYSTEM
            )
        await cases.add_cases(s, rows)
        log.info(
            "%d zero-tolerance findings in a historic import recorded, not escalated; "
            "open a case by hand (pnc-bot ztp open) where one is current",
            len(rows),
        )
        return Found(recorded=len(rows))
    written_at = await cases.recorded_at(s, [f.assessment_id for f in new])
    parties = await registry_rows.factory_parties(
        s, sorted({f.factory_id for f in new}), h.factories
    )
    opened = []
    for f in new:
        country = core.country(h.countries[f.factory_id])
        how = zt.handling(country.ztp, mode, written_at.get(f.assessment_id, now), now)
        if how is not zt.Handling.ESCALATE:
            continue
        party = parties[f.factory_id][0]
        row = _row(f.key, f.factory_id, f.code, f.assessment_id, now, SYSTEM, None)
        case_id = await cases.add_case(s, row)
        if case_id is None:  # another transaction opened it meanwhile
            continue
        line = _line_of(core, case_id, row, party.name, country, f.assessed_on)
        await escalation.escalate(core, s, line, party, country, f.kind)
        core.audit_system(
            s,
            "ztp.opened",
            f.factory_id,
            {"case": case_id, "code": f.code, "assessment_id": f.assessment_id},
        )
        opened.append(case_id)
    return Found(opened=tuple(opened))


async def open_by_hand(core: Core, actor: Actor, factory_id: str, code: str, note: str) -> Opened:
    """Open a case by hand: a finding outside an assessment, or violence or an imminent threat
    to workers' safety, under the closest code of the catalogue (it need not be on the
    country's zero-tolerance list)."""
    await access.require(core, actor, OPEN)
    fid = validation.identifier(factory_id, "factory id")
    why = validation.text(note, "note", 2000)
    async with core.db.transaction(write=True) as s:
        factory = await registry.existing_factory(s, fid, lock=True)
        country = core.country(factory.country)
        codes = validation.issue_codes(code, country.catalogue, country.code)
        if len(codes) != 1:
            raise InvalidInput(
                "A zero-tolerance case is about one issue code.",
                f"Give one code of `/pnc issues {country.code}`.",
            )
        (the_code,) = codes
        now = core.clock()
        key = zt.manual_key(fid, secrets.token_hex(6))
        row = _row(key, fid, the_code, None, now, actor.user_id, why)
        case_id = await cases.add_case(s, row)
        assert case_id is not None  # a fresh random key
        line = _line_of(core, case_id, row, factory.name, country, None)
        party = Party(factory.id, factory.name, tuple(factory.emails), factory.language)
        emailed, told = await escalation.escalate(core, s, line, party, country, None)
        core.audit(s, actor, "ztp.open", fid, {"case": case_id, "code": the_code, "note": why})
    return Opened(line, emailed, told)


async def update(core: Core, actor: Actor, case: str | int, status: str, note: str) -> zt.CaseLine:
    """Record progress on a case: ``investigating``, ``action-plan`` or ``closed``, forward
    only; a closed case stays closed. The reminders it makes moot are cancelled."""
    await access.require(core, actor, UPDATE)
    number = _number(case)
    wanted = _status(status)
    why = validation.text(note, "note", 2000)
    async with core.db.transaction(write=True) as s:
        row = await cases.get_case(s, number, lock=True)
        if row is None:
            shown = [f"#{n}" for n in await cases.open_numbers(s)]
            raise UnknownZtpCase(
                f"#{number}",
                extra=f"Open cases: {', '.join(shown)}." if shown else "No case is open.",
            )
        _check_move(number, row.status, wanted, row.closed_at)
        now = core.clock()
        before = row.status
        row.status, row.updated_at, row.updated_by = wanted, now, actor.user_id
        if wanted is ZtpStatus.CLOSED:
            row.closed_at = now
        s.add(row)
        await cases.add_update(
            s, ZtpUpdate(case_id=number, status=wanted, note=why, by=actor.user_id, at=now)
        )
        moot = [k for k, d in DEADLINE_OF.items() if not zt.overdue(wanted, d)]
        await reminders.cancel_reminders(
            s, ZtpSubject(number), moot, f"the case is {zt.word_of(wanted)}"
        )
        core.audit(
            s,
            actor,
            "ztp.update",
            row.factory_id,
            {"case": number, "from": before, "to": wanted.value, "note": why},
        )
        listed = await cases.listed_case(s, number)
    assert listed is not None
    return case_line(core, listed)


async def case_of(core: Core, s: Session, case_id: int) -> zt.CaseLine | None:
    """A case by its number, in the caller's transaction (its reminders)."""
    row = await cases.listed_case(s, case_id)
    return case_line(core, row) if row is not None else None


async def open_cases(core: Core) -> list[zt.CaseLine]:
    """Every case not closed, oldest first (``/pnc ztp``)."""
    async with core.db.transaction() as s:
        rows = await cases.open_cases(s)
    return [case_line(core, r) for r in rows]


async def cases_of(core: Core, factory_id: str) -> list[zt.CaseLine]:
    """A factory's cases, closed ones too, oldest first."""
    fid = validation.identifier(factory_id, "factory id")
    async with core.db.transaction() as s:
        await registry.existing_factory(s, fid)
        rows = await cases.cases_of(s, fid)
    return [case_line(core, r) for r in rows]


# --- rows and lines -----------------------------------------------------------------------------


def _row(
    key: str,
    factory_id: str,
    code: str,
    assessment_id: int | None,
    now: datetime,
    by: str,
    note: str | None,
) -> dict[str, Any]:
    return {
        "key": key,
        "factory_id": factory_id,
        "code": code,
        "assessment_id": assessment_id,
        "opened_at": now,
        "opened_by": by,
        "note": note,
        "status": ZtpStatus.OPEN.value,
        "updated_at": None,
        "updated_by": None,
        "closed_at": None,
    }


def _line_of(
    core: Core,
    case_id: int,
    row: dict[str, Any],
    factory_name: str,
    country: Country,
    assessed_on: date | None,
) -> zt.CaseLine:
    return zt.CaseLine(
        id=case_id,
        factory_id=row["factory_id"],
        factory_name=factory_name,
        code=row["code"],
        issue=country.catalogue.name(row["code"]),
        assessment_id=row["assessment_id"],
        assessed_on=assessed_on,
        status=str(row["status"]),
        opened_at=row["opened_at"],
        opened_by=row["opened_by"],
        note=row["note"],
        deadlines=zt.deadlines(row["opened_at"], country.ztp),
        updated_at=row.get("updated_at"),
        updated_by=row.get("updated_by"),
        closed_at=row.get("closed_at"),
        key=row["key"],
    )


def case_line(core: Core, r: Any) -> zt.CaseLine:
    """The line of a row of ``store.ztp.open_cases`` / ``cases_of``."""
    return _line_of(
        core, r.id, dict(r._mapping), r.factory_name, core.country(r.country), r.assessed_on
    )


def _number(value: str | int) -> int:
    text = str(value).strip().lstrip("#")
    if not text.isdigit() or not 0 < int(text) < 2**31:
        raise InvalidInput(
            f"`{validation.shown(str(value), 40)}` is not a case number.",
            "`/pnc ztp` lists the open cases with their numbers (e.g. `12`).",
        )
    return int(text)


def _status(word: str) -> ZtpStatus:
    wanted = zt.WORDS.get(word.strip().lower())
    if wanted is None:
        close = close_matches(word.strip().lower(), list(zt.WORDS), n=1)
        hint = f"Did you mean `{close[0]}`? " if close else ""
        raise InvalidInput(
            f"`{validation.shown(word, 40)}` is not a step of a zero-tolerance case.",
            f"{hint}Record `investigating`, `action-plan` or `closed`.",
        )
    return wanted


def _check_move(number: int, current: str, wanted: ZtpStatus, closed_at: datetime | None) -> None:
    match zt.move(current, wanted):
        case zt.Move.CLOSED:
            when = f" on {closed_at:%Y-%m-%d}" if closed_at else ""
            raise ZtpCaseConflict(
                f"Case #{number} was closed{when}.",
                "A closed case stays closed; open a new one with `/pnc ztp open` if the "
                "problem is found again.",
            )
        case zt.Move.SAME:
            raise ZtpCaseConflict(
                f"Case #{number} is already `{zt.word_of(current)}`.",
                "Record the next step: "
                + ", ".join(f"`{zt.word_of(s)}`" for s in zt.ORDER[zt.ORDER.index(wanted) + 1 :])
                + ".",
            )
        case zt.Move.BACKWARDS:
            raise ZtpCaseConflict(
                f"Case #{number} is already `{zt.word_of(current)}`, past `{zt.word_of(wanted)}`.",
                "A case moves forward only: record a later step, or `closed`.",
            )
