"""Escalating a zero-tolerance case just opened (``bot.usecases.ztp``): the urgent staff
alert, the email to the authorities where the country configures their addresses (in their
language; Viet Nam's: Vietnamese with English below), and the reminders of its two deadlines —
all in the caller's transaction, keyed by the case's key so that each is written once. The
factory is not emailed: the protocol escalates to the authorities."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from bot import notices
from bot import zero_tolerance as zt
from bot.countries import Country
from bot.notices import Notice, Party
from bot.usecases import access
from bot.usecases.core import Core
from bot.vocabulary import Channel, NoticeKind, Recipient, ReminderKind, ZtpSubject
from store import reminders
from store.db import Session

log = logging.getLogger(__name__)


async def escalate(
    core: Core,
    s: Session,
    case: zt.CaseLine,
    factory: Party,
    country: Country,
    kind: str | None,
) -> tuple[tuple[str, ...], bool]:
    """The notices and reminders of a case just opened: the addresses emailed, and whether
    the staff alert could be written (a staff channel is configured)."""
    ztp = country.ztp
    context = _context(core, case, country, kind)
    rows: list[Notice] = []
    if ztp.emails:
        rows.append(
            Notice(
                key=f"{case.key}/email/authority",
                kind=NoticeKind.ZTP_REFERRAL,
                channel=Channel.EMAIL,
                recipient_type=Recipient.AUTHORITY,
                recipient_id=country.code,
                recipient_name=authority_name(country),
                addresses=ztp.emails,
                language=ztp.language,
                factory_id=factory.id,
                payload={**context, "recipient": Recipient.AUTHORITY},
            )
        )
    alert = notices.staff_alert(
        f"{case.key}/slack/staff",
        NoticeKind.ZTP_OPENED,
        country,
        core.settings.staff_channel,
        {
            **context,
            "urgent": True,
            "authorities": list(ztp.emails),
            "managers": await access.managers(core, s),
        },
        factory_id=factory.id,
    )
    if alert is not None:
        rows.append(alert)
    else:
        log.warning(
            "zero-tolerance case %s of %s: no staff channel is configured (PNC_STAFF_CHANNEL)%s",
            case.id,
            case.factory_id,
            "" if ztp.emails else ", nor any authorities' address (ztp_emails): nobody is told",
        )
    await core.enqueue(s, rows)
    subject, now = ZtpSubject(case.id), core.clock()
    await reminders.add_reminders(
        s,
        [
            reminders.reminder(
                ReminderKind.ZTP_INVESTIGATION, subject, case.deadlines.investigation, now
            ),
            reminders.reminder(
                ReminderKind.ZTP_ACTION_PLAN, subject, case.deadlines.action_plan, now
            ),
        ],
    )
    core.reminders_written(s)
    return ztp.emails, alert is not None


def authority_name(country: Country) -> str:
    """The name the authorities' email is addressed to."""
    return f"Authorities ({country.name})"


def _context(core: Core, case: zt.CaseLine, country: Country, kind: str | None) -> dict[str, Any]:
    """What the alert and the email say of a case."""
    catalogue = country.catalogue
    return {
        "case": {
            "id": case.id,
            "code": case.code,
            "issue": catalogue.name(case.code),
            "issue_vi": catalogue.name(case.code, "vi"),
            "cluster": next((i.cluster for i in catalogue if i.code == case.code), None),
            "by_hand": case.by_hand,
            "note": case.note,
            "opened_by": case.opened_by,
            "assessed_on": case.assessed_on.isoformat() if case.assessed_on else None,
            "kind": kind,
        },
        "factory": {"id": case.factory_id, "name": case.factory_name},
        "country": {"code": country.code, "name": country.name},
        "opened_at": _local(core, case.opened_at),
        "investigation_due": _local(core, case.deadlines.investigation),
        "action_plan_due": _local(core, case.deadlines.action_plan),
        "investigation_hours": country.ztp.investigation_hours,
        "action_plan_hours": country.ztp.action_plan_hours,
        "timezone": core.settings.timezone,
    }


def _local(core: Core, moment: datetime) -> str:
    return moment.astimezone(core.settings.tz).strftime("%Y-%m-%d %H:%M")
