"""Delivers what the outbox holds.

Each round claims due notices of one channel (``UPDATE … RETURNING``; on PostgreSQL the rows are
picked with ``FOR UPDATE SKIP LOCKED``, so any number of dispatchers claim each notice once;
SQLite has one writer) under a lease, delivers them, and records each outcome — only if the
claim is still its own. The lease of the notices not yet recorded is renewed every third of it
while the batch is being delivered. A lease that expires (the process was killed) is taken over
by the next claim, which counts an attempt: a notice in flight at a crash may be delivered
twice, with the same Message-ID; one whose claims keep expiring is dead on the last attempt.

- transient failures (SMTP 4xx, a lost connection, Slack 5xx) retry with exponential backoff and
  jitter — the first within a minute — until ``max_attempts``, then the notice is dead;
- permanent failures (SMTP 5xx, every recipient refused) are dead at once; staff are alerted of
  every dead notice, each time it dies (an alert about a dead alert is only logged);
- when some recipients took a message and others refused it, only the refused ones are retried
  (all of them while any refusal is temporary; dead when every refusal left is permanent);
- Slack's 429 hands the post and the rest of its batch back to wait for ``Retry-After``,
  without counting an attempt, and the dispatcher wakes itself when the wait is over;
- a channel that cannot deliver at all (SMTP unreachable, bad credentials or TLS, a revoked Slack
  token) is paused for everyone, with a growing pause, without counting attempts; staff are
  alerted when a person must act, or when it stays down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot import mail, notices
from bot.countries import Config
from bot.render import render_slack
from bot.services import Clock, Services
from bot.settings import Settings
from bot.transports import ChannelDown, Outcome, Result, Transport
from handlers import blocks
from store import queries
from store.db import Database
from store.models import DeliveryChannel, OutboxMessage

log = logging.getLogger(__name__)

OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
CHANNELS = DeliveryChannel.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Policy:
    batch: int = 50
    lease: timedelta = timedelta(minutes=2)
    max_attempts: int = 10
    first_retry: float = 30.0  # seconds; doubled each attempt
    max_retry: float = 3600.0
    first_pause: float = 15.0  # seconds a channel that is down is paused; doubled each time
    max_pause: float = 300.0
    #: alert staff when a channel has been down this many times in a row
    alert_after_pauses: int = 4


class Dispatcher:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        config: Config,
        transports: Sequence[Transport],
        clock: Clock,
        *,
        policy: Policy = Policy(),
        name: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.config = config
        self.transports = {t.channel: t for t in transports}
        self.clock = clock
        self.policy = policy
        self.name = (name or f"{socket.gethostname()}:{id(self):x}")[:100]
        self.rng = rng or random.Random()
        #: staff alerts are written like every other notice; the commit that writes one wakes
        #: this dispatcher
        self.services = Services(db, config, settings, clock)
        self.services.on_notices = self.wake
        self._wake = asyncio.Event()
        self._stopping = False
        #: wake-ups due when a wait asked for by a provider (Slack's Retry-After) is over
        self._timers: list[asyncio.TimerHandle] = []

    # --- running ---------------------------------------------------------------------------

    def wake(self) -> None:
        """Deliver now (called after a commit that wrote notices)."""
        self._wake.set()

    def wake_in(self, seconds: float) -> None:
        """Deliver again once ``seconds`` have passed (a provider asked to wait that long)."""
        loop = asyncio.get_running_loop()
        self._timers = [t for t in self._timers if t.when() > loop.time()]
        # a hair late rather than early: the notices are due from exactly then
        self._timers.append(loop.call_later(seconds + 0.05, self.wake))

    async def run(self, interval: float = 60.0) -> None:
        """Deliver until ``stop``: everything due, then wait to be woken (by the clock, or by a
        commit that wrote notices) — or ``interval`` at most."""
        while not self._stopping:
            self._wake.clear()  # before the round: a wake-up during it brings another round
            try:
                claimed = await self.run_once()
            except Exception:
                log.exception("dispatcher round failed; trying again in %.0f s", interval)
                claimed = 0
            if self._stopping:
                break
            if not claimed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), interval)

    def stop(self) -> None:
        """Finish the batch in hand, then return from ``run``."""
        self._stopping = True
        for timer in self._timers:
            timer.cancel()
        self._wake.set()

    async def close(self) -> None:
        for transport in self.transports.values():
            await transport.close()

    async def run_once(self) -> int:
        """One round over every channel; returns how many notices were claimed."""
        claimed = 0
        for channel, transport in self.transports.items():
            now = self.clock()
            if await self._paused(channel, now):
                continue
            rows = await self._claim(channel, now)
            if not rows:
                continue
            claimed += len(rows)
            ready, broken = self._render(rows)
            batch = _Batch(self, channel, ready)
            failure: Exception | None = None
            async with self._claim_kept(batch):
                try:
                    if ready:
                        await transport.send(ready, batch.done)
                except Exception as exc:
                    failure = exc
            # the claim is no longer renewed: what is left is given back
            if isinstance(failure, ChannelDown):
                await self._pause(channel, failure, batch.unfinished())
            elif failure is not None:  # a bug, or a failure no transport foresaw
                log.error(
                    "delivering %s notices failed; the rest are retried", channel, exc_info=failure
                )
                error = f"delivery failed: {type(failure).__name__}: {failure}"
                for row in batch.unfinished():
                    await self._record(row, Result(Outcome.RETRY, error=error), channel)
            for row, error in broken:
                await self._record(row, Result(Outcome.DEAD, error=error), channel)
        return claimed

    # --- claiming ---------------------------------------------------------------------------

    async def _claim(self, channel: str, now: datetime) -> list[OutboxMessage]:
        due = or_(
            and_(OUTBOX.c.status == "pending", OUTBOX.c.next_attempt_at <= now),
            and_(OUTBOX.c.status == "sending", OUTBOX.c.lease_until < now),  # a lost claim
        )
        pick = (
            select(OUTBOX.c.id)
            .where(OUTBOX.c.channel == channel, due)
            .order_by(OUTBOX.c.next_attempt_at, OUTBOX.c.id)
            .limit(self.policy.batch)
            .with_for_update(skip_locked=True)
        )
        claim = (
            update(OUTBOX)
            .where(OUTBOX.c.id.in_(pick))
            .values(
                status="sending",
                lease_until=now + self.policy.lease,
                claimed_by=self.name,
                attempts=OUTBOX.c.attempts + 1,
            )
            .returning(*OUTBOX.c)
        )
        async with self.db.transaction(write=True) as s:
            found = (await s.exec(claim)).all()
            # plain attribute bags: ORM objects for rows only read cost more than the claim
            rows: list[Any] = [SimpleNamespace(**r._mapping, taken_over=False) for r in found]
            spent = [r for r in rows if r.attempts > self.policy.max_attempts]
            if spent:
                await self._give_up(s, spent)
                rows = [r for r in rows if r not in spent]
            withdrawn = await self._withdrawn(s, rows)
            if withdrawn:
                rows = [r for r in rows if r not in withdrawn]
        return sorted(rows, key=lambda r: (r.next_attempt_at, r.id or 0))

    async def _withdrawn(self, s: Any, rows: list[Any]) -> list[Any]:
        """Cancel, and return, the claimed notices whose event the history no longer supports.

        A correction cancels the notices of such events that wait, but one in flight then
        cannot be recalled (it counts as told); if that attempt failed or the channel was
        paused, it comes back here and must not be tried again. One query per batch."""
        events = {r.event_id for r in rows if r.event_id is not None}
        if not events:
            return []
        gone = await queries.unsupported_events(s, events)
        withdrawn = [r for r in rows if r.event_id in gone]
        if withdrawn:
            await s.exec(
                update(OUTBOX)
                .where(OUTBOX.c.id.in_([r.id for r in withdrawn]))
                .values(
                    status="cancelled",
                    attempts=OUTBOX.c.attempts - 1,
                    lease_until=None,
                    claimed_by=None,
                    last_error=queries.UNSUPPORTED,
                )
            )
        return withdrawn

    async def _give_up(self, s: Any, rows: list[Any]) -> None:
        """Dead-letter claims taken over after their lease expired on the last attempt: each
        time, the dispatcher delivering them stopped (or hung) before it could record what
        happened — a notice that crashes whoever sends it must not be retried for ever."""
        why = (
            f"gave up after {self.policy.max_attempts} attempts: each time, the dispatcher "
            "delivering it stopped before recording the outcome"
        )
        await s.exec(
            update(OUTBOX)
            .where(OUTBOX.c.id.in_([r.id for r in rows]))
            .values(
                status="dead",
                attempts=OUTBOX.c.attempts - 1,
                lease_until=None,
                claimed_by=None,
                last_error=why,
            )
        )
        for row in rows:
            row.attempts -= 1
            await self._alert_dead(s, row, why)

    def _render(
        self, rows: list[OutboxMessage]
    ) -> tuple[list[tuple[OutboxMessage, Any]], list[tuple[OutboxMessage, str]]]:
        ready, broken = [], []
        for row in rows:
            try:
                if row.channel == notices.EMAIL:
                    ready.append((row, mail.build(row, self.settings)))
                else:
                    text = render_slack(f"slack/alerts/{row.kind}.txt", **row.payload)
                    ready.append((row, blocks.message(text)))
            except Exception as exc:
                log.exception("cannot render notice %s (%s)", row.id, row.kind)
                broken.append((row, f"cannot render the notice: {type(exc).__name__}: {exc}"))
        return ready, broken

    # --- outcomes ---------------------------------------------------------------------------

    async def _record(
        self, row: OutboxMessage, result: Result, channel: str, *, clear_pause: bool = False
    ) -> None:
        """Record one outcome at once — only if the claim is still this dispatcher's."""
        now = self.clock()
        values = self._outcome_values(row, result, now)
        ours = self._ours(row.id)
        if values.get("status") == "dead":  # rare: the outcome and the staff alert together
            async with self.db.transaction(write=True) as s:
                changed = await s.exec(update(OUTBOX).where(*ours).values(**values))
                if changed.rowcount:
                    await self._alert_dead(s, row, values["last_error"])
            return
        async with self.db.connection(write=True) as conn:  # the common case, kept light
            changed = await conn.execute(update(OUTBOX).where(*ours).values(**values))
            if changed.rowcount and clear_pause:
                await conn.execute(
                    update(CHANNELS)
                    .where(CHANNELS.c.name == channel, CHANNELS.c.failures > 0)
                    .values(paused_until=None, reason=None, failures=0, alerted=False)
                )
        if not changed.rowcount:
            log.warning("notice %s was taken over by another dispatcher", row.id)

    @contextlib.asynccontextmanager
    async def _claim_kept(self, batch: _Batch) -> AsyncIterator[None]:
        """Renew the claim on the batch while the block runs (stopped, and any renewal under
        way finished, when it ends)."""
        stop = asyncio.Event()
        keeper = asyncio.create_task(self._keep_claim(batch, stop))
        try:
            yield
        finally:
            stop.set()
            await keeper

    async def _keep_claim(self, batch: _Batch, stop: asyncio.Event) -> None:
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
            now = self.clock()
            renew = (
                update(OUTBOX)
                .where(*self._ours(*(r.id for r in rows)))
                .values(lease_until=now + self.policy.lease)
                .returning(OUTBOX.c.id)
            )
            try:
                async with self.db.connection(write=True) as conn:
                    kept = set((await conn.execute(renew)).scalars().all())
            except Exception:
                log.exception("could not renew the claim on %d notices", len(rows))
                continue
            batch.renewed(rows, kept)

    def _ours(self, *ids: int) -> tuple[Any, ...]:
        """The rows among ``ids`` still claimed by this dispatcher."""
        which = OUTBOX.c.id == ids[0] if len(ids) == 1 else OUTBOX.c.id.in_(ids)
        return (which, OUTBOX.c.claimed_by == self.name, OUTBOX.c.status == "sending")

    def _outcome_values(self, row: OutboxMessage, result: Result, now: datetime) -> dict[str, Any]:
        released = {"lease_until": None, "claimed_by": None}
        delivered = [*row.delivered_to, *result.accepted]
        remaining = [a for a in row.addresses if a not in result.accepted]
        match result.outcome:
            case Outcome.SENT:
                return {
                    **released,
                    "status": "sent",
                    "sent_at": now,
                    "last_error": None,
                    "provider_reply": (result.reply or "")[:500],
                    "delivered_to": [*row.delivered_to, *row.addresses],
                }
            case Outcome.WAIT:
                return {
                    **released,
                    "status": "pending",
                    "attempts": row.attempts - 1,
                    "next_attempt_at": now + timedelta(seconds=_wait(result)),
                    "last_error": (result.error or "")[:1000],
                }
            case Outcome.RETRY if row.attempts < self.policy.max_attempts:
                return {
                    **released,
                    "status": "pending",
                    "next_attempt_at": now + self._backoff(row),
                    "last_error": (result.error or "")[:1000],
                    "addresses": remaining,
                    "delivered_to": delivered,
                }
            case _:  # permanent, or out of attempts
                why = result.error or "failed"
                if result.outcome == Outcome.RETRY:
                    why = f"gave up after {row.attempts} attempts: {why}"
                return {
                    **released,
                    "status": "dead",
                    "last_error": why[:1000],
                    "addresses": remaining,
                    "delivered_to": delivered,
                }

    def _backoff(self, row: OutboxMessage) -> timedelta:
        base = min(self.policy.max_retry, self.policy.first_retry * 2 ** (row.attempts - 1))
        return timedelta(seconds=base * self.rng.uniform(0.75, 1.25))

    async def _alert_dead(self, s: Any, row: OutboxMessage, error: str) -> None:
        """Tell staff a notice is dead — each time it dies, also after ``outbox retry`` — except
        when the dead notice is itself such an alert: that is only logged, so a Slack that
        refuses alerts cannot make them multiply."""
        log.error("notice %s (%s to %s) is dead: %s", row.id, row.kind, row.recipient_name, error)
        if row.kind == "delivery_failed":
            return
        country = self._country(row)
        if row.channel == notices.SLACK and country and country.staff_channel in row.addresses:
            country = None  # the country's staff channel refused it: tell the default one
        factory = row.payload.get("factory")
        earlier = f"delivery_failed/{row.id}"
        deaths = (
            await s.exec(
                select(func.count())
                .select_from(OUTBOX)
                .where(
                    or_(
                        OUTBOX.c.key == earlier,
                        OUTBOX.c.key.startswith(f"{earlier}/", autoescape=True),
                    )
                )
            )
        ).scalar_one()
        alert = notices.staff_alert(
            f"{earlier}/{deaths + 1}",
            "delivery_failed",
            country,
            self.settings.staff_channel,
            {
                "notice": row.kind,
                "recipient": row.recipient_name,
                "factory": factory,
                "error": error,
                "attempts": row.attempts,
            },
            factory_id=row.factory_id,
        )
        if alert is not None:
            await self.services.enqueue(s, [alert])

    # --- channels ---------------------------------------------------------------------------

    async def _paused(self, channel: str, now: datetime) -> bool:
        async with self.db.transaction() as s:
            until = (
                await s.exec(select(CHANNELS.c.paused_until).where(CHANNELS.c.name == channel))
            ).scalar()
        return until is not None and until > now

    async def _pause(self, channel: str, exc: ChannelDown, rows: list[OutboxMessage]) -> None:
        """Pause the channel for every dispatcher and give the claimed notices back."""
        now = self.clock()
        insert = (postgresql if self.db.is_postgresql else sqlite).insert
        async with self.db.transaction(write=True) as s:
            # the channel's row, created on first use, then locked: dispatchers pausing the
            # channel at once count each failure (SQLite: one writer anyway)
            await s.exec(
                insert(CHANNELS)
                .values(name=channel, failures=0, alerted=False)
                .on_conflict_do_nothing(index_elements=[CHANNELS.c.name])
            )
            state = (
                await s.exec(select(CHANNELS).where(CHANNELS.c.name == channel).with_for_update())
            ).one()
            failures = state.failures + 1
            pause = min(self.policy.max_pause, self.policy.first_pause * 2 ** (failures - 1))
            until = now + timedelta(seconds=pause * self.rng.uniform(0.9, 1.1))
            alert = (exc.config or failures >= self.policy.alert_after_pauses) and not state.alerted
            values = {
                "paused_until": until,
                "reason": exc.reason[:500],
                "failures": failures,
                "alerted": bool(alert or state.alerted),
            }
            await s.exec(update(CHANNELS).where(CHANNELS.c.name == channel).values(**values))
            for row in rows:
                await s.exec(
                    update(OUTBOX)
                    .where(*self._ours(row.id))
                    .values(
                        status="pending",
                        attempts=row.attempts - 1,
                        lease_until=None,
                        claimed_by=None,
                        next_attempt_at=until,
                        last_error=exc.reason[:1000],
                    )
                )
            log.warning("%s channel paused until %s: %s", channel, until.isoformat(), exc.reason)
            if alert and channel != notices.SLACK:
                notice = notices.staff_alert(
                    f"channel_paused/{channel}/{now.isoformat()}",
                    "channel_paused",
                    None,
                    self.settings.staff_channel,
                    {
                        "channel": channel,
                        "reason": exc.reason,
                        "until": until.astimezone(self.settings.tz).strftime("%Y-%m-%d %H:%M"),
                    },
                )
                if notice is not None:
                    await self.services.enqueue(s, [notice])

    def _country(self, row: OutboxMessage) -> Any:
        code = (row.payload.get("country") or {}).get("code")
        return self.config.countries.get(code) if code else None


def _wait(result: Result) -> float:
    """How long a WAIT outcome asks to wait, in seconds."""
    return result.retry_after or 30.0


class _Batch:
    """A claimed batch being delivered: which notices have their outcome recorded, and which
    were found taken over by another dispatcher (the transports skip those)."""

    def __init__(self, dispatcher: Dispatcher, channel: str, ready: list[tuple[Any, Any]]) -> None:
        self.dispatcher = dispatcher
        self.channel = channel
        self.ready = ready
        self.finished: set[int] = set()
        #: the first delivery of the batch clears a past pause of the channel
        self.clear_pause = True
        #: a provider asked to wait (and a wake-up is set for when the wait is over)
        self.waiting = False

    async def done(self, i: int, result: Result) -> None:
        """A transport's report on the ``i``-th message: recorded at once."""
        clear = self.clear_pause and result.outcome == Outcome.SENT
        self.clear_pause = self.clear_pause and not clear
        await self.dispatcher._record(self.ready[i][0], result, self.channel, clear_pause=clear)
        self.finished.add(self.ready[i][0].id)
        if result.outcome == Outcome.WAIT and not self.waiting:
            self.waiting = True  # the rest of the batch waits as long: one wake-up for all
            self.dispatcher.wake_in(_wait(result))

    def unfinished(self) -> list[Any]:
        """The notices still claimed whose outcome is not recorded (yet)."""
        return [
            row
            for row, _ in self.ready
            if row.id not in self.finished and not getattr(row, "taken_over", False)
        ]

    def renewed(self, rows: list[Any], kept: set[int]) -> None:
        """After a renewal: the rows it did not find ours are taken over (unless recorded
        meanwhile)."""
        for row in rows:
            if row.id not in kept and row.id not in self.finished:
                row.taken_over = True
                log.warning("notice %s was taken over by another dispatcher: skipped", row.id)
