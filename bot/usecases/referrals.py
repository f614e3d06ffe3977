"""The Labour Inspectorate's referrals (SPEC §3: the Inspectorate is told of each designation).

A referral planned while its country has no Inspectorate address waits in the outbox, held:
the dispatcher claims only waiting notices. It goes out once an address is configured — at the
next start (``release_configured``, called by the composition root), or at once when a manager
asks (``send``). Its log is its outbox row (``store.referrals.referral_log``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

from bot import notices, validation
from bot.countries import DEFAULT_COUNTRY, Country
from bot.errors import Conflict, StateConflict
from bot.roles import Actor, Permission, RoleLevel
from bot.usecases import access, registry
from bot.usecases.core import Core
from store import referrals
from store.db import Session

log = logging.getLogger(__name__)

SEND = Permission("referral send", RoleLevel.MANAGER)


@dataclass(frozen=True)
class ReferralSent:
    """Referrals released by a manager: to whom, about which factory."""

    factory_id: str
    factory_name: str
    addresses: tuple[str, ...]
    count: int


def where_to_configure(country: Country) -> str:
    """What to set for a country's Inspectorate address."""
    where = f"`inspectorate_emails` under `[countries.{country.code}]` in the PNC_CONFIG file"
    if country.code == DEFAULT_COUNTRY:
        where += " (or PNC_INSPECTORATE_EMAIL)"
    return where


async def send(core: Core, actor: Actor, factory_id: str) -> ReferralSent:
    """Send the referrals of a factory waiting for an Inspectorate address, now that its
    country has one; refused if none waits, or while the country still has none."""
    await access.require(core, actor, SEND)
    fid = validation.identifier(factory_id, "factory id")
    async with core.db.transaction(write=True) as s:
        factory = await registry.existing_factory(s, fid, lock=True)
        held = await referrals.held_referrals(s, fid)
        if not held:
            raise StateConflict(
                f"No referral of `{fid}` to the Labour Inspectorate is waiting to be sent.",
                f"A referral waits only when the factory was designated while no Inspectorate "
                f"address was configured; `status {fid}` shows its referrals.",
            )
        country = core.countries.country(held[0].recipient_id)
        if not country.inspectorate_emails:
            raise Conflict(
                f"No Labour Inspectorate address is configured for {country.name}: the "
                f"referral of `{fid}` keeps waiting.",
                f"Set {where_to_configure(country)} and restart pnc-bot: the referral then goes "
                "out by itself.",
            )
        released = await _release(core, s, country, fid)
        core.audit(
            s,
            actor,
            "referral.send",
            fid,
            {"notices": [i for i, _ in released], "addresses": list(country.inspectorate_emails)},
        )
        core.notices_written(s)
    return ReferralSent(fid, factory.name, country.inspectorate_emails, len(released))


async def release_configured(core: Core) -> int:
    """Send the held referrals of every country that now has an Inspectorate address (at
    start-up, after the configuration is read); returns how many. Writes nothing when none
    can go."""
    async with core.db.transaction() as s:
        waiting = await referrals.held_countries(s)
    ready = [c for c in core.countries.values() if c.code in waiting and c.inspectorate_emails]
    if not ready:
        return 0
    total = 0
    async with core.db.transaction(write=True) as s:
        for country in ready:
            released = await _release(core, s, country, None)
            by_factory: dict[str | None, list[int]] = defaultdict(list)
            for notice_id, fid in released:
                by_factory[fid].append(notice_id)
            for fid, ids in by_factory.items():
                core.audit_system(
                    s,
                    "referral.released",
                    fid or country.code,
                    {"notices": ids, "addresses": list(country.inspectorate_emails)},
                )
            total += len(released)
        if total:
            core.notices_written(s)
    if total:
        log.info("%d held referrals to the Labour Inspectorate released: addressed now", total)
    return total


async def _release(
    core: Core, s: Session, country: Country, factory_id: str | None
) -> list[tuple[int, str | None]]:
    """Address a country's held referrals (of one factory, when given) and make them due."""
    return await referrals.release_referrals(
        s,
        core.clock(),
        country=country.code,
        addresses=country.inspectorate_emails,
        language=country.inspectorate_language,
        recipient_name=notices.inspectorate_name(country),
        factory_id=factory_id,
    )
