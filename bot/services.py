"""Use cases. Each public method is one transaction: it validates, loads the history, asks the
policy what it means, writes what changed (assessment, events, audit entry) together, and
commits — or raises a ``PncError`` having written nothing."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import notices, policy, validation
from bot.countries import Config, Country
from bot.errors import (
    AlreadyExists,
    Conflict,
    DuplicateAssessment,
    InvalidInput,
    PncError,
    UnknownAssessment,
    UnknownBuyer,
    UnknownFactory,
    UnknownNotice,
    UnknownSubscription,
)
from bot.policy import Evaluation, Event, EventKind
from bot.readmission import follow_up_for
from bot.roles import Actor, RoleLevel
from bot.schedule import local_moment, reminder
from bot.settings import Settings
from bot.views import (
    ApplicationLine,
    AssessmentLine,
    BuyerLine,
    EventLine,
    IssueLine,
    OutboxLine,
    OutboxView,
    PausedChannel,
    StatusView,
    Submission,
    WatchedFactory,
    WatchList,
)
from store import bulk, queries
from store.db import Database, after_commit
from store.models import (
    Assessment,
    AuditEntry,
    Buyer,
    Factory,
    Notice,
    OutboxMessage,
    PncEvent,
    Readmission,
    Role,
    Subscription,
    utcnow,
)

log = logging.getLogger(__name__)

#: who the bot's own entries are by (the audit log, follow-ups it closed)
SYSTEM = "pnc-bot"
#: events that leave something to do (``Services._follow_ups``)
_FOLLOWED_UP = frozenset({EventKind.PNC_DESIGNATED, EventKind.READMISSION_APPLIED})

Clock = Callable[[], datetime]


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


@dataclass(frozen=True)
class AssessmentOutcome:
    assessment_id: int
    factory_id: str
    factory_name: str
    assessed_on: date
    nc_count: int
    label: str
    state: str
    new_events: tuple[Event, ...]
    contradicted: tuple[str, ...]


class Services:
    def __init__(
        self, db: Database, config: Config, settings: Settings, clock: Clock = utcnow
    ) -> None:
        self.db = db
        self.config = config
        self.countries = config.countries
        self.settings = settings
        self.clock = clock
        #: called after a commit that wrote notices: wakes the dispatcher
        self.on_notices: Callable[[], None] | None = None
        #: called after a commit that wrote reminders: wakes the reminder runner
        self.on_reminders: Callable[[], None] | None = None

    def initial_state(self, country: str) -> str:
        """The state of a factory with no history yet."""
        return policy.evaluate(self.countries.country(country).rules, "", ()).state.value

    def today(self) -> date:
        """Today in the configured time zone (assessment dates are local dates)."""
        return self.clock().astimezone(self.settings.tz).date()

    # --- registry ---------------------------------------------------------------------------

    async def add_factory(
        self,
        actor: Actor,
        factory_id: str,
        name: str,
        country: str,
        emails: str | Iterable[str],
        language: str | None = None,
        cycle_end: str | date | None = None,
    ) -> Factory:
        await self.require(actor, "factory add")
        fid = validation.identifier(factory_id, "factory id")
        the_country = self.countries.country(country)
        now = self.clock()
        factory = Factory(
            id=fid,
            name=validation.text(name, "factory name"),
            country=the_country.code,
            emails=list(validation.emails(emails)),
            language=validation.language(language),
            cycle_end=validation.optional_date(cycle_end, "cycle end"),
            created_at=now,
            updated_at=now,
            state=self.initial_state(the_country.code),
        )
        async with self.db.transaction(write=True) as s:
            if await queries.get_factory(s, fid) is not None:
                raise AlreadyExists(
                    f"Factory `{fid}` is already registered.", f"See it with `status {fid}`."
                )
            s.add(factory)
            self.audit(s, actor, "factory.add", fid, {"name": factory.name, "country": country})
            await self._flush_unique(s, AlreadyExists(f"Factory `{fid}` is already registered."))
        return factory

    async def add_buyer(
        self, actor: Actor, buyer_id: str, name: str, emails: str | Iterable[str]
    ) -> Buyer:
        await self.require(actor, "buyer add")
        bid = validation.identifier(buyer_id, "buyer id")
        now = self.clock()
        buyer = Buyer(
            id=bid,
            name=validation.text(name, "buyer name"),
            emails=list(validation.emails(emails)),
            created_at=now,
            updated_at=now,
        )
        async with self.db.transaction(write=True) as s:
            if await queries.get_buyer(s, bid) is not None:
                raise AlreadyExists(f"Buyer `{bid}` is already registered.")
            s.add(buyer)
            self.audit(s, actor, "buyer.add", bid, {"name": buyer.name})
            await self._flush_unique(s, AlreadyExists(f"Buyer `{bid}` is already registered."))
        return buyer

    async def subscribe(self, actor: Actor, buyer_id: str, factory_id: str) -> bool:
        """Subscribe a buyer to a factory; False when it already was."""
        await self.require(actor, "subscribe")
        bid = validation.identifier(buyer_id, "buyer id")
        fid = validation.identifier(factory_id, "factory id")
        try:
            async with self.db.transaction(write=True) as s:
                await self._existing_buyer(s, bid)
                await self.existing_factory(s, fid)
                if await queries.get_subscription(s, bid, fid) is not None:
                    return False
                s.add(Subscription(buyer_id=bid, factory_id=fid, created_at=self.clock()))
                self.audit(s, actor, "subscription.add", fid, {"buyer": bid})
                await self._flush_unique(s, AlreadyExists(f"`{bid}` subscribes to `{fid}`."))
        except AlreadyExists:
            return False  # subscribed meanwhile by someone else: the same outcome
        return True

    async def unsubscribe(self, actor: Actor, buyer_id: str, factory_id: str) -> None:
        await self.require(actor, "unsubscribe")
        bid = validation.identifier(buyer_id, "buyer id")
        fid = validation.identifier(factory_id, "factory id")
        async with self.db.transaction(write=True) as s:
            await self._existing_buyer(s, bid)
            await self.existing_factory(s, fid)
            if await queries.get_subscription(s, bid, fid) is None:
                raise UnknownSubscription(
                    f"{bid} → {fid}", extra=f"`{bid}` does not subscribe to `{fid}`."
                )
            await queries.delete_subscription(s, bid, fid)
            self.audit(s, actor, "subscription.remove", fid, {"buyer": bid})

    # --- assessments ------------------------------------------------------------------------

    async def record_assessment(
        self,
        actor: Actor,
        factory_id: str,
        assessed_on: str | date,
        nc_issues: str | Iterable[str],
        kind: str | None = None,
    ) -> AssessmentOutcome:
        """Record one assessment; its events and the audit entry are written with it."""
        await self.require(actor, "assess")
        fid = validation.identifier(factory_id, "factory id")
        day = validation.assessment_date(assessed_on, self.today())
        the_kind = validation.assessment_kind(kind)
        async with self.db.transaction(write=True) as s:
            factory = await self.existing_factory(s, fid, lock=True)
            country = self.countries.country(factory.country)
            codes = validation.issue_codes(nc_issues, country.catalogue, country.code)
            await self._no_assessment_on(s, fid, day)
            row = Assessment(
                factory_id=fid,
                assessed_on=day,
                kind=the_kind,
                nc_issues=sorted(codes),
                submitted_by=actor.user_id,
                submitted_at=self.clock(),
                source=actor.source,
            )
            s.add(row)
            await self._flush_unique(s, DuplicateAssessment(_duplicate_message(fid, day)))
            history = await queries.load_histories(s, [fid], {fid: factory})
            result = (await self.reevaluate(s, [fid], Notice.DUE, history))[fid]
            self.audit(
                s,
                actor,
                "assessment.record",
                fid,
                {
                    "assessment_id": row.id,
                    "assessed_on": day.isoformat(),
                    "nc_issues": sorted(codes),
                },
            )
        assert row.id is not None
        return self._outcome(row, factory, result)

    async def amend_assessment(
        self,
        actor: Actor,
        factory_id: str,
        assessed_on: str | date,
        reason: str,
        *,
        nc_issues: str | Iterable[str] | None = None,
        new_date: str | date | None = None,
        kind: str | None = None,
    ) -> AssessmentOutcome:
        """Correct a recorded assessment (manager); the history is re-evaluated."""
        await self.require(actor, "assessment amend")
        fid = validation.identifier(factory_id, "factory id")
        day = validation.iso_date(assessed_on) if isinstance(assessed_on, str) else assessed_on
        why = validation.text(reason, "reason", 500)
        if nc_issues is None and new_date is None and kind is None:
            raise InvalidInput("Nothing to amend.", "Give new issue codes, a new date or a kind.")
        async with self.db.transaction(write=True) as s:
            factory = await self.existing_factory(s, fid, lock=True)
            row = await self._existing_assessment(s, fid, day)
            country = self.countries.country(factory.country)
            before = {
                "assessed_on": row.assessed_on.isoformat(),
                "nc_issues": list(row.nc_issues),
                "kind": row.kind,
            }
            if nc_issues is not None:
                row.nc_issues = sorted(
                    validation.issue_codes(nc_issues, country.catalogue, country.code)
                )
            if new_date is not None:
                moved = validation.assessment_date(new_date, self.today())
                if moved != row.assessed_on:
                    await self._no_assessment_on(s, fid, moved)
                    row.assessed_on = moved
            if kind is not None:
                row.kind = validation.assessment_kind(kind)
            row.amended_at, row.amended_by, row.amend_reason = self.clock(), actor.user_id, why
            s.add(row)
            await self._flush_unique(
                s, DuplicateAssessment(_duplicate_message(fid, row.assessed_on))
            )
            history = await queries.load_histories(s, [fid], {fid: factory})
            result = (await self.reevaluate(s, [fid], Notice.DUE, history))[fid]
            after = {
                "assessed_on": row.assessed_on.isoformat(),
                "nc_issues": list(row.nc_issues),
                "kind": row.kind,
            }
            self.audit(
                s,
                actor,
                "assessment.amend",
                fid,
                {"assessment_id": row.id, "reason": why, "before": before, "after": after},
            )
        return self._outcome(row, factory, result)

    async def withdraw_assessment(
        self, actor: Actor, factory_id: str, assessed_on: str | date, reason: str
    ) -> AssessmentOutcome:
        """Withdraw a recorded assessment (manager): kept for the record, no longer counted."""
        await self.require(actor, "assessment withdraw")
        fid = validation.identifier(factory_id, "factory id")
        day = validation.iso_date(assessed_on) if isinstance(assessed_on, str) else assessed_on
        why = validation.text(reason, "reason", 500)
        async with self.db.transaction(write=True) as s:
            factory = await self.existing_factory(s, fid, lock=True)
            row = await self._existing_assessment(s, fid, day)
            row.withdrawn_at, row.withdrawn_by, row.withdraw_reason = (
                self.clock(),
                actor.user_id,
                why,
            )
            s.add(row)
            await s.flush()
            history = await queries.load_histories(s, [fid], {fid: factory})
            result = (await self.reevaluate(s, [fid], Notice.DUE, history))[fid]
            self.audit(
                s,
                actor,
                "assessment.withdraw",
                fid,
                {"assessment_id": row.id, "assessed_on": day.isoformat(), "reason": why},
            )
        return self._outcome(row, factory, result)

    # --- roles ------------------------------------------------------------------------------

    async def actor(self, user_id: str, source: str) -> Actor:
        """Who ``user_id`` is to the bot: the higher of their configured and granted roles."""
        async with self.db.transaction() as s:
            row = await queries.get_role(s, user_id)
        granted = RoleLevel.parse(row.role) if row else None
        configured = self.config.roles.role_of(user_id)
        levels = [r for r in (granted, RoleLevel.parse(configured) if configured else None) if r]
        return Actor(user_id, max(levels) if levels else None, source)

    async def managers(self, s: AsyncSession | None = None) -> list[str]:
        """Everyone who can grant roles: configured managers first, then granted ones. Inside
        a transaction, pass its session: a second pooled connection is never taken meanwhile."""
        if s is None:
            async with self.db.transaction() as own:
                granted = await queries.managers(own)
        else:
            granted = await queries.managers(s)
        return list(dict.fromkeys([*self.config.roles.managers, *granted]))

    async def require(self, actor: Actor, action: str) -> None:
        """Refuse ``action`` unless the actor's role allows it; the refusal names everyone who
        can grant the role (looked up only then)."""
        if not actor.may(action):
            actor.require(action, await self.managers())

    async def grant_role(self, actor: Actor, user_id: str, role: str) -> tuple[str, RoleLevel]:
        """Give ``user_id`` (a mention or an id) a role; returns their id and the role."""
        await self.require(actor, "role grant")
        who = validation.slack_user(user_id)
        try:
            level = RoleLevel.parse(role)
        except KeyError:
            raise InvalidInput(
                f"`{validation.shown(role)}` is not a role.", "Use viewer, assessor or manager."
            ) from None
        async with self.db.transaction(write=True) as s:
            row = await queries.get_role(s, who)
            before = row.role if row else None
            if row is None:
                row = Role(
                    user_id=who, role=level.label, granted_by=actor.user_id, granted_at=self.clock()
                )
            else:
                row.role, row.granted_by, row.granted_at = level.label, actor.user_id, self.clock()
            s.add(row)
            self.audit(s, actor, "role.grant", who, {"role": level.label, "before": before})
        return who, level

    async def revoke_role(self, actor: Actor, user_id: str) -> str:
        """Take away a granted role; returns the person's id."""
        await self.require(actor, "role revoke")
        who = validation.slack_user(user_id)
        configured = self.config.roles.role_of(who)
        if configured is not None:
            raise Conflict(
                f"That person is a {configured} through the configuration (PNC_ADMINS or the "
                "config file's [roles]).",
                "Remove them there and restart the bot.",
            )
        async with self.db.transaction(write=True) as s:
            row = await queries.get_role(s, who)
            if row is None:
                raise Conflict("That person has no pnc-bot role granted.")
            await s.delete(row)
            self.audit(s, actor, "role.revoke", who, {"before": row.role})
        return who

    # --- reading ----------------------------------------------------------------------------

    async def status(self, factory_id: str) -> StatusView:
        """Everything there is to show about one factory, derived from its history."""
        fid = validation.identifier(factory_id, "factory id")
        async with self.db.transaction() as s:
            factory = await self.existing_factory(s, fid)
            rows = await queries.live_assessments(s, fid)
            applications = await queries.readmissions(s, fid)
            events = await queries.events(s, fid)
            buyers = await queries.subscribers(s, fid)
        country = self.countries.country(factory.country)
        evaluation = policy.evaluate(
            country.rules,
            fid,
            [queries.as_record(r) for r in rows],
            [queries.as_readmission(r) for r in applications],
        )
        verdicts = {v.assessment.id: v for v in evaluation.verdicts}
        lines = {r.id: self._line(r, verdicts[r.id], country) for r in rows if r.id is not None}
        return StatusView(
            factory_id=factory.id,
            name=factory.name,
            country=country.code,
            country_name=country.name,
            language=factory.language or country.language,
            cycle_end=factory.cycle_end,
            state=evaluation.state.value,
            label=evaluation.label,
            streak=evaluation.streak,
            threshold=evaluation.threshold,
            consecutive=evaluation.consecutive,
            public_reporting_since=country.rules.public_reporting_since,
            designated=evaluation.designated,
            assessments=tuple(lines[v.assessment.id] for v in evaluation.verdicts),
            basis=tuple(lines[a.id] for a in evaluation.basis),
            subscribers=tuple(BuyerLine(b.id, b.name) for b in buyers),
            applications=tuple(
                ApplicationLine(
                    a.id or 0,
                    a.applied_on,
                    a.applied_by,
                    tuple(a.evidence),
                    tuple(a.inspectorate_reports),
                    a.unannounced_on,
                    a.decided_on,
                    a.decision,
                    a.decision_note,
                )
                for a in applications
            ),
            events=tuple(
                EventLine(
                    e.kind, e.occurred_on, e.key, e.notice, e.unsupported_at is None, e.created_at
                )
                for e in events
            ),
        )

    async def factory(self, factory_id: str) -> Factory:
        """A registered factory, or ``UnknownFactory`` with close ids."""
        fid = validation.identifier(factory_id, "factory id")
        async with self.db.transaction() as s:
            return await self.existing_factory(s, fid)

    async def history(self, factory_id: str) -> StatusView:
        """The status with everything kept for the record: withdrawn assessments too."""
        view = await self.status(factory_id)
        async with self.db.transaction() as s:
            rows = await queries.withdrawn_assessments(s, view.factory_id)
        country = self.countries.country(view.country)
        withdrawn = tuple(
            dataclasses.replace(
                self._line(r, policy.Verdict(queries.as_record(r), False, False), country),
                withdrawn_reason=r.withdraw_reason,
            )
            for r in rows
        )
        return dataclasses.replace(view, withdrawn=withdrawn)

    async def watch_list(self, country: str | None = None, limit: int = 50) -> WatchList:
        """Factories at risk or designated, most urgent first (``at-risk``, App Home)."""
        code = self.countries.country(country).code if country else None
        async with self.db.transaction() as s:
            rows, total = await queries.watched_factories(s, code, limit)
        factories = []
        for r in rows:
            consecutive = self.countries.country(r.country).rules.consecutive
            label = policy.label_for(policy.State(r.state), r.streak, consecutive)
            factories.append(WatchedFactory(r.id, r.name, r.country, r.state, label))
        return WatchList(code, tuple(factories), total)

    async def recent_submissions(self, user_id: str, limit: int = 10) -> list[Submission]:
        async with self.db.transaction() as s:
            rows = await queries.recent_submissions(s, user_id, limit)
        return [
            Submission(r.factory_id, r.name, r.assessed_on, len(r.nc_issues), r.submitted_at)
            for r in rows
        ]

    async def log_command(
        self, user_id: str, source: str, text: str, outcome: str, detail: dict[str, Any]
    ) -> None:
        """The audit entry of one command, accepted or refused (its own transaction). The text
        is kept as typed, except characters a database cannot store (NUL)."""
        text = validation.storable(text)
        async with self.db.transaction(write=True) as s:
            s.add(
                AuditEntry(
                    at=self.clock(),
                    actor=user_id[:64],
                    source=source[:200],
                    action="command",
                    subject=text[:200],
                    outcome=outcome,
                    detail={"text": text[:2000], **detail},
                )
            )

    async def outbox(self, limit: int = 20) -> OutboxView:
        """Notices waiting, retrying and dead (``/pnc outbox``, ``pnc-bot outbox``)."""
        async with self.db.transaction() as s:
            found = await queries.outbox_overview(s, self.clock(), limit)

        def lines(rows: list[Any]) -> tuple[OutboxLine, ...]:
            return tuple(
                OutboxLine(
                    r.id,
                    r.kind,
                    r.channel,
                    r.recipient_name,
                    r.factory_id,
                    r.status,
                    r.attempts,
                    r.next_attempt_at,
                    r.last_error,
                )
                for r in rows
            )

        return OutboxView(
            counts={
                k: found["counts"].get(k, 0)
                for k in ("pending", "sending", "sent", "dead", "cancelled")
            },
            pending=lines(found["pending"]),
            retrying=lines(found["retrying"]),
            dead=lines(found["dead"]),
            paused=tuple(PausedChannel(n, u, r) for n, u, r in found["paused"]),
        )

    async def retry_notice(self, actor: Actor, notice_id: int | str) -> OutboxLine:
        """Send a dead (or waiting) notice again now, with its attempts counted afresh."""
        await self.require(actor, "outbox retry")
        try:
            nid = int(str(notice_id).strip().lstrip("#"))
        except ValueError:
            raise InvalidInput(
                f"`{validation.shown(str(notice_id))}` is not a notice number.",
                "Use the number shown by `outbox`, e.g. `outbox retry 42`.",
            ) from None
        if not 1 <= nid < 2**31:  # beyond any id the database can hold
            raise UnknownNotice(f"#{nid}", extra="`outbox` lists the notices.")
        async with self.db.transaction(write=True) as s:
            row = await s.get(OutboxMessage, nid)
            if row is None:
                raise UnknownNotice(f"#{nid}", extra="`outbox` lists the notices.")
            if row.status in ("sent", "cancelled", "sending"):
                raise Conflict(
                    f"Notice #{nid} is {row.status}; only waiting or dead notices are retried."
                )
            row.status, row.attempts, row.next_attempt_at = "pending", 0, self.clock()
            row.lease_until = row.claimed_by = None
            s.add(row)
            self.audit(s, actor, "outbox.retry", row.factory_id, {"notice": nid})
            after_commit(s, self.wake_dispatcher)
        return OutboxLine(
            nid,
            row.kind,
            row.channel,
            row.recipient_name,
            row.factory_id,
            row.status,
            row.attempts,
            row.next_attempt_at,
            row.last_error,
        )

    def country(self, code: str | None = None) -> Country:
        """A country with its rules and catalogue in force (the default one when not named)."""
        return self.countries.country(code) if code else self.countries.default

    async def refresh_rules(self) -> dict[str, int]:
        """Bring the stored snapshots in line with the rules in force (call it at start-up).

        The factories of each country whose rules (``PNC_CONFIG``: threshold, consecutive,
        coverage, public reporting since) differ from those recorded in the database are
        re-evaluated: their state and streak follow the new rules (the at-risk list, agendas,
        the cycle-end reminder). Events the new rules give rise to are recorded but held for
        staff review — nobody is notified of a rules change on its own — and the undelivered
        notices of events they no longer support are cancelled; staff get one alert per
        country summarising it. The new fingerprints are written in the same transaction.
        Returns country → factories re-evaluated, for the countries that have any.
        """
        wanted = {code: rules_fingerprint(c.rules) for code, c in self.countries.items()}
        async with self.db.transaction(write=True) as s:
            recorded = await queries.rules_fingerprints(s)
            changed = sorted(c for c, f in wanted.items() if recorded.get(c) != f)
            if not changed:
                return {}
            ids = await queries.factory_ids_in(s, changed)
            facts = await queries.factory_facts(s, ids, lock=True)
            results: dict[str, Reevaluation] = {}
            for part in bulk.chunks(ids, _REEVALUATED_AT_ONCE):
                results |= await self.reevaluate(s, part, Notice.HELD, alerts=False)
            done: dict[str, int] = {}
            for code in changed:
                mine = [fid for fid in ids if facts[fid].country == code]
                if not mine:
                    continue
                done[code] = len(mine)
                summary = _rules_summary(mine, facts, results)
                log.info("rules of %s: %d factories re-evaluated, %s", code, len(mine), summary)
                if not any(summary["counts"].values()):
                    continue
                country = self.countries[code]
                self._audit_system(s, "rules.changed", code, summary["counts"])
                alert = notices.staff_alert(
                    f"rules_changed/{code}/{wanted[code][:16]}/{self.clock():%Y%m%dT%H%M%S}",
                    "rules_changed",
                    country,
                    self.settings.staff_channel,
                    {
                        **summary,
                        "country": {"code": code, "name": country.name},
                        "rules": _rules_context(country.rules),
                    },
                )
                if alert is not None:
                    await self.enqueue(s, [alert])
            await queries.set_rules_fingerprints(s, {c: wanted[c] for c in changed}, self.clock())
        return done

    # --- the shared machinery ---------------------------------------------------------------

    async def reevaluate(
        self,
        s: AsyncSession,
        factory_ids: Sequence[str],
        notice: str,
        histories: queries.Histories | None = None,
        *,
        alerts: bool = True,
    ) -> dict[str, Reevaluation]:
        """Re-derive the factories' events from their histories and record what changed.

        Called inside a writing transaction by every use case that changes a history. New events
        get ``notice``; when it is ``due``, their notices are written to the outbox here, in the
        same transaction. An event the history no longer supports has its undelivered notices
        cancelled; if people were already told of it, staff get a "history changed" alert and
        the new events are held for their review — the bot never sends contradicting notices on
        its own. An event the history supports again, of which nobody was told, is planned
        afresh like a new one. ``histories`` may be given by a caller that already holds them
        (a bulk import). With ``alerts=False`` the caller reports changed histories itself
        (the results name the contradicted events).
        """
        now = self.clock()
        h = histories or await queries.load_histories(s, factory_ids)
        recorded = await queries.event_index(s, factory_ids)
        derived: dict[str, tuple[Evaluation, policy.EventChanges, dict[str, Any]]] = {}
        gone: list[int] = []
        back: list[int] = []
        for fid in factory_ids:
            country = self.countries.country(h.countries[fid])
            evaluation = policy.evaluate(
                country.rules,
                fid,
                h.assessments.get(fid, []),
                h.readmissions.get(fid, []),
                verdicts=False,
            )
            known = {r.key: r for r in recorded.get(fid, [])}
            changes = policy.diff_events(
                evaluation.events, {k: r.unsupported_at is None for k, r in known.items()}
            )
            derived[fid] = (evaluation, changes, known)
            gone += [known[k].id for k in changes.unsupported]
            back += [known[k].id for k in changes.restored if known[k].notice == Notice.DUE]
        # notices of events no longer supported: undelivered ones are cancelled; the rest told
        told = await queries.cancel_unsent_notices(s, gone) if gone else set()
        # events supported again: told ones stand as they are; the others are planned afresh
        told_back = await queries.told_events(s, back) if back else set()

        events: list[dict[str, Any]] = []
        replanned: list[dict[str, Any]] = []
        due: list[tuple[int, Event, str, Evaluation]] = []
        #: notified events supported again: what they left to do resumes
        resumed: list[tuple[int, Event, str, Evaluation]] = []
        #: events no longer supported that left something to do: (event row, factory, designated)
        ended: list[tuple[Any, str, bool]] = []
        changed: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []
        unsupported: list[int] = []
        restored: list[int] = []
        snapshots: list[dict[str, Any]] = []
        results: dict[str, Reevaluation] = {}
        ids = iter(
            await bulk.reserve_ids(
                s,
                PncEvent.__table__,  # type: ignore[attr-defined]
                sum(len(c.new) for _, c, _ in derived.values()),
            )
        )
        for fid, (evaluation, changes, known) in derived.items():
            contradicted = tuple(
                k
                for k in changes.unsupported
                if known[k].notice == Notice.DUE and known[k].id in told
            )
            new_notice = Notice.HELD if contradicted and notice == Notice.DUE else notice
            by_id = {a.id: a for a in h.assessments.get(fid, [])}
            for event in changes.new:
                event_id = next(ids)
                events.append(
                    {
                        "id": event_id,
                        "key": event.key,
                        "factory_id": fid,
                        "kind": event.kind.value,
                        "occurred_on": event.on,
                        "assessment_id": event.assessment_id,
                        "application_id": event.application_id,
                        "payload": _payload(event, by_id, evaluation),
                        "notice": new_notice,
                        "notified_at": now if new_notice == Notice.DUE else None,
                        "created_at": now,
                        "unsupported_at": None,
                    }
                )
                if new_notice == Notice.DUE:
                    due.append((event_id, event, fid, evaluation))
            again: tuple[Event, ...] = ()
            if changes.restored:
                back_here = [
                    e
                    for e in evaluation.events
                    if e.key in changes.restored and known[e.key].notice == Notice.DUE
                ]
                again = tuple(e for e in back_here if known[e.key].id not in told_back)
                resumed += [
                    (known[e.key].id, e, fid, evaluation) for e in back_here if e not in again
                ]
            if changes.unsupported:
                ended += [
                    (known[k], fid, evaluation.designated)
                    for k in changes.unsupported
                    if known[k].kind in _FOLLOWED_UP
                ]
            for event in again:
                event_id = known[event.key].id
                replanned.append(
                    {
                        "id": event_id,
                        "payload": _payload(event, by_id, evaluation),
                        "notice": new_notice,
                        "notified_at": now if new_notice == Notice.DUE else None,
                    }
                )
                if new_notice == Notice.DUE:
                    due.append((event_id, event, fid, evaluation))
            unsupported += [known[k].id for k in changes.unsupported]
            restored += [known[k].id for k in changes.restored]
            if (evaluation.state.value, evaluation.streak) != tuple(h.snapshots[fid]):
                snapshots.append(
                    {"id": fid, "state": evaluation.state.value, "streak": evaluation.streak}
                )
            if contradicted and alerts:
                log.warning("history of %s changed under notified events %s", fid, contradicted)
                held = tuple(e.key for e in (*changes.new, *again))
                changed.append((fid, contradicted, held))
                self._audit_system(
                    s, "history.changed", fid, {"unsupported": list(contradicted), "held": held}
                )
            results[fid] = Reevaluation(
                evaluation, changes.new + again if again else changes.new, contradicted
            )
        await bulk.insert_rows(s, PncEvent.__table__, events)  # type: ignore[attr-defined]
        await bulk.update_by_id(s, PncEvent.__table__, replanned)  # type: ignore[attr-defined]
        await queries.mark_events(s, unsupported, unsupported_at=now)
        await queries.mark_events(s, restored, unsupported_at=None)
        await queries.set_snapshots(s, snapshots)
        events_by_id = {e["id"]: e for e in (*events, *replanned)}
        parties = await self._write_notices(s, due, events_by_id, changed, h)
        await self._end_follow_ups(s, ended)
        back = {e["id"] for e in replanned} | {event_id for event_id, *_ in resumed}
        await self._follow_ups(s, [*due, *resumed], back, parties)
        return results

    async def _write_notices(
        self,
        s: AsyncSession,
        due: list[tuple[int, Event, str, Evaluation]],
        events: dict[int, dict[str, Any]],
        alerts: list[tuple[str, tuple[str, ...], tuple[str, ...]]],
        h: queries.Histories,
    ) -> dict[str, tuple[notices.Party, date | None]]:
        """The outbox rows of the events due, and the staff alerts of changed histories;
        returns the factories as recipients."""
        if not due and not alerts:
            return {}
        wanted = sorted({fid for _, _, fid, _ in due} | {fid for fid, _, _ in alerts})
        parties = await queries.factory_parties(s, wanted, h.factories)
        buyers = await queries.subscriber_parties(s, wanted)
        managers = await self.managers(s)
        rows: list[notices.Notice] = []
        event_of: dict[str, int] = {}
        for event_id, event, fid, _ in due:
            party, cycle_end = parties[fid]
            payload = events[event_id]["payload"]
            if event.application_id is not None:
                payload = {**payload, **await self._application_facts(s, event.application_id)}
            planned, warnings = notices.plan(
                event.key,
                event.kind.value,
                payload,
                party,
                self.countries.country(h.countries[fid]),
                buyers.get(fid, []),
                cycle_end,
                managers,
            )
            for warning in warnings:
                log.warning("%s: %s", event.key, warning)
            rows += planned
            event_of.update({n.key: event_id for n in planned})
        for fid, contradicted, held in alerts:
            digest = hashlib.sha256("|".join(contradicted + held).encode()).hexdigest()[:16]
            alert = notices.staff_alert(
                f"{fid}/history_changed/{digest}",
                "history_changed",
                self.countries.country(h.countries[fid]),
                self.settings.staff_channel,
                {
                    "factory": {"id": fid, "name": parties[fid][0].name},
                    "unsupported": list(contradicted),
                    "held": list(held),
                },
                factory_id=fid,
            )
            if alert is not None:
                rows.append(alert)
        await self.enqueue(s, rows, event_of)
        return parties

    async def enqueue(
        self,
        s: AsyncSession,
        rows: Sequence[notices.Notice],
        event_of: dict[str, int] | None = None,
    ) -> None:
        """Write notices to the outbox (in the caller's transaction); the dispatcher is woken
        once the transaction commits."""
        if not rows:
            return
        now, domain, events = self.clock(), self.settings.mail_domain, event_of or {}
        await queries.add_notices(
            s, [notices.outbox_row(n, now, domain, events.get(n.key)) for n in rows]
        )
        after_commit(s, self.wake_dispatcher)

    def wake_dispatcher(self) -> None:
        """Called after a commit that wrote notices (the dispatcher sets it)."""
        if self.on_notices is not None:
            self.on_notices()

    def wake_reminders(self) -> None:
        """Called after a commit that wrote reminders (the reminder runner sets it)."""
        if self.on_reminders is not None:
            self.on_reminders()

    def outcome_of(self, factory: Factory, result: Reevaluation) -> StateOutcome:
        return StateOutcome(
            factory.id,
            factory.name,
            result.evaluation.label,
            result.evaluation.state.value,
            result.new_events,
            result.contradicted,
        )

    async def _application_facts(self, s: AsyncSession, application_id: int) -> dict[str, Any]:
        """What readmission notices say about the application."""
        application = await s.get(Readmission, application_id)
        if application is None:
            return {}
        return {
            "applied_on": application.applied_on.isoformat(),
            "evidence": list(application.evidence),
            "reports": list(application.inspectorate_reports),
            "visit_on": application.unannounced_on.isoformat()
            if application.unannounced_on
            else None,
            "decided_on": application.decided_on.isoformat() if application.decided_on else None,
            "note": application.decision_note,
        }

    async def _follow_ups(
        self,
        s: AsyncSession,
        due: Sequence[tuple[int, Event, str, Evaluation]],
        restored: set[int],
        parties: dict[str, tuple[notices.Party, date | None]],
    ) -> None:
        """What a designation or an application leaves to do, with its reminders: the
        stakeholder meeting (weekly until held), the end of the service cycle, the review, the
        unannounced visit. ``due`` holds the events notified now and the notified events the
        history supports again (``restored`` names those): a follow-up closed because its
        designation was no longer supported is reopened; one closed by staff stays closed."""
        if not due:
            return
        now, tz = self.clock(), self.settings.tz
        week = timedelta(days=7)
        review = timedelta(days=self.settings.readmission_reminder_days)
        designations = [(i, fid) for i, e, fid, _ in due if e.kind is EventKind.PNC_DESIGNATED]
        again = [i for i, _ in designations if i in restored]
        kept = {f.event_id: f for f in await queries.follow_ups_of(s, again)} if again else {}
        missing = sorted({fid for _, fid in designations} - set(parties))
        if missing:
            parties = {**parties, **await queries.factory_parties(s, missing)}
        rows: list[dict[str, Any]] = []
        for event_id, event, fid, _ in due:
            if event.kind is EventKind.PNC_DESIGNATED:
                follow_up = kept.get(event_id)
                if follow_up is None:
                    follow_up = follow_up_for(event_id, fid, now)
                    s.add(follow_up)
                    await s.flush()
                elif follow_up.closed_by == SYSTEM:  # closed when the designation was gone
                    follow_up.closed_on = follow_up.closed_by = None
                    s.add(follow_up)
                    self._audit_system(
                        s, "follow_up.reopened", fid, {"follow_up": follow_up.id, "event": event_id}
                    )
                if follow_up.closed_on is None:
                    rows.append(
                        reminder(
                            "stakeholder_meeting", f"follow_up:{follow_up.id}", now + week, now
                        )
                    )
                cycle_end = parties[fid][1]
                if cycle_end is not None and local_moment(cycle_end, tz) > now:
                    rows.append(
                        reminder(
                            "cycle_end",
                            f"factory:{fid}:{cycle_end.isoformat()}",
                            local_moment(cycle_end, tz),
                            now,
                        )
                    )
            elif event.kind is EventKind.READMISSION_APPLIED and event.application_id:
                rows.append(
                    reminder(
                        "readmission_review",
                        f"readmission:{event.application_id}",
                        now + review,
                        now,
                    )
                )
            elif (
                event.kind is EventKind.UNANNOUNCED_SCHEDULED
                and event.application_id
                and event_id in restored  # a visit scheduled now: ``schedule_visit`` sees to it
                and local_moment(event.on, tz) > now
            ):
                eve = local_moment(event.on - timedelta(days=1), tz)
                rows.append(
                    reminder("unannounced_visit", f"readmission:{event.application_id}", eve, now)
                )
        if rows:
            await queries.add_reminders(s, rows)
            after_commit(s, self.wake_reminders)

    async def _end_follow_ups(self, s: AsyncSession, ended: list[tuple[Any, str, bool]]) -> None:
        """What a designation or an application the history no longer supports left to do is
        closed: the stakeholder meeting and its reminders, the end of the service cycle (unless
        the factory is still designated), the review and the unannounced visit."""
        if not ended:
            return
        gone = "the history no longer supports the designation"
        designations = [row.id for row, _, _ in ended if row.kind == EventKind.PNC_DESIGNATED]
        for follow_up in await queries.follow_ups_of(s, designations) if designations else []:
            if follow_up.closed_on is not None:
                continue  # the meeting was held
            follow_up.closed_on, follow_up.closed_by = self.today(), SYSTEM
            s.add(follow_up)
            await queries.cancel_reminders(s, f"follow_up:{follow_up.id}", note=gone)
            self._audit_system(
                s,
                "follow_up.closed",
                follow_up.factory_id,
                {"follow_up": follow_up.id, "event": follow_up.event_id, "reason": gone},
            )
        for row, fid, designated in ended:
            if row.kind == EventKind.PNC_DESIGNATED and not designated:
                await queries.cancel_cycle_end(s, fid, gone)
            elif row.kind == EventKind.READMISSION_APPLIED and row.application_id:
                await queries.cancel_reminders(
                    s,
                    f"readmission:{row.application_id}",
                    note="the history no longer supports the application",
                )

    async def existing_factory(self, s: AsyncSession, fid: str, lock: bool = False) -> Factory:
        factory = await queries.get_factory(s, fid, lock=lock)
        if factory is None:
            raise UnknownFactory(fid, await queries.close_ids(s, Factory, fid))
        return factory

    async def _existing_buyer(self, s: AsyncSession, bid: str) -> Buyer:
        buyer = await queries.get_buyer(s, bid)
        if buyer is None:
            raise UnknownBuyer(bid, await queries.close_ids(s, Buyer, bid))
        return buyer

    async def _existing_assessment(self, s: AsyncSession, fid: str, day: date) -> Assessment:
        row = await queries.live_assessment_on(s, fid, day)
        if row is None:
            days = [a.assessed_on.isoformat() for a in await queries.live_assessments(s, fid)]
            raise UnknownAssessment(
                f"{fid} {day.isoformat()}",
                extra=f"Recorded assessments of `{fid}`: {', '.join(days) or 'none'}.",
            )
        return row

    async def _no_assessment_on(self, s: AsyncSession, fid: str, day: date) -> None:
        if await queries.live_assessment_on(s, fid, day) is not None:
            raise DuplicateAssessment(
                _duplicate_message(fid, day),
                "A factory has one assessment a day; a manager can amend or withdraw it.",
            )

    async def _flush_unique(self, s: AsyncSession, refusal: PncError) -> None:
        """Flush, turning a race lost on a unique key into the refusal the check would give."""
        try:
            await s.flush()
        except IntegrityError:
            raise refusal from None

    def _line(self, row: Assessment, verdict: policy.Verdict, country: Country) -> AssessmentLine:
        issues = tuple(
            IssueLine(code, country.catalogue.name(code), country.catalogue.name(code, "vi"))
            for code in row.nc_issues
        )
        assert row.id is not None
        return AssessmentLine(
            id=row.id,
            assessed_on=row.assessed_on,
            kind=row.kind,
            nc_issues=issues,
            counted=verdict.counted,
            fails=verdict.fails,
            not_counted=verdict.not_counted.value if verdict.not_counted else None,
            submitted_by=row.submitted_by,
            submitted_at=row.submitted_at,
            source=row.source,
            amended=row.amended_at is not None,
        )

    def _outcome(
        self, row: Assessment, factory: Factory, result: Reevaluation
    ) -> AssessmentOutcome:
        assert row.id is not None
        return AssessmentOutcome(
            assessment_id=row.id,
            factory_id=factory.id,
            factory_name=factory.name,
            assessed_on=row.assessed_on,
            nc_count=len(row.nc_issues),
            label=result.evaluation.label,
            state=result.evaluation.state.value,
            new_events=result.new_events,
            contradicted=result.contradicted,
        )

    def audit(
        self,
        s: AsyncSession,
        actor: Actor,
        action: str,
        subject: str | None,
        detail: dict[str, Any],
        outcome: str = "ok",
    ) -> None:
        s.add(
            AuditEntry(
                at=self.clock(),
                actor=actor.user_id,
                source=actor.source[:200],
                action=action,
                subject=subject,
                outcome=outcome,
                detail=detail,
            )
        )

    def _audit_system(
        self, s: AsyncSession, action: str, subject: str, detail: dict[str, Any]
    ) -> None:
        s.add(
            AuditEntry(
                at=self.clock(),
                actor=SYSTEM,
                source="policy",
                action=action,
                subject=subject,
                outcome="ok",
                detail=detail,
            )
        )


def _duplicate_message(fid: str, day: date) -> str:
    return f"`{fid}` already has an assessment on {day.isoformat()}."


def _payload(
    event: Event, by_id: dict[int, policy.AssessmentRecord], evaluation: Evaluation
) -> dict[str, Any]:
    """What the notices of an event will say, frozen when the event is recorded."""
    payload: dict[str, Any] = {
        "threshold": evaluation.threshold,
        "consecutive": evaluation.consecutive,
    }
    if event.k is not None:
        payload["k"] = event.k
    if event.assessment_id is not None and event.assessment_id in by_id:
        a = by_id[event.assessment_id]
        payload.update(
            assessed_on=a.assessed_on.isoformat(), nc_issues=sorted(a.nc_issues), kind=a.kind
        )
    if event.kind is EventKind.PNC_DESIGNATED:
        payload["basis"] = [
            {
                "assessment_id": i,
                "assessed_on": by_id[i].assessed_on.isoformat(),
                "nc_issues": sorted(by_id[i].nc_issues),
            }
            for i in event.basis
        ]
    if event.application_id is not None:
        payload["application_id"] = event.application_id
        if event.kind is EventKind.UNANNOUNCED_SCHEDULED:
            payload["visit_on"] = event.on.isoformat()
    return payload


def rules_fingerprint(rules: policy.Rules) -> str:
    """What a country's rules are, as a short stable digest (``Services.refresh_rules``)."""
    text = "|".join(
        (
            str(rules.pnc_enabled),
            rules.public_reporting_since.isoformat(),
            str(rules.threshold),
            str(rules.consecutive),
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _rules_context(rules: policy.Rules) -> dict[str, Any]:
    return {
        "pnc_enabled": rules.pnc_enabled,
        "public_reporting_since": rules.public_reporting_since.isoformat(),
        "threshold": rules.threshold,
        "consecutive": rules.consecutive,
    }


#: how many factories and events a rules-changed alert names before "and N more"
_LISTED = 20
#: factories re-evaluated together when the rules change (bounds the histories held in memory)
_REEVALUATED_AT_ONCE = 1000


def _rules_summary(
    ids: list[str], facts: dict[str, Any], results: dict[str, Reevaluation]
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
