"""The outbox's rules of delivery: claims under a lease, outcomes, retries, paused channels.

A dispatcher (``bot.dispatcher``) claims due notices of one channel under a lease, hands them
to a transport and records each outcome as it completes — only if the claim is still its own.
The lease of the notices not yet recorded is renewed every third of it while the batch is being
delivered. A lease that expires (the process was killed) is taken over by the next claim, which
counts an attempt: a notice in flight at a crash may be delivered twice, with the same
Message-ID; one whose claims keep expiring is dead on the last attempt.

- transient failures (SMTP 4xx, a lost connection, Slack 5xx) retry with exponential backoff and
  jitter — the first within a minute — until ``max_attempts``, then the notice is dead;
- permanent failures (SMTP 5xx, every recipient refused) are dead at once; staff are alerted of
  every dead notice, each time it dies — one alert per cause and window, counting them all
  (``DeliveryAlerts.dead``; an alert about a dead alert is only logged);
- when some recipients took a message and others refused it, only the refused ones are retried
  (all of them while any refusal is temporary; dead when every refusal left is permanent);
- Slack's 429 hands the post and the rest of its batch back to wait for ``Retry-After``,
  without counting an attempt;
- a channel that cannot deliver at all (SMTP unreachable, bad credentials or TLS, a revoked Slack
  token) is paused for everyone, with a growing pause, without counting attempts; staff are
  alerted when a person must act, or when it stays down.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot import notices
from bot.countries import Countries, Country
from bot.metrics import INSTRUMENTS
from bot.settings import Settings
from bot.transports import ChannelDown, Outcome, Result
from bot.vocabulary import Channel, NoticeKind, OutboxStatus
from store import access, history, outbox
from store.db import Database, Session
from store.outbox import UNSUPPORTED, Claimed

log = logging.getLogger(__name__)

#: writes notices in the caller's transaction (``Core.enqueue``)
Enqueue = Callable[[Session, Sequence[notices.Notice]], Awaitable[None]]
#: wakes the dispatcher once the session's transaction commits (it wrote notices)
Written = Callable[[Session], None]
Clock = Callable[[], datetime]
#: attempts at finding (or writing) the alert a dead notice is counted in, when dispatchers race
_ALERT_TRIES = 10


@dataclass(frozen=True)
class RetryPolicy:
    batch: int = 50
    lease: timedelta = timedelta(minutes=2)
    max_attempts: int = 10
    first_retry: float = 30.0  # seconds; doubled each attempt
    max_retry: float = 3600.0
    first_pause: float = 15.0  # seconds a channel that is down is paused; doubled each time
    max_pause: float = 300.0
    #: alert staff when a channel has been down this many times in a row
    alert_after_pauses: int = 4
    #: the window of the alerts about dead notices: the first death of a cause in it is told
    #: at once, the later ones together when it ends
    alert_every: timedelta = timedelta(hours=1)

    def backoff(self, attempts: int, rng: random.Random) -> timedelta:
        """How long to wait before the next attempt after ``attempts`` failed ones."""
        base = min(self.max_retry, self.first_retry * 2 ** (attempts - 1))
        return timedelta(seconds=base * rng.uniform(0.75, 1.25))

    def pause(self, failures: int, rng: random.Random) -> timedelta:
        """How long a channel down ``failures`` times in a row is paused."""
        seconds = min(self.max_pause, self.first_pause * 2 ** (failures - 1))
        return timedelta(seconds=seconds * rng.uniform(0.9, 1.1))


def wait_of(result: Result) -> float:
    """How long a WAIT outcome asks to wait, in seconds."""
    return result.retry_after or 30.0


def outcome_values(
    row: Claimed, result: Result, now: datetime, policy: RetryPolicy, rng: random.Random
) -> dict[str, Any]:
    """What a delivery's outcome makes of its outbox row."""
    delivered = [*row.delivered_to, *result.accepted]
    remaining = [a for a in row.addresses if a not in result.accepted]
    match result.outcome:
        case Outcome.SENT:
            return {
                "status": OutboxStatus.SENT,
                "sent_at": now,
                "last_error": None,
                "provider_reply": (result.reply or "")[:500],
                "delivered_to": [*row.delivered_to, *row.addresses],
            }
        case Outcome.WAIT:
            return {
                "status": OutboxStatus.PENDING,
                "attempts": row.attempts - 1,
                "next_attempt_at": now + timedelta(seconds=wait_of(result)),
                "last_error": (result.error or "")[:1000],
            }
        case Outcome.RETRY if row.attempts < policy.max_attempts:
            return {
                "status": OutboxStatus.PENDING,
                "next_attempt_at": now + policy.backoff(row.attempts, rng),
                "last_error": (result.error or "")[:1000],
                "addresses": remaining,
                "delivered_to": delivered,
            }
        case _:  # permanent, or out of attempts
            why = result.error or "failed"
            if result.outcome == Outcome.RETRY:
                why = f"gave up after {row.attempts} attempts: {why}"
            return {
                "status": OutboxStatus.DEAD,
                "last_error": why[:1000],
                "addresses": remaining,
                "delivered_to": delivered,
            }


class Outbox:
    """One dispatcher's hold on the outbox: what it claims, renews, records and pauses."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        alerts: DeliveryAlerts,
        *,
        policy: RetryPolicy = RetryPolicy(),
        name: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.alerts = alerts
        self.policy = policy
        self.name = (name or f"{socket.gethostname()}:{id(self):x}")[:100]
        self.rng = rng or random.Random()

    async def paused(self, channel: str) -> bool:
        async with self.db.transaction() as s:
            until = await outbox.paused_until(s, channel)
        return until is not None and until > self.clock()

    async def claim(self, channel: str) -> list[Claimed]:
        """The due notices of a channel, claimed under a lease, oldest first. Claims taken over
        on their last attempt are dead-lettered, and notices whose event the history no longer
        supports are cancelled, instead of being handed out."""
        now = self.clock()
        async with self.db.transaction(write=True) as s:
            rows = await outbox.claim(
                s,
                channel,
                now,
                limit=self.policy.batch,
                lease_until=now + self.policy.lease,
                claimed_by=self.name,
            )
            spent = [r for r in rows if r.attempts > self.policy.max_attempts]
            if spent:
                await self._give_up(s, spent)
                rows = [r for r in rows if r not in spent]
            withdrawn = await self._withdrawn(s, rows)
            rows = [r for r in rows if r not in withdrawn]
        return sorted(rows, key=lambda r: (r.next_attempt_at, r.id))

    async def _withdrawn(self, s: Session, rows: list[Claimed]) -> list[Claimed]:
        """Cancel, and return, the claimed notices whose event the history no longer supports.

        A correction cancels the notices of such events that wait, but one in flight then
        cannot be recalled (it counts as told); if that attempt failed or the channel was
        paused, it comes back here and must not be tried again. One query per batch."""
        events = {r.event_id for r in rows if r.event_id is not None}
        if not events:
            return []
        gone = await history.unsupported_events(s, events)
        withdrawn = [r for r in rows if r.event_id in gone]
        if withdrawn:
            await outbox.cancel_claimed(s, [r.id for r in withdrawn], UNSUPPORTED)
        return withdrawn

    async def _give_up(self, s: Session, rows: list[Claimed]) -> None:
        """Dead-letter claims taken over after their lease expired on the last attempt: each
        time, the dispatcher delivering them stopped (or hung) before it could record what
        happened — a notice that crashes whoever sends it must not be retried for ever."""
        why = (
            f"gave up after {self.policy.max_attempts} attempts: each time, the dispatcher "
            "delivering it stopped before recording the outcome"
        )
        await outbox.dead_letter(s, [r.id for r in rows], why)
        for row in rows:
            INSTRUMENTS.delivered(row.channel, OutboxStatus.DEAD)
            row.attempts -= 1
            await self.alerts.dead(s, row, why, self.clock(), self.policy.alert_every)

    async def record(
        self, row: Claimed, result: Result, channel: str, *, clear_pause: bool = False
    ) -> None:
        """Record one outcome at once — only if the claim is still this dispatcher's."""
        values = outcome_values(row, result, self.clock(), self.policy, self.rng)
        if values["status"] == OutboxStatus.DEAD:  # rare: the outcome and the alert together
            async with self.db.transaction(write=True) as s:
                if ours := await outbox.record(await s.connection(), row.id, self.name, values):
                    error, every = values["last_error"], self.policy.alert_every
                    await self.alerts.dead(s, row, error, self.clock(), every)
            if ours:
                INSTRUMENTS.delivered(channel, OutboxStatus.DEAD)
            return
        # the common case, on the hot path; a pause is cleared by any delivery, even one whose
        # notice another dispatcher took over meanwhile (the channel delivered all the same)
        ours = await outbox.record_now(
            self.db.hot, row.id, self.name, values, clear_pause=channel if clear_pause else None
        )
        if not ours:
            log.warning("notice %s was taken over by another dispatcher", row.id)
        elif result.outcome == Outcome.SENT:
            latency = (values["sent_at"] - row.created_at).total_seconds()
            INSTRUMENTS.delivered(channel, result.outcome, latency=latency)
        else:
            INSTRUMENTS.delivered(channel, result.outcome)

    @contextlib.asynccontextmanager
    async def kept(self, batch: Batch) -> AsyncIterator[None]:
        """Renew the claim on the batch while the block runs (stopped, and any renewal under
        way finished, when it ends)."""
        stop = asyncio.Event()
        keeper = asyncio.create_task(self._keep(batch, stop))
        try:
            yield
        finally:
            stop.set()
            await keeper

    async def _keep(self, batch: Batch, stop: asyncio.Event) -> None:
        """While a batch is being delivered, renew the lease of its notices not yet recorded,
        every third of the lease — however long one message takes. Notices found claimed by
        another dispatcher meanwhile (this one stalled past its lease) are marked
        ``taken_over``, and the transports skip them."""
        period = self.policy.lease.total_seconds() / 3
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period)
                return
            rows = batch.unfinished()
            if not rows:
                continue
            until = self.clock() + self.policy.lease
            try:
                async with self.db.connection(write=True) as conn:
                    kept = await outbox.renew(conn, [r.id for r in rows], self.name, until)
            except Exception:
                log.exception("could not renew the claim on %d notices", len(rows))
                continue
            batch.renewed(rows, kept)

    async def pause(self, channel: str, exc: ChannelDown, rows: Sequence[Claimed]) -> None:
        """Pause the channel for every dispatcher and give the claimed notices back."""
        now = self.clock()
        async with self.db.transaction(write=True) as s:
            state = await outbox.lock_channel(s, channel)
            failures = state.failures + 1
            until = now + self.policy.pause(failures, self.rng)
            alert = (exc.config or failures >= self.policy.alert_after_pauses) and not state.alerted
            await outbox.pause_channel(
                s,
                channel,
                until=until,
                reason=exc.reason,
                failures=failures,
                alerted=bool(alert or state.alerted),
            )
            await outbox.give_back(s, rows, self.name, until=until, why=exc.reason[:1000])
            log.warning("%s channel paused until %s: %s", channel, until.isoformat(), exc.reason)
            if alert and channel != Channel.SLACK:
                await self.alerts.paused(s, channel, exc.reason, until, now)
        for _ in rows:  # given back, without an attempt spent
            INSTRUMENTS.delivered(channel, "paused")


class Batch:
    """A claimed batch being delivered: which notices have their outcome recorded, and which
    were found taken over by another dispatcher (the transports skip those)."""

    def __init__(self, ready: Sequence[tuple[Claimed, Any]]) -> None:
        self.ready = ready
        self.finished: set[int] = set()

    def unfinished(self) -> list[Claimed]:
        """The notices still claimed whose outcome is not recorded (yet)."""
        return [row for row, _ in self.ready if row.id not in self.finished and not row.taken_over]

    def renewed(self, rows: Sequence[Claimed], kept: Collection[int]) -> None:
        """After a renewal: the rows it did not find ours are taken over (unless recorded
        meanwhile)."""
        for row in rows:
            if row.id not in kept and row.id not in self.finished:
                row.taken_over = True
                log.warning("notice %s was taken over by another dispatcher: skipped", row.id)


class DeliveryAlerts:
    """What staff are told about deliveries: notices dead, a channel paused."""

    def __init__(
        self, settings: Settings, countries: Countries, enqueue: Enqueue, written: Written
    ) -> None:
        self.settings = settings
        self.countries = countries
        self.enqueue = enqueue
        self.written = written

    async def dead(
        self, s: Session, row: Claimed, error: str, now: datetime, every: timedelta
    ) -> None:
        """Count a dead notice — each time it dies, also after ``outbox retry`` — in the staff
        alert of its cause (``notices.cause_of``: the channel and the error, addresses and
        numbers aside; and the staff channel told) and window (``every``), not one alert each.

        The first death of a cause in a window is told at once; deaths while that alert waits
        are added to it; once it has gone out, the window's later deaths are gathered in one
        summary due when the window ends — unless staff retried notices since it went out: then
        the next death is told at once again. Alerts are keyed by cause, window and number,
        written ``ON CONFLICT DO NOTHING`` and added to under a row lock, so any number of
        dispatchers write each one once and count every death. A dead alert is only logged, so
        a Slack that refuses alerts cannot make them multiply."""
        log.error("notice %s (%s to %s) is dead: %s", row.id, row.kind, row.recipient_name, error)
        if row.kind == NoticeKind.DELIVERY_FAILED:
            return
        country = self._country(row)
        if row.channel == Channel.SLACK and country and country.staff_channel in row.addresses:
            country = None  # the country's staff channel refused it: tell the default one
        target = (country.staff_channel if country else None) or self.settings.staff_channel
        if not target:
            return
        cause = f"{target}\n{notices.cause_of(row.channel, error)}"
        base = "delivery_failed/" + hashlib.sha256(cause.encode()).hexdigest()[:24]
        seconds = every.total_seconds()
        window = current = int(now.timestamp() // seconds)
        factory = _factory(row)
        for _ in range(_ALERT_TRIES):
            number, last = await _last_alert(s, f"{base}/{window}")
            if last is not None and last.status == OutboxStatus.PENDING:
                summary = notices.one_more_death(last.payload, row.id, row.kind, factory)
                same = last.factory_id if last.factory_id == row.factory_id else None
                if await outbox.add_to(s, last.id, summary, same):
                    return
            elif (
                last is None
                or window > current
                or await access.retried_since(s, last.sent_at or last.created_at)
            ):
                due = max(now, datetime.fromtimestamp(window * seconds, UTC))
                key = f"{base}/{window}/{number + 1}"
                if await self._write(s, key, country, row, error, factory, every, now, due):
                    return
            else:
                window += 1  # it went out: the window's summary gathers the rest
        log.error("notice %s: no alert of its cause could be found or written", row.id)
        key = f"{base}/notice/{row.id}/{now.isoformat()}"
        await self._write(s, key, country, row, error, factory, every, now, now)

    async def _write(
        self,
        s: Session,
        key: str,
        country: Country | None,
        row: Claimed,
        error: str,
        factory: dict[str, Any] | None,
        every: timedelta,
        now: datetime,
        due: datetime,
    ) -> bool:
        """Write a new alert counting one dead notice, due at ``due``; False if another
        dispatcher wrote that key first."""
        context = notices.death(
            row.id, row.kind, row.channel, row.recipient_name, factory, error, row.attempts
        ) | {"window_minutes": int(every.total_seconds() // 60)}
        alert = notices.staff_alert(
            key,
            NoticeKind.DELIVERY_FAILED,
            country,
            self.settings.staff_channel,
            context,
            factory_id=row.factory_id,
        )
        if alert is None:  # no staff channel to tell: only logged
            return True
        values = notices.outbox_row(alert, now, self.settings.mail_domain)
        if not await outbox.add_once(s, values | {"next_attempt_at": due}):
            return False
        self.written(s)
        return True

    async def paused(
        self, s: Session, channel: str, reason: str, until: datetime, now: datetime
    ) -> None:
        notice = notices.staff_alert(
            f"channel_paused/{channel}/{now.isoformat()}",
            NoticeKind.CHANNEL_PAUSED,
            None,
            self.settings.staff_channel,
            {
                "channel": channel,
                "reason": reason,
                "until": until.astimezone(self.settings.tz).strftime("%Y-%m-%d %H:%M"),
            },
        )
        if notice is not None:
            await self.enqueue(s, [notice])

    def _country(self, row: Claimed) -> Country | None:
        code = (row.payload.get("country") or {}).get("code")
        return self.countries.get(code) if code else None


async def _last_alert(s: Session, prefix: str) -> tuple[int, Any]:
    """The number of the last alert written under ``prefix`` (0 if none) and that alert, locked
    (``prefix/1``, ``prefix/2``, …: each found by its unique key)."""
    number, last = 0, None
    while (found := await outbox.keyed(s, f"{prefix}/{number + 1}")) is not None:
        number, last = number + 1, found
    if last is not None:
        last = await outbox.keyed(s, last.key, lock=True)
    return number, last


def _factory(row: Claimed) -> dict[str, Any] | None:
    """The factory a dead notice was about, as its alert names it."""
    factory = row.payload.get("factory")
    if isinstance(factory, dict) and factory.get("id"):
        return {"id": factory["id"], "name": factory.get("name") or factory["id"]}
    return {"id": row.factory_id, "name": row.factory_id} if row.factory_id else None
