"""Slack requests served once: a request whose signature was already served is refused
(``bot.server`` asks before handling each one)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from store import access
from store.db import Database

log = logging.getLogger(__name__)


class ReplayGuard:
    """Refuses a Slack request whose signature was already served, for six minutes: Slack's
    timestamps are refused after five.

    The signatures are looked up in memory first. On PostgreSQL (several replicas) each is also
    written to ``slack_request`` before its request is handled, so a replay to any replica is
    refused. On SQLite (one process) they are written in batches, at most ``FLUSH_SECONDS``
    apart and when the server stops, and read back when it starts: a replay after a restart is
    refused; after a crash, except of the requests served in its last ``FLUSH_SECONDS``.
    """

    KEEP = timedelta(minutes=6)
    FLUSH_SECONDS = 1.0

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock
        self.shared = db.is_postgresql
        self._seen: dict[str, datetime] = {}
        self._served = 0
        self._unwritten: list[tuple[str, datetime]] = []
        self._writer: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._failing = False

    async def start(self) -> None:
        """Read back the signatures a previous process served (SQLite)."""
        if self.shared:
            return
        try:
            self._seen.update(await access.recent_requests(self.db, since=self.clock() - self.KEEP))
        except Exception as exc:
            log.warning("could not read the Slack requests served before (%s)", type(exc).__name__)

    async def first_time(self, signature: str) -> bool:
        """False for a request (its signature verified) that was already served."""
        now = self.clock()
        self._served += 1
        if self._served % 500 == 0:  # forget what can no longer be replayed
            self._seen = {k: v for k, v in self._seen.items() if v >= now - self.KEEP}
        first = signature not in self._seen
        self._seen[signature] = now
        if first and self.shared:
            first = await self._shared(signature, now)
        elif first:
            self._write_soon(signature, now)
        if not first:
            log.warning("refused a replayed Slack request")
        return first

    async def close(self) -> None:
        """Write the signatures not yet written (SQLite); the server has stopped serving."""
        self._stopping.set()
        if self._writer is not None:
            await self._writer
        await self._write()

    async def _shared(self, signature: str, now: datetime) -> bool:
        # every 200 requests, forget what can no longer be replayed
        forget = now - self.KEEP if self._served % 200 == 0 else None
        try:
            return await access.first_time(self.db, signature, now, forget_before=forget)
        except Exception as exc:
            # the database is unreachable: nothing can be written by this request either, and
            # the access middleware tells the person to try again
            log.warning("could not check for a replay (%s)", type(exc).__name__)
        return True

    def _write_soon(self, signature: str, now: datetime) -> None:
        self._unwritten.append((signature, now))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_later())

    async def _write_later(self) -> None:
        """Write what was served, a batch every ``FLUSH_SECONDS`` while there is any (also
        what arrived while the last batch was being written, or failed to be)."""
        while self._unwritten and not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.FLUSH_SECONDS)
            await self._write()

    async def _write(self) -> None:
        now = self.clock()
        rows = [r for r in self._unwritten if r[1] >= now - self.KEEP]
        self._unwritten = []
        if not rows:
            return
        try:
            await access.remember_requests(self.db, rows, forget_before=now - self.KEEP)
        except Exception as exc:
            if not self._failing:  # once, not every second while the database is away
                log.warning("could not write the Slack requests served (%s)", type(exc).__name__)
            self._failing = True
            self._unwritten[:0] = rows  # tried again with the next batch (or on stopping)
            return
        self._failing = False
