"""Notifying events: the outbox rows of the events due — one notice per recipient
organisation and channel, planned by ``bot.notices`` — and the staff alerts of histories that
changed under events people were told of. Re-evaluation calls it for the events it plans; a
staff review, for a held event it releases."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, NamedTuple

from bot import notices
from bot.usecases import access
from bot.usecases.core import Core
from bot.usecases.follow_ups import Followed
from bot.vocabulary import NoticeKind
from store import history, registry
from store.db import Session
from store.history import Histories

log = logging.getLogger(__name__)


class HistoryChanged(NamedTuple):
    """A factory whose history changed under notified events."""

    factory_id: str
    #: the keys of the notified events it no longer supports
    contradicted: tuple[str, ...]
    #: the keys of its new events, held for staff review
    held: tuple[str, ...]
    #: their ids: the numbers ``/pnc review`` knows them by
    numbers: tuple[int, ...] = ()


class Notified(NamedTuple):
    """What ``notify`` wrote: the factories as recipients (with their cycle ends, which the
    follow-ups read again), the notices, and what could not be planned (also logged)."""

    parties: dict[str, tuple[notices.Party, date | None]]
    notices: list[notices.Notice]
    warnings: list[str]


async def notify(
    core: Core,
    s: Session,
    due: Sequence[Followed],
    payloads: Mapping[int, dict[str, Any]],
    h: Histories,
    changed: Sequence[HistoryChanged] = (),
) -> Notified:
    """Write the outbox rows of the events ``due`` (their notices saying ``payloads[event id]``)
    and the staff alerts of ``changed`` histories, in the caller's transaction. Re-evaluation
    calls it for the events it plans; a staff review, for a held event it releases."""
    if not due and not changed:
        return Notified({}, [], [])
    wanted = sorted({f.factory_id for f in due} | {c.factory_id for c in changed})
    parties = await registry.factory_parties(s, wanted, h.factories)
    buyers = await registry.subscriber_parties(s, wanted)
    managers = await access.managers(core, s)
    rows: list[notices.Notice] = []
    warned: list[str] = []
    event_of: dict[str, int] = {}
    for f in due:
        party, cycle_end = parties[f.factory_id]
        facts = payloads[f.event_id]
        if f.event.application_id is not None:
            facts = {**facts, **await _application_facts(s, f.event.application_id)}
        planned, warnings = notices.plan(
            f.event.key,
            f.event.kind.value,
            facts,
            party,
            core.countries.country(h.countries[f.factory_id]),
            buyers.get(f.factory_id, []),
            cycle_end,
            managers,
        )
        for warning in warnings:
            log.warning("%s: %s", f.event.key, warning)
        warned += warnings
        rows += planned
        event_of.update({n.key: f.event_id for n in planned})
    written = list(rows)
    for change in changed:
        alert = history_changed_alert(core, change, parties[change.factory_id][0], h)
        if alert is not None:
            rows.append(alert)
    await core.enqueue(s, rows, event_of)
    return Notified(parties, written, warned)


def history_changed_alert(
    core: Core, change: HistoryChanged, factory: notices.Party, h: Histories
) -> notices.Notice | None:
    fid = change.factory_id
    digest = hashlib.sha256("|".join(change.contradicted + change.held).encode()).hexdigest()
    return notices.staff_alert(
        f"{fid}/history_changed/{digest[:16]}",
        NoticeKind.HISTORY_CHANGED,
        core.countries.country(h.countries[fid]),
        core.settings.staff_channel,
        {
            "factory": {"id": fid, "name": factory.name},
            "unsupported": list(change.contradicted),
            "held": list(change.held),
            "numbers": list(change.numbers),
        },
        factory_id=fid,
    )


async def _application_facts(s: Session, application_id: int) -> dict[str, Any]:
    """What readmission notices say about the application."""
    application = await history.get_application(s, application_id)
    if application is None:
        return {}
    return {
        "applied_on": application.applied_on.isoformat(),
        "evidence": list(application.evidence),
        "reports": list(application.inspectorate_reports),
        "visit_on": application.unannounced_on.isoformat() if application.unannounced_on else None,
        "decided_on": application.decided_on.isoformat() if application.decided_on else None,
        "note": application.decision_note,
    }
