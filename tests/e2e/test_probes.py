"""``/livez`` and ``/readyz`` on the app's HTTP server, as a load balancer or Kubernetes asks
them (no Slack signature), beside ``/healthz``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from alembic.script import ScriptDirectory

from bot.bootstrap import Bot, build_background
from bot.server import Server
from bot.settings import Settings
from bot.slack_app import build_slack_app
from bot.transports import FileTransport
from bot.usecases.core import Core
from store import migrate
from store.db import Database
from tests.e2e.conftest import SIGNING_SECRET, FakeSlack
from tests.fakes import free_port

WORKERS = ("dispatcher", "reminders", "clock")


async def probe(server: Server, path: str) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{server.port}{path}") as response,
    ):
        return response.status, await response.json()


def server_on(
    db: Database, core: Core, slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path
) -> Server:
    """The server with its background work (delivering to files) over ``db``."""
    app = build_slack_app(
        core, token="xoxb-t", signing_secret=SIGNING_SECRET, api_url=f"{slack.url}/api/", http=http
    )
    bot = Bot(core.settings, core.config, db, core)
    email = FileTransport(tmp_path / "outbox")
    background = build_background(bot, app.client, email=email)
    return Server(bot, app, signing_secret=SIGNING_SECRET, background=background)


@pytest.fixture
async def running(
    db: Database, core: Core, slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path
) -> AsyncIterator[Server]:
    server = server_on(db, core, slack, http, tmp_path)
    await server.start("127.0.0.1", 0)
    yield server
    await server.stop()


async def test_live_and_ready_while_everything_runs(running: Server) -> None:
    assert await probe(running, "/livez") == (200, {"status": "alive", "version": "0.1.0"})
    status, body = await probe(running, "/readyz")
    assert status == 200, body
    assert body["status"] == "ready"
    assert body["checks"] == dict.fromkeys(("database", "migrations", *WORKERS), "ok")
    assert (await probe(running, "/healthz"))[1]["status"] == "ok"  # unchanged


async def test_not_ready_once_the_dispatcher_stops(running: Server) -> None:
    assert running.background is not None
    running.background.dispatcher.stop()  # it finishes its round, then returns
    for _ in range(50):
        status, body = await probe(running, "/readyz")
        if status != 200:
            break
        await asyncio.sleep(0.1)
    assert status == 503
    assert body["status"] == "not ready" and body["failed"] == ["dispatcher"]
    assert body["checks"]["dispatcher"] == "not running"
    assert (await probe(running, "/livez"))[0] == 200


async def test_not_ready_once_the_clock_stops(
    db: Database, core: Core, slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    server = server_on(db, core, slack, http, tmp_path)
    await server.start("127.0.0.1", 0)
    try:
        assert server.background is not None
        await server.background.stop()  # the clock first, then the workers it wakes
        status, body = await probe(server, "/readyz")
        live, _ = await probe(server, "/livez")
    finally:
        server.background = None
        await server.stop()
    assert status == 503
    assert body["failed"] == list(WORKERS)
    assert body["checks"]["clock"] == "not running"
    assert body["checks"]["database"] == "ok"
    assert live == 200


async def test_not_ready_without_the_database_but_alive(
    core: Core, settings: Settings, slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    gone = Database(f"postgresql+asyncpg://pnc@127.0.0.1:{free_port()}/pnc")
    server = server_on(gone, core, slack, http, tmp_path)
    server.probes.timeout = server.health_timeout = 2.0
    server.background = None  # its workers are not the point here
    server.probes.workers = None
    await server.start("127.0.0.1", 0)
    try:
        live = await probe(server, "/livez")
        status, body = await probe(server, "/readyz")
        health, _ = await probe(server, "/healthz")
    finally:
        await server.stop()
        await gone.dispose()
    assert live[0] == 200
    assert status == 503 and health == 503
    assert body["checks"]["database"].startswith("unavailable")
    assert body["checks"]["migrations"] == "unknown"
    assert body["failed"][:2] == ["database", "migrations"]


async def test_not_ready_while_the_schema_is_behind(
    core: Core, slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    behind = Database(f"sqlite+aiosqlite:///{tmp_path}/old.db")
    server = server_on(behind, core, slack, http, tmp_path)
    head = server.probes.head
    script = ScriptDirectory.from_config(migrate.alembic_config())
    previous = script.get_revision(head).down_revision
    await migrate.upgrade(behind, str(previous))
    try:
        checks = await server.probes.checks()
        await migrate.upgrade(behind)
        after = await server.probes.checks()
    finally:
        await behind.dispose()
    assert checks["database"] == "ok"
    assert checks["migrations"] == f"at {previous}, head is {head}"
    assert after["migrations"] == "ok"
