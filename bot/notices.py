"""Who is told what (SPEC §3): an event in, the notices it causes out — one per recipient
organisation and channel, each with a unique idempotency key. Pure: the use cases write the rows
in the same transaction as the event, the dispatcher delivers them.

A buyer never sees another buyer's addresses or factories: every buyer gets its own message.
Factories get their notice in their language (Vietnamese factories default to Vietnamese, with
English below), and the Inspectorate in its country's ``inspectorate_language`` (Viet Nam's:
Vietnamese, with English below); buyers get English. A referral planned while the country has no
Inspectorate address has no addresses: it is written held (``outbox_row``) until one is
configured, and the staff alert of the designation says so.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from bot.countries import Catalogue, Country
from bot.vocabulary import Channel, NoticeKind, OutboxStatus, Recipient

FACTORY, BUYER, INSPECTORATE, STAFF = (
    Recipient.FACTORY,
    Recipient.BUYER,
    Recipient.INSPECTORATE,
    Recipient.STAFF,
)

#: SPEC §3: who hears of each event
RECIPIENTS: dict[str, frozenset[Recipient]] = {
    NoticeKind.AT_RISK_WARNING: frozenset({FACTORY, BUYER, STAFF}),
    NoticeKind.PROCESS_STOPPED: frozenset({FACTORY, BUYER, STAFF}),
    NoticeKind.PNC_DESIGNATED: frozenset({FACTORY, BUYER, INSPECTORATE, STAFF}),
    NoticeKind.READMISSION_APPLIED: frozenset({FACTORY, STAFF}),
    NoticeKind.READMISSION_APPROVED: frozenset({FACTORY, BUYER, STAFF}),
    NoticeKind.READMISSION_REJECTED: frozenset({FACTORY, BUYER, STAFF}),
    NoticeKind.UNANNOUNCED_SCHEDULED: frozenset({STAFF}),
}
#: facts only staff may see
STAFF_ONLY = frozenset({"visit_on"})
#: notice kinds that are urgent for staff
URGENT = frozenset(
    {NoticeKind.PNC_DESIGNATED, NoticeKind.DELIVERY_FAILED, NoticeKind.CHANNEL_PAUSED}
)


@dataclass(frozen=True)
class Party:
    """A recipient organisation: a factory or a buyer."""

    id: str
    name: str
    emails: tuple[str, ...]
    language: str | None = None


@dataclass(frozen=True)
class Notice:
    """One message to plan: the outbox row, without its times and status."""

    key: str
    kind: NoticeKind
    channel: Channel
    recipient_type: Recipient
    recipient_id: str
    recipient_name: str
    addresses: tuple[str, ...]
    language: str
    factory_id: str | None
    payload: dict[str, Any] = field(default_factory=dict)

    def message_id(self, domain: str) -> str:
        """The same for every retry of this notice: derived from its key."""
        digest = hashlib.sha256(self.key.encode()).hexdigest()[:32]
        return f"<pnc.{digest}@{domain}>"


def issues(codes: Iterable[str], catalogue: Catalogue) -> list[dict[str, str]]:
    """Codes with their names in both languages, for the templates."""
    return [
        {"code": c, "name": catalogue.name(c, "en"), "name_vi": catalogue.name(c, "vi")}
        for c in codes
    ]


def event_context(
    kind: str,
    payload: dict[str, Any],
    factory: Party,
    country: Country,
    cycle_end: date | None,
) -> dict[str, Any]:
    """What every notice of an event says: the factory, the assessment, the issues, k of n."""
    context: dict[str, Any] = {
        "event": kind,
        "factory": {"id": factory.id, "name": factory.name},
        "country": {"code": country.code, "name": country.name},
        "cycle_end": cycle_end.isoformat() if cycle_end else None,
        "threshold": payload.get("threshold", country.rules.threshold),
        "consecutive": payload.get("consecutive", country.rules.consecutive),
    }
    for name in (
        "k",
        "assessed_on",
        "kind",
        "application_id",
        "visit_on",
        "note",
        "applied_on",
        "decided_on",
        "evidence",
        "reports",
        "chart",
    ):
        if name in payload:
            context[name] = payload[name]
    if "nc_issues" in payload:
        context["issues"] = issues(payload["nc_issues"], country.catalogue)
    if "basis" in payload:
        context["basis"] = [
            {"assessed_on": b["assessed_on"], "issues": issues(b["nc_issues"], country.catalogue)}
            for b in payload["basis"]
        ]
    return context


def plan(
    event_key: str,
    kind: str,
    payload: dict[str, Any],
    factory: Party,
    country: Country,
    buyers: Sequence[Party],
    cycle_end: date | None = None,
    managers: Sequence[str] = (),
) -> tuple[list[Notice], list[str]]:
    """The notices an event causes, and the warnings to show staff (e.g. no Inspectorate
    address configured, a recipient without an email address)."""
    who = RECIPIENTS.get(kind, frozenset())
    staff_context = event_context(kind, payload, factory, country, cycle_end)
    # an unannounced verification visit stays unannounced: only staff learn its date
    context = {k: v for k, v in staff_context.items() if k not in STAFF_ONLY}
    notices: list[Notice] = []
    warnings: list[str] = []
    notice_kind = NoticeKind(kind)
    if FACTORY in who:
        if factory.emails:
            notices.append(
                Notice(
                    key=f"{event_key}/email/factory",
                    kind=notice_kind,
                    channel=Channel.EMAIL,
                    recipient_type=FACTORY,
                    recipient_id=factory.id,
                    recipient_name=factory.name,
                    addresses=factory.emails,
                    language=factory.language or country.language,
                    factory_id=factory.id,
                    payload={**context, "recipient": FACTORY},
                )
            )
        else:
            warnings.append(f"factory {factory.id} has no email address")
    if BUYER in who:
        for buyer in buyers:
            if not buyer.emails:
                warnings.append(f"buyer {buyer.id} has no email address")
                continue
            notices.append(
                Notice(
                    key=f"{event_key}/email/buyer/{buyer.id}",
                    kind=notice_kind,
                    channel=Channel.EMAIL,
                    recipient_type=BUYER,
                    recipient_id=buyer.id,
                    recipient_name=buyer.name,
                    addresses=buyer.emails,
                    language="en",
                    factory_id=factory.id,
                    payload={
                        **context,
                        "recipient": BUYER,
                        "buyer": {"id": buyer.id, "name": buyer.name},
                    },
                )
            )
    referral_held = False
    if INSPECTORATE in who:
        # planned even with no address: it is then written held, and sent once one is configured
        notices.append(
            Notice(
                key=f"{event_key}/email/inspectorate",
                kind=NoticeKind.INSPECTORATE_REFERRAL,
                channel=Channel.EMAIL,
                recipient_type=INSPECTORATE,
                recipient_id=country.code,
                recipient_name=inspectorate_name(country),
                addresses=country.inspectorate_emails,
                language=country.inspectorate_language,
                factory_id=factory.id,
                payload={**context, "recipient": INSPECTORATE},
            )
        )
        if not country.inspectorate_emails:
            referral_held = True
            warnings.append(
                f"no Labour Inspectorate address is configured for {country.name}: the referral "
                "waits until one is"
            )
    if STAFF in who and country.staff_channel:
        notices.append(
            Notice(
                key=f"{event_key}/slack/staff",
                kind=notice_kind,
                channel=Channel.SLACK,
                recipient_type=STAFF,
                recipient_id=country.code,
                recipient_name="staff",
                addresses=(country.staff_channel,),
                language="en",
                factory_id=factory.id,
                payload={
                    **staff_context,
                    "recipient": STAFF,
                    "urgent": notice_kind in URGENT,
                    "buyers": [b.name for b in buyers],
                    "warnings": warnings,
                    "managers": list(managers),
                    "referral_held": referral_held,
                },
            )
        )
    return notices, warnings


def inspectorate_name(country: Country) -> str:
    """The name a referral is addressed to."""
    return f"Labour Inspectorate ({country.name})"


def staff_alert(
    key: str,
    kind: NoticeKind,
    country: Country | None,
    channel: str | None,
    context: dict[str, Any],
    factory_id: str | None = None,
) -> Notice | None:
    """A message for the staff channel only (history changed, a notice that failed, …)."""
    target = (country.staff_channel if country else None) or channel
    if not target:
        return None
    return Notice(
        key=key,
        kind=kind,
        channel=Channel.SLACK,
        recipient_type=STAFF,
        recipient_id=country.code if country else "-",
        recipient_name="staff",
        addresses=(target,),
        language="en",
        factory_id=factory_id,
        payload={"event": kind, "urgent": kind in URGENT, "recipient": STAFF, **context},
    )


# --- the staff alert counting the dead notices of one cause --------------------------------------

_ADDRESS = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
#: a word with a digit in it (a number, an id, an IP address); dots at its end are not its own
_NUMBERED = re.compile(r"[\w.+-]*\d[\w.+-]*")
#: an SMTP reply code (550) or enhanced status code (5.1.1): these are kept
_CODE = re.compile(r"[2-5]\d\d|[245]\.\d{1,3}\.\d{1,3}")
#: factories and notice numbers an alert names (its count counts them all)
SHOWN = 5


def _numbered(match: re.Match[str]) -> str:
    word = match[0].rstrip(".")
    return (word if _CODE.fullmatch(word) else "#") + match[0][len(word) :]


def cause_of(channel: str, error: str) -> str:
    """What makes dead notices one cause: the same channel and the same error once addresses
    and numbers are set aside (SMTP reply and status codes kept), each part once — so one
    refusal of many recipients, with each address and queue id in its words, is one cause."""
    text = _NUMBERED.sub(_numbered, _ADDRESS.sub("@", error)).casefold()
    parts = dict.fromkeys(" ".join(part.split()) for part in text.split(";"))
    return f"{channel}: " + "; ".join(p for p in parts if p)[:500]


def death(
    notice_id: int,
    kind: str,
    channel: str,
    recipient: str,
    factory: dict[str, Any] | None,
    error: str,
    attempts: int,
) -> dict[str, Any]:
    """The context of a new ``delivery_failed`` alert: the first dead notice of its cause, told
    as one notice, and the counts a summary of more gives."""
    return {
        "notice": kind,
        "recipient": recipient,
        "factory": factory,
        "error": error,
        "attempts": attempts,
        "channel": channel,
        "count": 1,
        "kinds": {kind: 1},
        "factories": [factory] if factory else [],
        "more_factories": False,
        "notices": [notice_id],
    }


def one_more_death(
    summary: dict[str, Any], notice_id: int, kind: str, factory: dict[str, Any] | None
) -> dict[str, Any]:
    """An alert's context counting one more dead notice of its cause: the count, the count of
    its kind, its factory among the first few (or "and others"), its number among the first."""
    kinds = dict(summary.get("kinds") or {})
    kinds[kind] = kinds.get(kind, 0) + 1
    factories = list(summary.get("factories") or [])
    more = bool(summary.get("more_factories"))
    if factory and all(f.get("id") != factory.get("id") for f in factories):
        if len(factories) < SHOWN:
            factories.append(factory)
        else:
            more = True
    numbers = list(summary.get("notices") or [])
    return summary | {
        "count": int(summary.get("count") or 1) + 1,
        "kinds": kinds,
        "factories": factories,
        "more_factories": more,
        "notices": numbers if len(numbers) >= SHOWN else [*numbers, notice_id],
    }


def outbox_row(
    notice: Notice, now: datetime, domain: str, event_id: int | None = None
) -> dict[str, Any]:
    """The outbox row of a notice, due now — or held, if it has nobody to go to yet (a referral
    while no Inspectorate address is configured): the dispatcher claims only waiting rows."""
    return {
        "key": notice.key,
        "kind": notice.kind,
        "channel": notice.channel,
        "recipient_type": notice.recipient_type,
        "recipient_id": notice.recipient_id,
        "recipient_name": notice.recipient_name[:200],
        "addresses": list(notice.addresses),
        "delivered_to": [],
        "language": notice.language,
        "factory_id": notice.factory_id,
        "event_id": event_id,
        "payload": notice.payload,
        "message_id": notice.message_id(domain),
        "status": OutboxStatus.PENDING if notice.addresses else OutboxStatus.HELD,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
