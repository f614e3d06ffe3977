"""What every use case shares: the database, the configuration in force, the clock, the audit
log, the outbox's door and the wake-ups of the workers. Small on purpose: a use case's own
logic lives in its own module."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from bot import notices
from bot.countries import Config, Countries, Country
from bot.roles import Actor
from bot.settings import Settings
from bot.usecases.read_audits import ReadAudits
from bot.vocabulary import AuditOutcome
from store import access, outbox
from store.db import Database, Session, after_commit
from store.models import utcnow

Clock = Callable[[], datetime]

#: who the bot's own entries are by (the audit log, follow-ups it closed)
SYSTEM = "pnc-bot"
#: reminders about a day go out at this local time
WORKDAY_START = time(9, 0)


def local_moment(day: date, tz: ZoneInfo, at: time = WORKDAY_START) -> datetime:
    """``day`` at ``at`` in the time zone, as an aware datetime."""
    return datetime.combine(day, at, tzinfo=tz)


@dataclass
class Wakeups:
    """Called after a commit that wrote notices (the dispatcher) or reminders (the reminder
    runner); each worker sets its own when it starts."""

    notices: Callable[[], None] | None = None
    reminders: Callable[[], None] | None = None


@dataclass
class Core:
    db: Database
    config: Config
    settings: Settings
    clock: Clock = utcnow
    wakeups: Wakeups = field(default_factory=Wakeups)
    #: the audit entries of read commands, written in batches (``bot.usecases.read_audits``)
    read_audits: ReadAudits = field(init=False)

    def __post_init__(self) -> None:
        self.read_audits = ReadAudits(self.db)

    @property
    def countries(self) -> Countries:
        return self.config.countries

    def country(self, code: str | None = None) -> Country:
        """A country with its rules and catalogue in force (the default one when not named)."""
        return self.countries.country(code) if code else self.countries.default

    def today(self) -> date:
        """Today in the configured time zone (assessment dates are local dates)."""
        return self.clock().astimezone(self.settings.tz).date()

    # --- the audit log ------------------------------------------------------------------------

    def audit(
        self,
        s: Session,
        actor: Actor,
        action: str,
        subject: str | None,
        detail: dict[str, Any],
        outcome: AuditOutcome = AuditOutcome.OK,
    ) -> None:
        """What a person did, written in the transaction that does it."""
        access.add_audit_entry(
            s,
            at=self.clock(),
            actor=actor.user_id,
            source=actor.source[:200],
            action=action,
            subject=subject,
            outcome=outcome,
            detail=detail,
        )

    def audit_system(self, s: Session, action: str, subject: str, detail: dict[str, Any]) -> None:
        """What the bot did on its own (a history re-evaluated, a follow-up closed)."""
        access.add_audit_entry(
            s,
            at=self.clock(),
            actor=SYSTEM,
            source="policy",
            action=action,
            subject=subject,
            outcome=AuditOutcome.OK,
            detail=detail,
        )

    # --- the outbox and the workers -------------------------------------------------------------

    async def enqueue(
        self,
        s: Session,
        rows: Sequence[notices.Notice],
        event_of: dict[str, int] | None = None,
    ) -> None:
        """Write notices to the outbox (in the caller's transaction); the dispatcher is woken
        once the transaction commits. ``event_of`` maps a notice's key to its event's id. A
        notice with no addresses (a referral while no Inspectorate address is configured) is
        written held (``notices.outbox_row``): ``referrals`` sends it once there is one."""
        if not rows:
            return
        now, domain, events = self.clock(), self.settings.mail_domain, event_of or {}
        await outbox.add_notices(
            s, [notices.outbox_row(n, now, domain, events.get(n.key)) for n in rows]
        )
        self.notices_written(s)

    def notices_written(self, s: Session) -> None:
        """Wake the dispatcher once the transaction commits."""
        after_commit(s, self.wake_dispatcher)

    def reminders_written(self, s: Session) -> None:
        """Wake the reminder runner once the transaction commits."""
        after_commit(s, self.wake_reminders)

    def wake_dispatcher(self) -> None:
        if self.wakeups.notices is not None:
            self.wakeups.notices()

    def wake_reminders(self) -> None:
        if self.wakeups.reminders is not None:
            self.wakeups.reminders()
