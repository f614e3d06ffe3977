"""Readmission (FAQ: "Can a PNC factory return to the programme?") and the stakeholder meeting
that follows a designation.

A designated factory applies with evidence that it has resolved all its publicly reported
issues, including their root causes, and copies of its improvement reports to the Labour
Inspectorate; a programme manager may schedule an unannounced verification visit, then decides.
Each step is a record in the history — the policy derives the state and the events from it —
and each is one transaction with its notices and reminders.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from bot import policy, validation
from bot.errors import InvalidDate, InvalidInput, StateConflict
from bot.roles import Actor
from bot.schedule import local_moment, reminder
from store import queries
from store.db import after_commit
from store.models import Factory, FollowUp, Notice, Readmission

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

    from bot.services import Reevaluation, Services, StateOutcome

_URL = re.compile(r"^https?://[^\s<>\"'\x00-\x1f\x7f-\x9f]{3,2000}$")


def urls(values: Sequence[str], what: str) -> list[str]:
    found = []
    for value in values:
        cleaned = value.strip().strip("<>").split("|", 1)[0]  # Slack sends <url|label>
        if not _URL.fullmatch(cleaned):
            raise InvalidInput(
                f"`{validation.shown(value)}` is not a link to the {what}.",
                "Give links starting with https://, e.g. to the shared folder of documents.",
            )
        found.append(cleaned)
    return found


class Readmissions:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def apply(
        self, actor: Actor, factory_id: str, evidence: Sequence[str], reports: Sequence[str] = ()
    ) -> StateOutcome:
        """Open an application; refused unless the factory is designated and has none open."""
        await self.services.require(actor, "readmission apply")
        fid = validation.identifier(factory_id, "factory id")
        if not evidence:
            raise InvalidInput(
                "An application needs the evidence.",
                "Give links to the evidence that all issues and their root causes are resolved.",
            )
        evidence_links = urls(evidence, "evidence")
        report_links = urls(reports, "Inspectorate improvement reports")
        async with self.services.db.transaction(write=True) as s:
            factory = await self.services.existing_factory(s, fid, lock=True)
            history, state = await self._history(s, factory)
            if state.state is policy.State.READMISSION_REVIEW:
                raise StateConflict(
                    f"`{fid}` already has a readmission application under review.",
                    f"A manager decides it: `readmission approve {fid}` or `readmission reject "
                    f"{fid} <reason>`.",
                )
            if state.state is not policy.State.PNC:
                raise StateConflict(
                    f"`{fid}` is not designated ({state.label}); only a designated factory can "
                    "apply for readmission."
                )
            application = Readmission(
                factory_id=fid,
                applied_on=self.services.today(),
                applied_by=actor.user_id,
                applied_at=self.services.clock(),
                evidence=evidence_links,
                inspectorate_reports=report_links,
            )
            s.add(application)
            await s.flush()
            result = await self._reevaluate(s, history, application)
            self.services.audit(
                s,
                actor,
                "readmission.apply",
                fid,
                {
                    "application": application.id,
                    "evidence": evidence_links,
                    "reports": report_links,
                },
            )
        return self.services.outcome_of(factory, result)

    async def schedule_visit(self, actor: Actor, factory_id: str, day: str) -> date:
        """Schedule the unannounced verification visit; staff are reminded the day before."""
        await self.services.require(actor, "readmission unannounced")
        fid = validation.identifier(factory_id, "factory id")
        visit = validation.iso_date(day, "visit date")
        today = self.services.today()
        if visit < today:
            raise InvalidDate(
                f"The visit date {visit.isoformat()} is in the past.",
                f"Give a day from today ({today.isoformat()}) on.",
            )
        async with self.services.db.transaction(write=True) as s:
            factory = await self.services.existing_factory(s, fid, lock=True)
            application, history = await self._open_application(s, factory)
            application.unannounced_on = visit
            s.add(application)
            await s.flush()
            await self._reevaluate(s, history, application)
            subject = f"readmission:{application.id}"
            await queries.cancel_reminders(s, subject, ["unannounced_visit"], "visit moved")
            now = self.services.clock()
            eve = local_moment(visit - timedelta(days=1), self.services.settings.tz)
            await queries.add_reminders(s, [reminder("unannounced_visit", subject, eve, now)])
            self.services.audit(
                s,
                actor,
                "readmission.unannounced",
                fid,
                {"application": application.id, "visit_on": visit.isoformat()},
            )
            after_commit(s, self.services.wake_reminders)
        return visit

    async def decide(
        self, actor: Actor, factory_id: str, approve: bool, note: str | None
    ) -> StateOutcome:
        """Approve (the factory is readmitted: a new streak starts) or reject (it stays
        designated; a reason is required)."""
        action = "readmission approve" if approve else "readmission reject"
        await self.services.require(actor, action)
        fid = validation.identifier(factory_id, "factory id")
        text = validation.text(note, "reason", 2000) if (note or "").strip() else None
        if not approve and text is None:
            raise InvalidInput(
                "A rejection needs a reason.",
                f"`readmission reject {fid} <reason>`: the factory is told why.",
            )
        async with self.services.db.transaction(write=True) as s:
            factory = await self.services.existing_factory(s, fid, lock=True)
            application, history = await self._open_application(s, factory)
            application.decided_on = self.services.today()
            application.decision = "approved" if approve else "rejected"
            application.decided_by, application.decision_note = actor.user_id, text
            s.add(application)
            await s.flush()
            result = await self._reevaluate(s, history, application)
            await queries.cancel_reminders(s, f"readmission:{application.id}", note="decided")
            self.services.audit(
                s,
                actor,
                action.replace(" ", "."),
                fid,
                {"application": application.id, "note": text},
            )
        return self.services.outcome_of(factory, result)

    async def meeting_held(self, actor: Actor, factory_id: str, day: str) -> date:
        """Close the stakeholder-meeting follow-up of a designation."""
        await self.services.require(actor, "meeting held")
        fid = validation.identifier(factory_id, "factory id")
        held = validation.past_date(day, self.services.today(), "meeting date")
        async with self.services.db.transaction(write=True) as s:
            await self.services.existing_factory(s, fid)
            follow_up = await queries.open_follow_up(s, fid, "stakeholder_meeting")
            if follow_up is None:
                raise StateConflict(
                    f"`{fid}` has no stakeholder meeting to hold.",
                    "A meeting is tracked after each designation until it is marked held.",
                )
            follow_up.closed_on, follow_up.closed_by = held, actor.user_id
            s.add(follow_up)
            await queries.cancel_reminders(s, f"follow_up:{follow_up.id}", note="meeting held")
            self.services.audit(
                s,
                actor,
                "meeting.held",
                fid,
                {"follow_up": follow_up.id, "held_on": held.isoformat()},
            )
        return held

    async def _history(
        self, s: AsyncSession, factory: Factory
    ) -> tuple[queries.Histories, policy.Evaluation]:
        """The factory's history (read once per use case) and what it means."""
        h = await queries.load_histories(s, [factory.id], {factory.id: factory})
        country = self.services.countries.country(factory.country)
        return h, policy.evaluate(
            country.rules,
            factory.id,
            h.assessments.get(factory.id, []),
            h.readmissions.get(factory.id, []),
            verdicts=False,
        )

    async def _open_application(
        self, s: AsyncSession, factory: Factory
    ) -> tuple[Readmission, queries.Histories]:
        h, state = await self._history(s, factory)
        if state.open_application is None:
            raise StateConflict(
                f"`{factory.id}` has no readmission application under review ({state.label}).",
                f"The factory applies first: `readmission apply {factory.id} <evidence link>`.",
            )
        application = await s.get(Readmission, state.open_application.id)
        assert application is not None
        return application, h

    async def _reevaluate(
        self, s: AsyncSession, h: queries.Histories, application: Readmission
    ) -> Reevaluation:
        """Re-evaluate the history read before, with the application as it now stands."""
        fid = application.factory_id
        assert application.id is not None
        h.readmissions[fid] = [
            *(r for r in h.readmissions.get(fid, []) if r.id != application.id),
            queries.as_readmission(application),
        ]
        return (await self.services.reevaluate(s, [fid], Notice.DUE, h))[fid]


def follow_up_for(event_id: int, factory_id: str, now: datetime) -> FollowUp:
    return FollowUp(
        kind="stakeholder_meeting", factory_id=factory_id, event_id=event_id, opened_at=now
    )
