"""The words the bot stores and compares: statuses, kinds, channels, reminder subjects.

Each is a ``StrEnum`` (or a small frozen dataclass), so a value is written in one place and a
typo is a type error, while the database keeps the plain strings it always held. Pure: nothing
here does I/O or imports the rest of the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class OutboxStatus(StrEnum):
    """Where a notice is on its way out (``outbox.status``)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"
    CANCELLED = "cancelled"
    #: not to be sent until someone can be addressed (a referral while the country has no
    #: Inspectorate address): released by configuring one, or by ``/pnc referral send``
    HELD = "held"


class ReminderStatus(StrEnum):
    """What became of a reminder (``reminder.status``)."""

    PENDING = "pending"
    DONE = "done"
    CANCELLED = "cancelled"
    #: its subject no longer needed it (a call removed, an application decided)
    SKIPPED = "skipped"
    #: its handler raised; staff were told
    FAILED = "failed"


class ReminderKind(StrEnum):
    BUYER_CALL = "buyer_call"
    READMISSION_REVIEW = "readmission_review"
    UNANNOUNCED_VISIT = "unannounced_visit"
    STAKEHOLDER_MEETING = "stakeholder_meeting"
    CYCLE_END = "cycle_end"
    #: a zero-tolerance case's deadlines: the authorities open an investigation (48 h), then
    #: agree an action plan (72 h)
    ZTP_INVESTIGATION = "ztp_investigation"
    ZTP_ACTION_PLAN = "ztp_action_plan"
    #: Progress Report One: the factory reminded before it is due, staff told once it is late
    PROGRESS_DUE = "progress_due"
    PROGRESS_OVERDUE = "progress_overdue"


class NoticeMode(StrEnum):
    """What to do about a new event's notices (``pnc_event.notice``)."""

    #: notify the factory, buyers, Inspectorate and staff
    DUE = "due"
    #: historic import: recorded, nobody notified
    SUPPRESSED = "suppressed"
    #: the history changed under notified events, or the rules changed: staff review first
    HELD = "held"
    #: held, then closed by staff without notices (``/pnc review dismiss``)
    DISMISSED = "dismissed"


class HeldBecause(StrEnum):
    """Why a new event waits for staff review (``pnc_event.held_because``)."""

    #: ``PNC_CONFIG`` changed the country's rules: nobody is notified of a rules change alone
    RULES_CHANGED = "rules_changed"
    #: the history changed under events people were told of: no contradicting notices
    HISTORY_CHANGED = "history_changed"


class Channel(StrEnum):
    EMAIL = "email"
    SLACK = "slack"


class Recipient(StrEnum):
    """Who a notice is for (``outbox.recipient_type``)."""

    FACTORY = "factory"
    BUYER = "buyer"
    INSPECTORATE = "inspectorate"
    STAFF = "staff"
    #: the authorities a zero-tolerance case is escalated to
    AUTHORITY = "authority"


class NoticeKind(StrEnum):
    """What a notice is (its ``PNC-Notice`` header, and the name of its templates)."""

    # an event's notices carry the event's kind (``bot.policy.EventKind``)
    AT_RISK_WARNING = "at_risk_warning"
    PROCESS_STOPPED = "process_stopped"
    PNC_DESIGNATED = "pnc_designated"
    READMISSION_APPLIED = "readmission_applied"
    UNANNOUNCED_SCHEDULED = "unannounced_scheduled"
    READMISSION_APPROVED = "readmission_approved"
    READMISSION_REJECTED = "readmission_rejected"
    # emails beside the events'
    INSPECTORATE_REFERRAL = "inspectorate_referral"
    BUYER_CALL_REMINDER = "buyer_call_reminder"
    # staff alerts
    BUYER_CALL_AGENDA = "buyer_call_agenda"
    HISTORY_CHANGED = "history_changed"
    RULES_CHANGED = "rules_changed"
    DELIVERY_FAILED = "delivery_failed"
    CHANNEL_PAUSED = "channel_paused"
    REMINDER_FAILED = "reminder_failed"
    READMISSION_REVIEW_REMINDER = "readmission_review_reminder"
    UNANNOUNCED_VISIT_REMINDER = "unannounced_visit_reminder"
    STAKEHOLDER_MEETING_REMINDER = "stakeholder_meeting_reminder"
    CYCLE_END_NOTICE = "cycle_end_notice"
    # zero-tolerance cases: the staff alert (urgent), the email to the authorities, the
    # reminders of their deadlines
    ZTP_OPENED = "ztp_opened"
    ZTP_REFERRAL = "ztp_referral"
    ZTP_DEADLINE = "ztp_deadline"
    # Progress Report One: the factory's reminder, the staff alert once it is overdue
    PROGRESS_REPORT_REMINDER = "progress_report_reminder"
    PROGRESS_REPORT_OVERDUE = "progress_report_overdue"


class Decision(StrEnum):
    """A readmission application's decision (``readmission.decision``)."""

    APPROVED = "approved"
    REJECTED = "rejected"


class FollowUpKind(StrEnum):
    STAKEHOLDER_MEETING = "stakeholder_meeting"


class ZtpStatus(StrEnum):
    """Where a zero-tolerance case stands (``ztp_case.status``)."""

    OPEN = "open"
    INVESTIGATING = "investigating"
    ACTION_PLAN = "action_plan"
    CLOSED = "closed"


class AuditOutcome(StrEnum):
    OK = "ok"
    REFUSED = "refused"
    ERROR = "error"


# --- what a reminder is about (``reminder.subject``) -------------------------------------------


@dataclass(frozen=True)
class CallSubject:
    """A quarterly buyer call."""

    call_id: int

    def __str__(self) -> str:
        return f"call:{self.call_id}"


@dataclass(frozen=True)
class ApplicationSubject:
    """A readmission application (its review, its unannounced visit)."""

    application_id: int

    def __str__(self) -> str:
        return f"readmission:{self.application_id}"


@dataclass(frozen=True)
class FollowUpSubject:
    """The stakeholder meeting that follows a designation."""

    follow_up_id: int

    def __str__(self) -> str:
        return f"follow_up:{self.follow_up_id}"


@dataclass(frozen=True)
class CycleEndSubject:
    """The end of a factory's service cycle, on a given day."""

    factory_id: str
    day: date

    def __str__(self) -> str:
        return f"{self.prefix(self.factory_id)}{self.day.isoformat()}"

    @staticmethod
    def prefix(factory_id: str) -> str:
        """What the subjects of a factory's cycle ends start with, whatever the day."""
        return f"factory:{factory_id}:"


@dataclass(frozen=True)
class ZtpSubject:
    """A zero-tolerance case (its deadlines)."""

    case_id: int

    def __str__(self) -> str:
        return f"ztp:{self.case_id}"


@dataclass(frozen=True)
class AssessmentSubject:
    """An assessment (its Progress Report One)."""

    assessment_id: int

    def __str__(self) -> str:
        return f"assessment:{self.assessment_id}"


Subject = (
    CallSubject
    | ApplicationSubject
    | FollowUpSubject
    | CycleEndSubject
    | ZtpSubject
    | AssessmentSubject
)


def parse_subject(text: str) -> Subject:
    """The subject a stored ``reminder.subject`` names; ``ValueError`` if it names none."""
    what, _, rest = text.partition(":")
    match what:
        case "call":
            return CallSubject(int(rest))
        case "readmission":
            return ApplicationSubject(int(rest))
        case "follow_up":
            return FollowUpSubject(int(rest))
        case "ztp":
            return ZtpSubject(int(rest))
        case "assessment":
            return AssessmentSubject(int(rest))
        case "factory":
            factory_id, _, day = rest.rpartition(":")
            if factory_id:
                return CycleEndSubject(factory_id, date.fromisoformat(day))
    raise ValueError(f"not a reminder subject: {text!r}")
