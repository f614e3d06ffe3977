"""Delivers what the outbox holds: each round claims the due notices of each channel, renders
them (emails from their templates, staff alerts as Block Kit), hands them to the channel's
transport and records each outcome as it comes. The rules — claims, leases, retries, pauses —
are ``bot.delivery``'s; this module only drives them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from typing import Any

from bot import buttons, mail, notices
from bot.delivery import Batch, DeliveryAlerts, Outbox, RetryPolicy, wait_of
from bot.render import message, render_slack
from bot.settings import Settings
from bot.transports import ChannelDown, Outcome, Result, Transport
from bot.usecases.core import Core
from bot.vocabulary import Channel
from store.db import Session, after_commit
from store.outbox import Claimed

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, outbox: Outbox, transports: Sequence[Transport], settings: Settings) -> None:
        self.outbox = outbox
        self.transports = {t.channel: t for t in transports}
        self.settings = settings
        self._wake = asyncio.Event()
        self._stopping = False
        #: wake-ups due when a wait asked for by a provider (Slack's Retry-After) is over
        self._timers: list[asyncio.TimerHandle] = []

    @classmethod
    def for_core(
        cls,
        core: Core,
        transports: Sequence[Transport],
        *,
        policy: RetryPolicy | None = None,
        name: str | None = None,
        rng: random.Random | None = None,
    ) -> Dispatcher:
        """A dispatcher over the core's database; the staff alerts it writes (a notice dead,
        a channel paused) go through the core's outbox door and wake it."""
        dispatcher: Dispatcher

        def written(s: Session) -> None:
            core.notices_written(s)
            after_commit(s, dispatcher.wake)

        async def enqueue(s: Session, rows: Sequence[notices.Notice]) -> None:
            await core.enqueue(s, rows)
            written(s)

        alerts = DeliveryAlerts(core.settings, core.countries, enqueue, written)
        outbox = Outbox(
            core.db, core.clock, alerts, policy=policy or RetryPolicy(), name=name, rng=rng
        )
        dispatcher = cls(outbox, transports, core.settings)
        return dispatcher

    @property
    def name(self) -> str:
        return self.outbox.name

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
            if await self.outbox.paused(channel):
                continue
            rows = await self.outbox.claim(channel)
            if not rows:
                continue
            claimed += len(rows)
            ready, broken = self._render(rows)
            batch = _Round(self, channel, ready)
            failure: Exception | None = None
            async with self.outbox.kept(batch):
                try:
                    if ready:
                        await transport.send(ready, batch.done)
                except Exception as exc:
                    failure = exc
            # the claim is no longer renewed: what is left is given back
            if isinstance(failure, ChannelDown):
                await self.outbox.pause(channel, failure, batch.unfinished())
            elif failure is not None:  # a bug, or a failure no transport foresaw
                log.error(
                    "delivering %s notices failed; the rest are retried", channel, exc_info=failure
                )
                error = f"delivery failed: {type(failure).__name__}: {failure}"
                for row in batch.unfinished():
                    await self.outbox.record(row, Result(Outcome.RETRY, error=error), channel)
            for row, error in broken:
                await self.outbox.record(row, Result(Outcome.DEAD, error=error), channel)
        return claimed

    def _render(
        self, rows: list[Claimed]
    ) -> tuple[list[tuple[Claimed, Any]], list[tuple[Claimed, str]]]:
        ready: list[tuple[Claimed, Any]] = []
        broken: list[tuple[Claimed, str]] = []
        for row in rows:
            try:
                if row.channel == Channel.EMAIL:
                    ready.append((row, mail.build(row, self.settings)))
                else:
                    text = render_slack(f"slack/alerts/{row.kind}.txt", **row.payload)
                    rows_of_buttons = buttons.for_alert(row.kind, row.key, row.payload)
                    ready.append((row, buttons.with_buttons(message(text), rows_of_buttons)))
            except Exception as exc:
                log.exception("cannot render notice %s (%s)", row.id, row.kind)
                broken.append((row, f"cannot render the notice: {type(exc).__name__}: {exc}"))
        return ready, broken


class _Round(Batch):
    """A batch being delivered, whose outcomes are recorded as the transport reports them."""

    def __init__(
        self, dispatcher: Dispatcher, channel: str, ready: Sequence[tuple[Claimed, Any]]
    ) -> None:
        super().__init__(ready)
        self.dispatcher = dispatcher
        self.channel = channel
        #: the first delivery of the batch clears a past pause of the channel
        self.clear_pause = True
        #: a provider asked to wait (and a wake-up is set for when the wait is over)
        self.waiting = False

    async def done(self, i: int, result: Result) -> None:
        """A transport's report on the ``i``-th message: recorded at once."""
        clear = self.clear_pause and result.outcome == Outcome.SENT
        self.clear_pause = self.clear_pause and not clear
        row = self.ready[i][0]
        await self.dispatcher.outbox.record(row, result, self.channel, clear_pause=clear)
        self.finished.add(row.id)
        if result.outcome == Outcome.WAIT and not self.waiting:
            self.waiting = True  # the rest of the batch waits as long: one wake-up for all
            self.dispatcher.wake_in(wait_of(result))
