"""Re-evaluation: what every change to a history leads to, in one transaction.

    history → policy (pure) → events → notices → follow-ups

Each use case that changes a history (an assessment recorded, amended or withdrawn, a
readmission step, an import, a change of rules) calls ``reevaluate`` inside its writing
transaction. The steps:

1. **derive** (pure): what each factory's history means now, and how its events differ from
   those recorded (each event has a stable key);
2. **plan** (pure, given what people were told): the event rows to write, the events to
   notify, those to mark unsupported or supported again, the snapshots to rewrite;
3. **record** the plan;
4. **notify** (``notify``): the outbox rows of the events due, and a "history changed" alert
   where notified events lost their support — the bot never sends contradicting notices on its
   own, so new events are then held for staff review (``review`` releases or dismisses them),
   with why (``HeldBecause``) and what people had been told;
5. **follow up**: what a designation or an application leaves to do (``follow_ups``).
6. **zero tolerance**: findings of zero-tolerance codes open their cases (``ztp.open_found``),
   never counted towards PNC.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot import chart, policy
from bot.countries import Countries
from bot.policy import Evaluation, Event, EventChanges, EventKind
from bot.usecases import follow_ups, progress, ztp
from bot.usecases.core import Core
from bot.usecases.follow_ups import Ended, Followed
from bot.usecases.notifying import HistoryChanged, notify
from bot.vocabulary import HeldBecause, NoticeMode
from store import history, outbox, registry
from store.db import Session
from store.history import Histories, RecordedEvent
from store.models import Factory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reevaluation:
    evaluation: Evaluation
    #: events recorded now, and events supported again of which nobody had been told
    new_events: tuple[Event, ...]
    #: keys of already-notified events the history no longer supports ("history changed")
    contradicted: tuple[str, ...]


@dataclass(frozen=True)
class StateOutcome:
    """What a step of the workflow left the factory in."""

    factory_id: str
    factory_name: str
    label: str
    state: str
    new_events: tuple[Event, ...]
    contradicted: tuple[str, ...]

    @classmethod
    def of(cls, factory: Factory, result: Reevaluation) -> StateOutcome:
        return cls(
            factory.id,
            factory.name,
            result.evaluation.label,
            result.evaluation.state.value,
            result.new_events,
            result.contradicted,
        )


async def reevaluate(
    core: Core,
    s: Session,
    factory_ids: Sequence[str],
    mode: NoticeMode,
    histories: Histories | None = None,
    *,
    alerts: bool = True,
    held_because: HeldBecause | None = None,
) -> dict[str, Reevaluation]:
    """Re-derive the factories' events from their histories and record what changed.

    New events get ``mode``; when it is ``DUE`` their notices are written to the outbox here,
    in the same transaction. An event the history no longer supports has its undelivered
    notices cancelled; if people were already told of it, staff get a "history changed" alert
    and the new events are held for their review. An event the history supports again, of
    which nobody was told, is planned afresh like a new one. ``histories`` may be given by a
    caller that already holds them (a bulk import). With ``alerts=False`` the caller reports
    changed histories itself (the results name the contradicted events). ``held_because`` says
    why a caller holds new events (``mode`` ``HELD``); events held because the history changed
    under notified ones say so themselves.
    """
    now = core.clock()
    h = histories or await history.load_histories(s, factory_ids)
    recorded = await history.event_index(s, factory_ids)
    # only notices written now show a chart (a held event's are written when it is released)
    charted = mode is NoticeMode.DUE
    derived = [
        derive(core.countries, h, fid, recorded.get(fid, []), verdicts=charted)
        for fid in factory_ids
    ]
    gone = [d.known[k].id for d in derived for k in d.changes.unsupported]
    back = [
        d.known[k].id
        for d in derived
        for k in d.changes.restored
        if d.known[k].notice == NoticeMode.DUE
    ]
    # notices of events no longer supported: undelivered ones are cancelled; the rest told
    told = await outbox.cancel_unsent_notices(s, gone) if gone else set()
    # events supported again: told ones stand as they are; the others are planned afresh
    told_back = await outbox.told_events(s, back) if back else set()
    ids = await history.reserve_event_ids(s, sum(len(d.changes.new) for d in derived))
    plan = Plan(mode, now, h, told, told_back, iter(ids), held_because)
    for d in derived:
        plan.add(d, alerts=alerts)
    await _record(s, plan, now)
    for change in plan.changed:
        log.warning(
            "history of %s changed under notified events %s", change.factory_id, change.contradicted
        )
        core.audit_system(
            s,
            "history.changed",
            change.factory_id,
            {"unsupported": list(change.contradicted), "held": change.held},
        )
    notified = await notify(core, s, plan.due, plan.payloads, h, plan.changed)
    await follow_ups.end(core, s, plan.ended)
    await follow_ups.begin(core, s, [*plan.due, *plan.resumed], plan.back, notified.parties)
    await progress.reschedule(core, s, h, factory_ids, live=mode is NoticeMode.DUE)
    # zero-tolerance findings open their cases (never counted towards PNC)
    await ztp.open_found(core, s, factory_ids, h, mode)
    return plan.results


# --- 1. derive --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Derived:
    """What one factory's history means now, against the events recorded for it."""

    factory_id: str
    evaluation: Evaluation
    changes: EventChanges
    #: the recorded events, by key
    known: Mapping[str, RecordedEvent]


def derive(
    countries: Countries,
    h: Histories,
    fid: str,
    recorded: Sequence[RecordedEvent],
    *,
    verdicts: bool = True,
) -> Derived:
    """``verdicts=False`` leaves out what each assessment meant, which only the notices' chart
    (``payload``) reads: a historic import or a change of rules, notifying nobody, is spared
    it."""
    evaluation = policy.evaluate(
        countries.country(h.countries[fid]).rules,
        fid,
        h.assessments.get(fid, []),
        h.readmissions.get(fid, []),
        verdicts=verdicts,
    )
    known = {r.key: r for r in recorded}
    changes = policy.diff_events(
        evaluation.events, {k: r.unsupported_at is None for k, r in known.items()}
    )
    return Derived(fid, evaluation, changes, known)


# --- 2. plan ----------------------------------------------------------------------------------


@dataclass
class Plan:
    """What re-evaluating some factories changes, built factory by factory without I/O from
    what people were already told (``told``: events no longer supported of which a notice
    reached someone; ``told_back``: the same, of events supported again)."""

    mode: NoticeMode
    now: datetime
    h: Histories
    told: set[int]
    told_back: set[int]
    ids: Iterator[int]
    #: why the caller holds new events (when ``mode`` is ``HELD``)
    held_because: HeldBecause | None = None
    #: event rows to insert, and rows of events supported again to rewrite
    new_rows: list[dict[str, Any]] = field(default_factory=list)
    replanned: list[dict[str, Any]] = field(default_factory=list)
    #: events to notify now
    due: list[Followed] = field(default_factory=list)
    #: notified events supported again: what they left to do resumes
    resumed: list[Followed] = field(default_factory=list)
    #: events no longer supported that left something to do
    ended: list[Ended] = field(default_factory=list)
    changed: list[HistoryChanged] = field(default_factory=list)
    unsupported: list[int] = field(default_factory=list)
    restored: list[int] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, Reevaluation] = field(default_factory=dict)

    @property
    def payloads(self) -> dict[int, dict[str, Any]]:
        """What the notices of the events written now will say, by event id."""
        return {r["id"]: r["payload"] for r in (*self.new_rows, *self.replanned)}

    @property
    def back(self) -> set[int]:
        """The ids of events supported again, notified now or before."""
        return {r["id"] for r in self.replanned} | {f.event_id for f in self.resumed}

    def add(self, d: Derived, *, alerts: bool) -> None:
        fid, evaluation, changes, known = d.factory_id, d.evaluation, d.changes, d.known
        contradicted = tuple(
            k
            for k in changes.unsupported
            if known[k].notice == NoticeMode.DUE and known[k].id in self.told
        )
        mode, why = self.mode, self.held_because
        if contradicted and self.mode == NoticeMode.DUE:
            mode, why = NoticeMode.HELD, HeldBecause.HISTORY_CHANGED
        held = _held(mode, why, contradicted)
        by_id = {a.id: a for a in self.h.assessments.get(fid, [])}
        numbers = [next(self.ids) for _ in changes.new]
        for event, event_id in zip(changes.new, numbers, strict=True):
            self.new_rows.append(
                {
                    "id": event_id,
                    "key": event.key,
                    "factory_id": fid,
                    "kind": event.kind.value,
                    "occurred_on": event.on,
                    "assessment_id": event.assessment_id,
                    "application_id": event.application_id,
                    "payload": payload(event, by_id, evaluation),
                    "notice": mode,
                    "notified_at": self.now if mode == NoticeMode.DUE else None,
                    "created_at": self.now,
                    "unsupported_at": None,
                    **held,
                }
            )
            if mode == NoticeMode.DUE:
                self.due.append(Followed(event_id, event, fid))
        again = self._restored(d, mode, by_id, held)
        self.ended += [
            Ended(known[k].id, known[k].kind, known[k].application_id, fid, evaluation.designated)
            for k in changes.unsupported
            if known[k].kind in follow_ups.FOLLOWED_UP
        ]
        self.unsupported += [known[k].id for k in changes.unsupported]
        self.restored += [known[k].id for k in changes.restored]
        if (evaluation.state.value, evaluation.streak) != tuple(self.h.snapshots[fid]):
            self.snapshots.append(
                {"id": fid, "state": evaluation.state.value, "streak": evaluation.streak}
            )
        if contradicted and alerts:
            keys = tuple(e.key for e in (*changes.new, *again))
            numbers += [known[e.key].id for e in again]
            self.changed.append(HistoryChanged(fid, contradicted, keys, tuple(numbers)))
        self.results[fid] = Reevaluation(evaluation, changes.new + again, contradicted)

    def _restored(
        self,
        d: Derived,
        mode: NoticeMode,
        by_id: dict[int, policy.AssessmentRecord],
        held: dict[str, Any],
    ) -> tuple[Event, ...]:
        """Events supported again: those notified stand (what they left to do resumes); the
        others are planned afresh, like new ones. Returns the latter."""
        if not d.changes.restored:
            return ()
        back_here = [
            e
            for e in d.evaluation.events
            if e.key in d.changes.restored and d.known[e.key].notice == NoticeMode.DUE
        ]
        again = tuple(e for e in back_here if d.known[e.key].id not in self.told_back)
        self.resumed += [
            Followed(d.known[e.key].id, e, d.factory_id) for e in back_here if e not in again
        ]
        for event in again:
            event_id = d.known[event.key].id
            self.replanned.append(
                {
                    "id": event_id,
                    "payload": payload(event, by_id, d.evaluation),
                    "notice": mode,
                    "notified_at": self.now if mode == NoticeMode.DUE else None,
                    **held,
                }
            )
            if mode == NoticeMode.DUE:
                self.due.append(Followed(event_id, event, d.factory_id))
        return again


def _held(mode: NoticeMode, why: HeldBecause | None, told: tuple[str, ...]) -> dict[str, Any]:
    """Why an event written with ``mode`` waits for review, and what people were told then."""
    if mode != NoticeMode.HELD:
        return {"held_because": None, "held_told": []}
    return {"held_because": why.value if why else None, "held_told": list(told)}


def payload(
    event: Event, by_id: dict[int, policy.AssessmentRecord], evaluation: Evaluation
) -> dict[str, Any]:
    """What the notices of an event will say, frozen when the event is recorded."""
    facts: dict[str, Any] = {
        "threshold": evaluation.threshold,
        "consecutive": evaluation.consecutive,
    }
    if event.k is not None:
        facts["k"] = event.k
    if event.assessment_id is not None and event.assessment_id in by_id:
        a = by_id[event.assessment_id]
        facts.update(
            assessed_on=a.assessed_on.isoformat(), nc_issues=sorted(a.nc_issues), kind=a.kind
        )
    if event.kind is EventKind.PNC_DESIGNATED:
        facts["basis"] = [
            {
                "assessment_id": i,
                "assessed_on": by_id[i].assessed_on.isoformat(),
                "nc_issues": sorted(by_id[i].nc_issues),
            }
            for i in event.basis
        ]
    if event.application_id is not None:
        facts["application_id"] = event.application_id
        if event.kind is EventKind.UNANNOUNCED_SCHEDULED:
            facts["visit_on"] = event.on.isoformat()
    if event.kind in chart.CHARTED and evaluation.verdicts:
        facts["chart"] = chart.frozen_until(
            evaluation.verdicts, evaluation.threshold, event.assessment_id, event.on
        )
    return facts


# --- 3. record --------------------------------------------------------------------------------


async def _record(s: Session, plan: Plan, now: datetime) -> None:
    await history.add_events(s, plan.new_rows)
    await history.update_events(s, plan.replanned)
    await history.mark_events(s, plan.unsupported, unsupported_at=now)
    await history.mark_events(s, plan.restored, unsupported_at=None)
    await registry.set_snapshots(s, plan.snapshots)
