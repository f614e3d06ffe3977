"""The clock: APScheduler 3 wakes the bot's two workers — the outbox dispatcher and the reminder
runner — at a steady pace. The truth of what is due lives in the database (the outbox and the
reminder table), never in APScheduler's job store, so several replicas can share one database
and a restart loses nothing. Commits that write notices or reminders wake the workers at once.

Stopping: the clock stops first (nothing new starts), then each worker finishes what it holds.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.dispatcher import Dispatcher
from scheduler.reminders import ReminderRunner

log = logging.getLogger(__name__)


class Background:
    def __init__(
        self,
        dispatcher: Dispatcher,
        reminders: ReminderRunner,
        *,
        dispatch_every: float = 10.0,
        remind_every: float = 30.0,
    ) -> None:
        self.dispatcher = dispatcher
        self.reminders = reminders
        self.dispatch_every = dispatch_every
        self.remind_every = remind_every
        self._clock: AsyncIOScheduler | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start the workers and the clock (inside the running event loop)."""

        async def tick_dispatcher() -> None:
            self.dispatcher.wake()

        async def tick_reminders() -> None:
            self.reminders.wake()

        self._tasks = [
            asyncio.create_task(self.dispatcher.run(), name="outbox dispatcher"),
            asyncio.create_task(self.reminders.run(), name="reminders"),
        ]
        clock = AsyncIOScheduler(timezone=UTC)
        # coalesce and no misfire limit: a tick missed while busy is simply the next tick
        options = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        clock.add_job(
            tick_dispatcher, "interval", seconds=self.dispatch_every, id="dispatch", **options
        )
        clock.add_job(
            tick_reminders, "interval", seconds=self.remind_every, id="reminders", **options
        )
        clock.start()
        self._clock = clock
        self.dispatcher.wake()  # catch up with whatever came due while nobody was running
        self.reminders.wake()

    def running(self) -> dict[str, bool]:
        """Whether the dispatcher, the reminder runner and the clock are running (``/readyz``)."""
        alive = {task.get_name() for task in self._tasks if not task.done()}
        return {
            "dispatcher": "outbox dispatcher" in alive,
            "reminders": "reminders" in alive,
            "clock": self._clock is not None and bool(self._clock.running),
        }

    async def stop(self) -> None:
        if self._clock is not None:
            self._clock.shutdown(wait=False)
            self._clock = None
        self.reminders.stop()
        self.dispatcher.stop()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.dispatcher.close()
