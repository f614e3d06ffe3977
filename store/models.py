"""The tables. The history (assessments, readmission applications) is the truth; a factory's
``state`` and ``streak`` are a snapshot of what the policy made of it, rewritten in every
transaction that changes the history, kept only so lists ("who is at risk?") need no scan."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.policy import State
from bot.vocabulary import NoticeMode, OutboxStatus, ReminderStatus
from store.columns import TableModel
from store.columns import UTCDateTime as UTCDateTime
from store.columns import json_dict as _json_dict
from store.columns import json_list as _json_list
from store.columns import utcnow as utcnow
from store.columns import when as _when


class Factory(TableModel, table=True):
    __tablename__ = "factory"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    country: str = Field(max_length=2, index=True)
    emails: list[str] = Field(sa_column=_json_list())
    #: language of the factory's notices; None means the country's default
    language: str | None = Field(default=None, max_length=2)
    cycle_end: date | None = None
    created_at: datetime = Field(sa_column=_when())
    updated_at: datetime = Field(sa_column=_when())
    # snapshot of the policy's verdict (see module docstring)
    state: str = Field(default=State.NOT_AT_RISK.value, max_length=32, index=True)
    streak: int = 0


class Buyer(TableModel, table=True):
    __tablename__ = "buyer"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    emails: list[str] = Field(sa_column=_json_list())
    created_at: datetime = Field(sa_column=_when())
    updated_at: datetime = Field(sa_column=_when())


class Subscription(TableModel, table=True):
    """A buyer subscribing to a factory's Better Work reports."""

    __tablename__ = "subscription"

    buyer_id: str = Field(foreign_key="buyer.id", primary_key=True, max_length=64)
    factory_id: str = Field(foreign_key="factory.id", primary_key=True, max_length=64, index=True)
    created_at: datetime = Field(sa_column=_when())


#: what makes an assessment count for the unique index of its factory and day
_LIVE = sa.text("withdrawn_at IS NULL")


class Assessment(TableModel, table=True):
    __tablename__ = "assessment"
    __table_args__ = (
        # one live assessment per factory and day; a withdrawn one frees its day (the same
        # condition on PostgreSQL, where the migrations add it: ``for_postgresql``)
        sa.Index(
            "uq_assessment_factory_day",
            "factory_id",
            "assessed_on",
            unique=True,
            sqlite_where=_LIVE,
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    factory_id: str = Field(foreign_key="factory.id", max_length=64, index=True)
    assessed_on: date
    kind: str = Field(default="regular", max_length=16)
    #: codes of the public-reporting issues found non-compliant, sorted
    nc_issues: list[str] = Field(sa_column=_json_list())
    submitted_by: str = Field(max_length=64, index=True)
    submitted_at: datetime = Field(sa_column=_when())
    #: where it came from: slack, shell, cli, import:<file name>
    source: str = Field(max_length=200)
    amended_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    amended_by: str | None = Field(default=None, max_length=64)
    amend_reason: str | None = Field(default=None, max_length=500)
    withdrawn_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    withdrawn_by: str | None = Field(default=None, max_length=64)
    withdraw_reason: str | None = Field(default=None, max_length=500)
    #: the date of the assessment report (Progress Report One is due 30 days after); None: the
    #: assessment's own date
    report_on: date | None = None


class Readmission(TableModel, table=True):
    """A designated factory's application for readmission, and its decision."""

    __tablename__ = "readmission"

    id: int | None = Field(default=None, primary_key=True)
    factory_id: str = Field(foreign_key="factory.id", max_length=64, index=True)
    applied_on: date
    applied_by: str = Field(max_length=64)
    applied_at: datetime = Field(sa_column=_when())
    evidence: list[str] = Field(sa_column=_json_list())
    inspectorate_reports: list[str] = Field(sa_column=_json_list())
    unannounced_on: date | None = None
    decided_on: date | None = None
    decision: str | None = Field(default=None, max_length=16)  # approved | rejected
    decided_by: str | None = Field(default=None, max_length=64)
    decision_note: str | None = Field(default=None, max_length=2000)


class PncEvent(TableModel, table=True):
    """An event the history gave rise to. ``key`` is the policy's stable key."""

    __tablename__ = "pnc_event"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    factory_id: str = Field(foreign_key="factory.id", max_length=64, index=True)
    kind: str = Field(max_length=32)
    occurred_on: date
    assessment_id: int | None = Field(default=None, foreign_key="assessment.id")
    application_id: int | None = Field(default=None, foreign_key="readmission.id")
    payload: dict[str, Any] = Field(sa_column=_json_dict())
    #: a ``bot.vocabulary.NoticeMode``
    notice: str = Field(default=NoticeMode.DUE.value, max_length=16)
    notified_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    created_at: datetime = Field(sa_column=_when())
    #: set when the history no longer supports the event
    unsupported_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    #: why a held event waits for staff review (``rules_changed`` or ``history_changed``)
    held_because: str | None = Field(default=None, max_length=32)
    #: the keys of the notified events the history no longer supported when it was held
    held_told: list[str] = Field(sa_column=_json_list(server_default="[]"))
    #: a held event reviewed: released (its notices planned) or dismissed, by whom and why
    reviewed_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    reviewed_by: str | None = Field(default=None, max_length=64)
    review_note: str | None = Field(default=None, max_length=500)


class Role(TableModel, table=True):
    __tablename__ = "role"

    user_id: str = Field(primary_key=True, max_length=64)
    role: str = Field(max_length=16)  # viewer | assessor | manager
    granted_by: str = Field(max_length=64)
    granted_at: datetime = Field(sa_column=_when())


class AuditEntry(TableModel, table=True):
    """Who did what, from where, and how it ended."""

    __tablename__ = "audit"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=_when(index=True))
    actor: str = Field(max_length=64, index=True)
    source: str = Field(max_length=200)
    action: str = Field(max_length=64)
    subject: str | None = Field(default=None, max_length=200)
    outcome: str = Field(max_length=16)  # ok | refused | error
    detail: dict[str, Any] = Field(sa_column=_json_dict())


class OutboxMessage(TableModel, table=True):
    """One notice to one recipient organisation over one channel (the transactional outbox).

    Written in the same transaction as the event that causes it; delivered by the dispatcher,
    which claims due rows under a lease. ``key`` makes it idempotent; the Message-ID derived
    from it is the same on every retry.
    """

    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=300, unique=True)
    #: the notice kind (PNC-Notice): an event kind, inspectorate_referral, buyer_call_reminder,
    #: or a staff alert (history_changed, delivery_failed, …)
    kind: str = Field(max_length=40)
    channel: str = Field(max_length=8)  # email | slack
    #: factory | buyer | inspectorate | staff
    recipient_type: str = Field(max_length=16)
    recipient_id: str = Field(max_length=64)
    recipient_name: str = Field(max_length=200)
    #: email addresses still to deliver to, or the Slack channel id
    addresses: list[str] = Field(sa_column=_json_list())
    #: addresses that accepted the message (a partial refusal retries only the others)
    delivered_to: list[str] = Field(sa_column=_json_list())
    language: str = Field(default="en", max_length=2)
    factory_id: str | None = Field(default=None, max_length=64, index=True)
    event_id: int | None = Field(default=None, foreign_key="pnc_event.id")
    #: everything the templates need, frozen when the notice is written
    payload: dict[str, Any] = Field(sa_column=_json_dict())
    message_id: str = Field(max_length=200)
    #: a ``bot.vocabulary.OutboxStatus``
    status: str = Field(default=OutboxStatus.PENDING.value, max_length=10)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=_when())
    lease_until: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    claimed_by: str | None = Field(default=None, max_length=100)
    last_error: str | None = Field(default=None, max_length=1000)
    #: the provider's answer: the SMTP reply, the Slack message ts, the file written (indexed:
    #: a button pressed on a staff alert finds the alert by its message's ts)
    provider_reply: str | None = Field(default=None, max_length=500, index=True)
    created_at: datetime = Field(sa_column=_when())
    sent_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class DeliveryChannel(TableModel, table=True):
    """A delivery channel paused for everyone (SMTP unreachable, bad credentials, …)."""

    __tablename__ = "delivery_channel"

    name: str = Field(primary_key=True, max_length=8)
    paused_until: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    reason: str | None = Field(default=None, max_length=500)
    #: consecutive pauses, for a growing pause
    failures: int = 0
    alerted: bool = False


class CallSeries(TableModel, table=True):
    """Buyer calls that recur (quarterly): its occurrences are ``buyer_call`` rows."""

    __tablename__ = "call_series"

    id: int | None = Field(default=None, primary_key=True)
    #: the first occurrence; the next ones fall ``months`` apart, at the same local time
    first_held_at: datetime = Field(sa_column=_when())
    months: int = 3
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_when())
    removed_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    removed_by: str | None = Field(default=None, max_length=64)


class BuyerCall(TableModel, table=True):
    """A quarterly call with buyer partners; reminders go out before it."""

    __tablename__ = "buyer_call"

    id: int | None = Field(default=None, primary_key=True)
    held_at: datetime = Field(sa_column=_when(index=True))
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_when())
    removed_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    removed_by: str | None = Field(default=None, max_length=64)
    #: the series it is an occurrence of, if it recurs
    series_id: int | None = Field(default=None, foreign_key="call_series.id", index=True)


class InspectorateVisit(TableModel, table=True):
    """A visit of the Labour Inspectorate to a designated factory, and the factory's improvement
    report in response (FAQ: an applicant for readmission submits one for each visit)."""

    __tablename__ = "inspectorate_visit"

    id: int | None = Field(default=None, primary_key=True)
    factory_id: str = Field(foreign_key="factory.id", max_length=64, index=True)
    visited_on: date
    recorded_by: str = Field(max_length=64)
    recorded_at: datetime = Field(sa_column=_when())
    #: the improvement report's link, once the factory sent it
    report: str | None = Field(default=None, max_length=2100)
    report_added_by: str | None = Field(default=None, max_length=64)
    report_added_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class FollowUp(TableModel, table=True):
    """Work that follows a designation until staff close it: the stakeholder meeting."""

    __tablename__ = "follow_up"
    __table_args__ = (sa.UniqueConstraint("kind", "event_id", name="uq_follow_up_kind_event"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)  # stakeholder_meeting
    factory_id: str = Field(foreign_key="factory.id", max_length=64, index=True)
    event_id: int = Field(foreign_key="pnc_event.id")
    opened_at: datetime = Field(sa_column=_when())
    closed_on: date | None = None
    closed_by: str | None = Field(default=None, max_length=64)


class Reminder(TableModel, table=True):
    """A reminder due at a moment: the truth of the schedule (APScheduler is only the clock).

    Claimed once (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and handled in the same transaction
    that writes its notices, so any number of replicas send it once, and a restart neither
    loses nor repeats it. One whose handling fails is tried again at ``retry_at``; ``due_at``
    stays the moment it was meant for.
    """

    __tablename__ = "reminder"
    __table_args__ = (
        sa.UniqueConstraint("kind", "subject", "due_at", name="uq_reminder_kind_subject_due"),
        sa.Index("ix_reminder_due", "status", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    #: a ``bot.vocabulary.ReminderKind``
    kind: str = Field(max_length=32)
    #: what it is about, a ``bot.vocabulary.Subject`` as text: "call:7", "readmission:3", …
    subject: str = Field(max_length=100)
    due_at: datetime = Field(sa_column=_when())
    #: a ``bot.vocabulary.ReminderStatus``
    status: str = Field(default=ReminderStatus.PENDING.value, max_length=10)
    created_at: datetime = Field(sa_column=_when())
    done_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    note: str | None = Field(default=None, max_length=300)
    #: failed attempts so far (tried again as ``scheduler.reminders.Retries`` says)
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    #: after a failed attempt: not tried again before this moment
    retry_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class SlackRequest(TableModel, table=True):
    """Signatures of Slack requests already served: a replayed request is refused (Slack signs
    each delivery anew, retries included)."""

    __tablename__ = "slack_request"

    signature: str = Field(primary_key=True, max_length=100)
    seen_at: datetime = Field(sa_column=_when(index=True))


class CountryRules(TableModel, table=True):
    """A fingerprint of each country's rules as the stored snapshots were last derived with:
    when the configuration changes them, the country's factories are re-evaluated at start."""

    __tablename__ = "country_rules"

    country: str = Field(primary_key=True, max_length=2)
    fingerprint: str = Field(max_length=64)
    updated_at: datetime = Field(sa_column=_when())


# --- the tables, for SQLAlchemy Core statements (bulk writes, claims, reports) ---------------

# the tables of zero-tolerance cases and progress reports, in a module of their own
from store.models_cases import ProgressReport as ProgressReport  # noqa: E402
from store.models_cases import ZtpCase as ZtpCase  # noqa: E402
from store.models_cases import ZtpUpdate as ZtpUpdate  # noqa: E402

FACTORIES = SQLModel.metadata.tables["factory"]
BUYERS = SQLModel.metadata.tables["buyer"]
SUBSCRIPTIONS = SQLModel.metadata.tables["subscription"]
ASSESSMENTS = SQLModel.metadata.tables["assessment"]
READMISSIONS = SQLModel.metadata.tables["readmission"]
EVENTS = SQLModel.metadata.tables["pnc_event"]
ROLES = SQLModel.metadata.tables["role"]
AUDIT = SQLModel.metadata.tables["audit"]
OUTBOX = SQLModel.metadata.tables["outbox"]
CHANNELS = SQLModel.metadata.tables["delivery_channel"]
CALLS = SQLModel.metadata.tables["buyer_call"]
CALL_SERIES = SQLModel.metadata.tables["call_series"]
VISITS = SQLModel.metadata.tables["inspectorate_visit"]
ZTP_CASES = SQLModel.metadata.tables["ztp_case"]
ZTP_UPDATES = SQLModel.metadata.tables["ztp_update"]
PROGRESS_REPORTS = SQLModel.metadata.tables["progress_report"]
FOLLOW_UPS = SQLModel.metadata.tables["follow_up"]
REMINDERS = SQLModel.metadata.tables["reminder"]
SLACK_REQUESTS = SQLModel.metadata.tables["slack_request"]
COUNTRY_RULES = SQLModel.metadata.tables["country_rules"]


def for_postgresql() -> None:
    """The tables' PostgreSQL options: the condition of the partial unique index of
    assessments. The migrations' environment adds them when it works on PostgreSQL (the schema
    is the migrations'; they compare it with these tables), not the table's declaration:
    naming a PostgreSQL option there makes SQLAlchemy import its whole PostgreSQL dialect
    package (~45 ms), which every command on SQLite would pay at start-up
    (``bench/cli_startup.py``; ``tests/e2e/test_cli.py`` checks what ``status`` imports)."""
    table = SQLModel.metadata.tables["assessment"]
    (index,) = (i for i in table.indexes if i.name == "uq_assessment_factory_day")
    index.dialect_kwargs["postgresql_where"] = _LIVE
