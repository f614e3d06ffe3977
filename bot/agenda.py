"""Before a quarterly buyer call: each subscribing buyer's list of its own factories at risk
or designated, and the staff's agenda grouped by buyer. Pure: the reminder runner reads the
rows and writes the notices this plans.

A buyer never sees another buyer's name, addresses or factories: every buyer gets its own
message, and the factories it lists carry nothing about their other buyers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Protocol

from bot import policy
from bot.countries import Countries
from bot.notices import Notice
from bot.vocabulary import CallSubject, Channel, NoticeKind, Recipient

#: the heading of the factories no buyer subscribes to
NO_BUYER = "(no subscribing buyer)"


class Watched(Protocol):
    """A factory at risk or designated, with one of its subscribing buyers (or none)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def country(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def streak(self) -> int: ...
    @property
    def last_on(self) -> date | None: ...
    @property
    def buyer_id(self) -> str | None: ...
    @property
    def buyer_name(self) -> str | None: ...
    @property
    def buyer_emails(self) -> Sequence[str] | None: ...


def buyer_call(
    call: CallSubject,
    held_at: str,
    rows: Sequence[Watched],
    issues: Mapping[str, Sequence[str]],
    countries: Countries,
    staff_channel: str | None,
    remediation: Mapping[str, Mapping[str, int]] | None = None,
) -> tuple[list[Notice], list[str]]:
    """The notices of a call held at ``held_at`` (as people read it): an email to each buyer
    with an address, and the agenda in each staff channel for its countries' factories.
    ``rows`` are the watched factories, one row per subscribing buyer; ``issues`` the codes
    found at each factory's last assessment; ``remediation`` where a factory's issues stand
    (``bot.remediation.Remediation.counts``). Returns the notices and the warnings to log."""
    progress = remediation or {}
    factories: dict[str, dict[str, Any]] = {}
    by_buyer: dict[str, dict[str, Any]] = {}
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
                "remediation": dict(progress[r.id]) if r.id in progress else None,
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
    planned: list[Notice] = []
    warnings: list[str] = []
    for buyer in by_buyer.values():  # each buyer: its own factories only, nothing of others
        if not buyer["emails"]:
            warnings.append(f"buyer {buyer['id']} has no email address: no list for the call")
            continue
        planned.append(
            Notice(
                key=f"{call}/email/buyer/{buyer['id']}",
                kind=NoticeKind.BUYER_CALL_REMINDER,
                channel=Channel.EMAIL,
                recipient_type=Recipient.BUYER,
                recipient_id=buyer["id"],
                recipient_name=buyer["name"],
                addresses=buyer["emails"],
                language="en",
                factory_id=None,
                payload={
                    "recipient": Recipient.BUYER,
                    "buyer": {"id": buyer["id"], "name": buyer["name"]},
                    "call": {"held_at": held_at},
                    "factories": [_without_buyers(f) for f in buyer["factories"]],
                    "country": {"code": "", "name": ""},
                },
            )
        )
    planned += _staff_agendas(call, held_at, factories, countries, staff_channel)
    return planned, warnings


def _staff_agendas(
    call: CallSubject,
    held_at: str,
    factories: Mapping[str, dict[str, Any]],
    countries: Countries,
    staff_channel: str | None,
) -> list[Notice]:
    """The agenda grouped by buyer, in each staff channel for its countries' factories."""
    channels: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for factory in factories.values():
        channel = (countries.get(factory["country"]) or countries.default).staff_channel
        channel = channel or staff_channel
        if channel:
            channels[channel].append(factory)
    if not channels and staff_channel:
        channels[staff_channel] = []
    planned = []
    for channel, listed in channels.items():
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for factory in listed:  # grouped by buyer id (two buyers may share a name)
            for buyer in factory["buyers"] or [(NO_BUYER, "")]:
                groups[buyer].append(_without_buyers(factory))
        planned.append(
            Notice(
                key=f"{call}/slack/staff/{channel}",
                kind=NoticeKind.BUYER_CALL_AGENDA,
                channel=Channel.SLACK,
                recipient_type=Recipient.STAFF,
                recipient_id=channel,
                recipient_name="staff",
                addresses=(channel,),
                language="en",
                factory_id=None,
                payload={
                    "recipient": Recipient.STAFF,
                    "urgent": False,
                    "call": {"held_at": held_at},
                    "groups": [
                        {"buyer": name, "factories": f} for (name, _), f in sorted(groups.items())
                    ],
                },
            )
        )
    return planned


def _without_buyers(factory: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in factory.items() if k != "buyers"}
