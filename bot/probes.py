"""Liveness and readiness, as load balancers and Kubernetes ask for them.

- ``GET /livez``: the process answers (200), whatever the state of its database.
- ``GET /readyz``: 200 when the database answers within ``Probes.timeout``, its schema is at
  this version's head, and the outbox dispatcher, the reminder runner and the clock that wakes
  them are running; otherwise 503, the JSON body naming each check and what failed. A database
  migrated by a newer version (a rolling upgrade: migrations only add to the schema) counts as
  at head.

``GET /healthz`` (the database answers) is unchanged beside them (``bot.server``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from aiohttp import web
from alembic.script import ScriptDirectory

from bot import __version__
from store import migrate
from store.db import Database

log = logging.getLogger(__name__)

OK = "ok"


class Workers(Protocol):
    """The background workers (``scheduler.clock.Background``)."""

    def running(self) -> dict[str, bool]: ...


class Probes:
    #: seconds ``/readyz`` waits for the database (connecting and answering)
    timeout = 5.0

    def __init__(self, db: Database, workers: Workers | None) -> None:
        self.db = db
        self.workers = workers
        script = ScriptDirectory.from_config(migrate.alembic_config())
        self.head = script.get_current_head()
        self.known = {r.revision for r in script.walk_revisions()}
        self._failed: tuple[str, ...] = ()

    async def livez(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive", "version": __version__})

    async def readyz(self, request: web.Request) -> web.Response:
        checks = await self.checks()
        failed = tuple(name for name, state in checks.items() if state != OK)
        if failed != self._failed:  # a change, once: not every probe while it lasts
            if failed:
                log.warning("not ready: %s", ", ".join(f"{n} {checks[n]}" for n in failed))
            elif self._failed:
                log.info("ready again")
            self._failed = failed
        body: dict[str, Any] = {
            "status": "not ready" if failed else "ready",
            "version": __version__,
            "checks": checks,
        }
        if failed:
            body["failed"] = list(failed)
        return web.json_response(body, status=503 if failed else 200)

    async def checks(self) -> dict[str, str]:
        """Each check and its state: ``ok``, or what is wrong."""
        checks: dict[str, str] = {}
        try:  # connecting counts: a database that accepts connections but never answers
            revision = await asyncio.wait_for(migrate.current_revision(self.db), self.timeout)
        except Exception as exc:
            checks["database"] = f"unavailable ({type(exc).__name__})"
            checks["migrations"] = "unknown"
        else:
            checks["database"] = OK
            checks["migrations"] = self._migrations(revision)
        running = self.workers.running() if self.workers is not None else {}
        for worker in ("dispatcher", "reminders", "clock"):
            checks[worker] = OK if running.get(worker) else "not running"
        return checks

    def _migrations(self, revision: str | None) -> str:
        if revision == self.head:
            return OK
        if revision is not None and revision not in self.known:
            return OK  # migrated by a newer version of the bot: the schema only grew
        return f"at {revision or 'none'}, head is {self.head}"
