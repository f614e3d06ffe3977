"""The rules in force: when ``PNC_CONFIG`` changes a country's rules (threshold, consecutive,
coverage, public reporting since), the stored snapshots of its factories follow, at start-up
and on ``pnc-bot db upgrade``."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bot import notices, policy
from bot.usecases.core import Core
from bot.vocabulary import HeldBecause, NoticeKind, NoticeMode
from store import registry
from store.bulk import chunks
from store.rules import fingerprints, set_fingerprints

if TYPE_CHECKING:
    from bot.usecases.reevaluation import Reevaluation

log = logging.getLogger(__name__)

#: how many factories and events a rules-changed alert names before "and N more"
_LISTED = 20
#: factories re-evaluated together when the rules change (bounds the histories held in memory)
_REEVALUATED_AT_ONCE = 1000


def fingerprint(rules: policy.Rules) -> str:
    """What a country's rules are, as a short stable digest. The counted assessment kinds are
    part of it only when they are not the default, so that a country left at the default keeps
    the digest it had before kinds could be set (an upgrade re-evaluates nothing)."""
    parts = [
        str(rules.pnc_enabled),
        rules.public_reporting_since.isoformat(),
        str(rules.threshold),
        str(rules.consecutive),
    ]
    if rules.counted_kinds != policy.COUNTED_KINDS:
        parts.append("kinds=" + ",".join(sorted(rules.counted_kinds)))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


async def refresh(core: Core) -> dict[str, int]:
    """Bring the stored snapshots in line with the rules in force (call it at start-up).

    The factories of each country whose rules differ from those recorded in the database are
    re-evaluated: their state and streak follow the new rules (the at-risk list, agendas, the
    cycle-end reminder). Events the new rules give rise to are recorded but held for staff
    review (``HeldBecause.RULES_CHANGED``; ``/pnc review`` releases or dismisses them) — nobody
    is notified of a rules change on its own — and the undelivered notices of
    events they no longer support are cancelled; staff get one alert per country summarising
    it. The new fingerprints are written in the same transaction. Returns country → factories
    re-evaluated, for the countries that have any.
    """
    wanted = {code: fingerprint(c.rules) for code, c in core.countries.items()}
    async with core.db.transaction() as s:  # the usual answer, without taking the writer
        recorded = await fingerprints(s)
    if all(recorded.get(c) == f for c, f in wanted.items()):
        return {}
    # only now: every command starts by checking the rules, and they seldom change
    from bot.usecases.reevaluation import reevaluate

    async with core.db.transaction(write=True) as s:
        recorded = await fingerprints(s)
        changed = sorted(c for c, f in wanted.items() if recorded.get(c) != f)
        if not changed:
            return {}
        ids = await registry.factory_ids_in(s, changed)
        facts = await registry.factory_facts(s, ids, lock=True)
        results: dict[str, Reevaluation] = {}
        for part in chunks(ids, _REEVALUATED_AT_ONCE):
            results |= await reevaluate(
                core, s, part, NoticeMode.HELD, alerts=False, held_because=HeldBecause.RULES_CHANGED
            )
        done: dict[str, int] = {}
        for code in changed:
            mine = [fid for fid in ids if facts[fid].country == code]
            if not mine:
                continue
            done[code] = len(mine)
            summary = _summary(mine, facts, results)
            log.info("rules of %s: %d factories re-evaluated, %s", code, len(mine), summary)
            if not any(summary["counts"].values()):
                continue
            country = core.countries[code]
            core.audit_system(s, "rules.changed", code, summary["counts"])
            alert = notices.staff_alert(
                f"rules_changed/{code}/{wanted[code][:16]}/{core.clock():%Y%m%dT%H%M%S}",
                NoticeKind.RULES_CHANGED,
                country,
                core.settings.staff_channel,
                {
                    **summary,
                    "country": {"code": code, "name": country.name},
                    "rules": _context(country.rules),
                },
            )
            if alert is not None:
                await core.enqueue(s, [alert])
        await set_fingerprints(s, {c: wanted[c] for c in changed}, core.clock())
    return done


def _context(rules: policy.Rules) -> dict[str, Any]:
    return {
        "pnc_enabled": rules.pnc_enabled,
        "public_reporting_since": rules.public_reporting_since.isoformat(),
        "threshold": rules.threshold,
        "consecutive": rules.consecutive,
    }


def _summary(
    ids: Sequence[str], facts: Mapping[str, Any], results: Mapping[str, Reevaluation]
) -> dict[str, Any]:
    """What re-evaluating a country's factories under its new rules changed."""
    moved = [
        {"id": fid, "before": facts[fid].state, "label": results[fid].evaluation.label}
        for fid in ids
        if results[fid].evaluation.state.value != facts[fid].state
        or results[fid].evaluation.streak != facts[fid].streak
    ]
    held = [e.key for fid in ids for e in results[fid].new_events]
    unsupported = [k for fid in ids for k in results[fid].contradicted]
    return {
        "factories": len(ids),
        "counts": {"changed": len(moved), "held": len(held), "unsupported": len(unsupported)},
        "changed": moved[:_LISTED],
        "held": held[:_LISTED],
        "unsupported": unsupported[:_LISTED],
    }
