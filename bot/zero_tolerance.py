"""The Zero Tolerance Protocol, pure: which findings of a factory's assessments are
zero-tolerance cases, when their deadlines fall, and how a case moves on.

Child labour, forced labour, violence or an imminent threat to workers' safety, found at any
visit, is escalated to the authorities at once, whatever the assessments count towards PNC.
Every live assessment of any kind (advisory and verification visits too, counted or not, before
``public_reporting_since`` too) with a code of the country's ``zero_tolerance`` list is a
finding with a stable key, ``ztp:<assessment id>:<code>``, so re-evaluating a history opens no
case twice. A case never counts towards PNC: the policy (``bot.policy``) does not read it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from bot import validation
from bot.errors import ConfigError, PncError
from bot.policy import AssessmentRecord
from bot.vocabulary import NoticeMode, ZtpStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ZeroTolerance:
    """A country's Zero Tolerance Protocol (``Country.ztp``): the issue codes whose finding, at
    any visit, is escalated to the authorities at once (never counted towards PNC), their
    addresses and language, and the hours they are asked to open an investigation and agree
    an action plan in (the Egypt version, 2021: 48 and 72)."""

    codes: frozenset[str] = frozenset()
    emails: tuple[str, ...] = ()
    #: the language of the email to the authorities (``vi``: Vietnamese, with English below)
    language: str = "en"
    investigation_hours: int = 48
    action_plan_hours: int = 72


def configured(
    country: str,
    values: Mapping[str, Any],
    catalogue: Collection[str],
    marked: frozenset[str],
    builtin_marked: frozenset[str],
    suggest: Callable[[str, int], list[str]],
) -> ZeroTolerance:
    """A country's protocol from its config values (``zero_tolerance``, ``ztp_emails``,
    ``ztp_language``, ``ztp_*_hours``), checked: its codes in its ``catalogue`` (by default
    those it ``marked``; a catalogue that marks none keeps the built-in one's marks, codes
    being stable), its addresses valid, the action plan due after the investigation."""
    given = values.get("zero_tolerance")
    if given is None:
        codes = marked or frozenset(c for c in builtin_marked if c in catalogue)
        if not codes:
            log.warning(
                "Country %s: its issue catalogue marks no zero-tolerance issue, so no assessment "
                "opens a zero-tolerance case; name the codes with zero_tolerance = [...] in "
                "[countries.%s] (cases can still be opened with /pnc ztp open)",
                country,
                country,
            )
    else:
        codes = frozenset(c.strip().upper() for c in given)
    unknown = sorted(c for c in codes if c not in catalogue)
    if unknown:
        close = sorted({m for c in unknown for m in suggest(c, 2)})
        hint = f"Did you mean {', '.join(close)}? " if close else ""
        raise ConfigError(
            f"Country {country}: zero_tolerance names "
            f"{'a code' if len(unknown) == 1 else 'codes'} not in its issue catalogue: "
            f"{', '.join(unknown)}.",
            f"{hint}Name codes of the catalogue (`pnc-bot issues {country}` lists them).",
        )
    emails = values.get("ztp_emails") or ()
    try:
        emails = validation.emails(emails, "ztp_emails") if emails else ()
    except PncError as exc:
        raise ConfigError(f"Country {country}, ztp_emails: {exc.message}", exc.hint) from None
    default = ZeroTolerance()
    investigation = values.get("ztp_investigation_hours") or default.investigation_hours
    action_plan = values.get("ztp_action_plan_hours") or default.action_plan_hours
    if action_plan <= investigation:
        raise ConfigError(
            f"Country {country}: ztp_action_plan_hours ({action_plan}) is not after "
            f"ztp_investigation_hours ({investigation}).",
            "The authorities open an investigation first (48 hours by default), then agree an "
            "action plan (72 hours by default).",
        )
    language = values.get("ztp_language") or values.get("inspectorate_language") or "en"
    return ZeroTolerance(codes, emails, language, investigation, action_plan)


@dataclass(frozen=True, order=True)
class Finding:
    """A zero-tolerance code found by an assessment."""

    assessment_id: int
    code: str
    factory_id: str
    assessed_on: date
    kind: str

    @property
    def key(self) -> str:
        return finding_key(self.assessment_id, self.code)


def finding_key(assessment_id: int, code: str) -> str:
    """The stable key of the case an assessment's finding opens."""
    return f"ztp:{assessment_id}:{code}"


def manual_key(factory_id: str, token: str) -> str:
    """The key of a case opened by hand (``token``: unique, e.g. a random hex string)."""
    return f"ztp:manual:{factory_id}:{token}"


def findings(
    factory_id: str, assessments: Iterable[AssessmentRecord], codes: frozenset[str]
) -> list[Finding]:
    """Every (assessment, zero-tolerance code) pair of these live assessments, in order."""
    if not codes:
        return []
    return sorted(
        Finding(a.id, code, factory_id, a.assessed_on, a.kind)
        for a in assessments
        for code in a.nc_issues & codes
    )


class Handling(StrEnum):
    """What becomes of a finding that has no case yet."""

    #: a case is opened and escalated: staff alert, the authorities' email, the deadlines
    ESCALATE = "escalate"
    #: a case is recorded closed, escalated to nobody (a historic import)
    RECORD_ONLY = "record_only"
    #: nothing: it was recorded long before (before cases were tracked, or before its code was
    #: zero-tolerance); staff open a case by hand if it is still current
    LEAVE = "leave"


def handling(
    ztp: ZeroTolerance, mode: NoticeMode, recorded_at: datetime, now: datetime
) -> Handling:
    """What to do with a finding without a case. A historic import (``SUPPRESSED``) tells
    nobody, but records the case closed, so that the next re-evaluation does not escalate it.
    Otherwise (``DUE``; ``HELD`` too: zero-tolerance escalation is not subject to PNC review)
    a finding whose assessment was recorded or amended within the action-plan window is
    escalated; an older one predates case tracking and is left alone."""
    if mode is NoticeMode.SUPPRESSED:
        return Handling.RECORD_ONLY
    if recorded_at >= now - timedelta(hours=ztp.action_plan_hours):
        return Handling.ESCALATE
    return Handling.LEAVE


@dataclass(frozen=True)
class Deadlines:
    """When the authorities are asked to open an investigation and agree an action plan."""

    investigation: datetime
    action_plan: datetime


def deadlines(opened_at: datetime, ztp: ZeroTolerance) -> Deadlines:
    return Deadlines(
        opened_at + timedelta(hours=ztp.investigation_hours),
        opened_at + timedelta(hours=ztp.action_plan_hours),
    )


# --- progress on a case -----------------------------------------------------------------------

#: the order a case moves in; an update moves it forward only
ORDER = (ZtpStatus.OPEN, ZtpStatus.INVESTIGATING, ZtpStatus.ACTION_PLAN, ZtpStatus.CLOSED)
#: what people type for each status an update records
WORDS = {
    "investigating": ZtpStatus.INVESTIGATING,
    "action-plan": ZtpStatus.ACTION_PLAN,
    "closed": ZtpStatus.CLOSED,
}


def word_of(status: str) -> str:
    """The word people type (and read) for a status: ``action-plan`` for ``action_plan``."""
    return status.replace("_", "-")


class Move(StrEnum):
    """Whether an update may move a case from one status to another."""

    FORWARD = "forward"
    CLOSED = "closed"
    SAME = "same"
    BACKWARDS = "backwards"


def move(current: str, wanted: ZtpStatus) -> Move:
    """A case moves forward only (steps may be skipped: the authorities may agree an action
    plan at once); a closed case stays closed; recording the status it has is refused."""
    now = ZtpStatus(current)
    if now is ZtpStatus.CLOSED:
        return Move.CLOSED
    if wanted is now:
        return Move.SAME
    return Move.FORWARD if ORDER.index(wanted) > ORDER.index(now) else Move.BACKWARDS


def overdue(status: str, deadline: str) -> bool:
    """Whether a case at ``status`` has missed ``deadline`` (``investigation`` or
    ``action_plan``) once it has passed: no investigation recorded, or no action plan."""
    reached = ORDER.index(ZtpStatus(status))
    wanted = ZtpStatus.INVESTIGATING if deadline == "investigation" else ZtpStatus.ACTION_PLAN
    return reached < ORDER.index(wanted)


# --- what people read --------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseLine:
    """A zero-tolerance case as ``/pnc ztp``, ``status`` and the CLI show it."""

    id: int
    factory_id: str
    factory_name: str
    code: str
    issue: str
    assessment_id: int | None
    assessed_on: date | None
    status: str
    opened_at: datetime
    opened_by: str
    note: str | None
    deadlines: Deadlines
    updated_at: datetime | None = None
    updated_by: str | None = None
    closed_at: datetime | None = None
    #: the case's stable key (its notices' keys start with it)
    key: str = ""

    @property
    def by_hand(self) -> bool:
        return self.assessment_id is None

    @property
    def status_word(self) -> str:
        return word_of(self.status)

    def late(self, now: datetime) -> list[str]:
        """The deadlines it has missed by ``now`` (``investigation``, ``action_plan``)."""
        return [
            name
            for name, due in (
                ("investigation", self.deadlines.investigation),
                ("action_plan", self.deadlines.action_plan),
            )
            if due <= now and overdue(self.status, name)
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "factory_id": self.factory_id,
            "code": self.code,
            "issue": self.issue,
            "assessment_id": self.assessment_id,
            "assessed_on": self.assessed_on.isoformat() if self.assessed_on else None,
            "status": self.status_word,
            "opened_at": self.opened_at.isoformat(),
            "opened_by": self.opened_by,
            "note": self.note,
            "investigation_due": self.deadlines.investigation.isoformat(),
            "action_plan_due": self.deadlines.action_plan.isoformat(),
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
        }
