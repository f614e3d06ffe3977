"""A replayed Slack request is refused across a restart of the server (SQLite and PostgreSQL):
the signatures served are kept in the database, not only in memory."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.bootstrap import Bot
from bot.replays import ReplayGuard
from bot.server import Server
from bot.settings import Settings
from bot.slack_app import build_slack_app
from bot.usecases.core import Core
from store import access
from store.db import Database
from store.models import Assessment
from tests.conftest import FrozenClock
from tests.e2e.conftest import ASSESSOR, BOT_TOKEN, SIGNING_SECRET, FakeSlack, SlackClient

FORM = "application/x-www-form-urlencoded"

Start = Callable[[], Awaitable[tuple[Server, SlackClient]]]


@pytest.fixture
async def start(
    settings: Settings,
    core: Core,
    slack: FakeSlack,
    http: aiohttp.ClientSession,
) -> AsyncIterator[Start]:
    """Start a new server (a new process would: nothing kept in memory) on the same database."""
    servers: list[Server] = []
    async with aiohttp.ClientSession() as session:

        async def run() -> tuple[Server, SlackClient]:
            app = build_slack_app(
                core,
                token=BOT_TOKEN,
                signing_secret=SIGNING_SECRET,
                api_url=f"{slack.url}/api/",
                http=http,
            )
            server = Server(
                Bot(settings, core.config, core.db, core), app, signing_secret=SIGNING_SECRET
            )
            await server.start("127.0.0.1", 0)
            servers.append(server)
            return server, SlackClient(f"http://127.0.0.1:{server.port}", slack, session)

        yield run
    for server in servers:
        await server.stop()


async def assessments(core: Core) -> int:
    """The assessments recorded through Slack by ``ASSESSOR``."""
    stmt = select(func.count()).select_from(Assessment).where(Assessment.submitted_by == ASSESSOR)
    async with core.db.transaction() as s:
        return int((await s.exec(stmt)).scalar_one())


async def test_a_replay_after_a_clean_restart_is_refused(
    start: Start, core: Core, people: None
) -> None:
    first, client = await start()
    _, body = client.command_body("assess VN-1004 2026-10-01 none", ASSESSOR)
    stamp = int(time.time())
    assert (await client.post(body, FORM, timestamp=stamp))[0] == 200
    await client.slack.wait(lambda: client.slack.responses)
    await first.stop()  # at once: sooner than the signatures are written on their own
    _, again = await start()
    status, answer, _ = await again.post(body, FORM, timestamp=stamp)
    assert status == 401 and "already served" in answer
    assert await assessments(core) == 1


async def test_signatures_reach_the_database_within_the_flush_interval(
    start: Start, core: Core, people: None
) -> None:
    """A server that dies without stopping (its memory lost) has written the signatures it
    served more than ``FLUSH_SECONDS`` ago: another server started then refuses them."""
    _, client = await start()  # left running: it never gets to flush on stopping
    _, body = client.command_body("status VN-1004", ASSESSOR)
    stamp = int(time.time())
    assert (await client.post(body, FORM, timestamp=stamp))[0] == 200
    await asyncio.sleep(ReplayGuard.FLUSH_SECONDS + 1.5)
    _, other = await start()
    status, answer, _ = await other.post(body, FORM, timestamp=stamp)
    assert status == 401 and "already served" in answer


async def test_only_signatures_that_could_still_be_replayed_are_kept(
    db: Database, core: Core, clock: FrozenClock
) -> None:
    """Written in batches; loaded for the last six minutes; older ones are forgotten."""
    now = clock()
    old, recent = now - timedelta(minutes=7), now - timedelta(minutes=2)
    await access.remember_requests(db, [("v0=old", old), ("v0=recent", recent)], forget_before=None)
    await access.remember_requests(db, [("v0=recent", recent)], forget_before=None)  # twice: fine
    assert set(await access.recent_requests(db, since=now - ReplayGuard.KEEP)) == {"v0=recent"}
    await access.remember_requests(db, [("v0=new", now)], forget_before=now - ReplayGuard.KEEP)
    assert set(await access.recent_requests(db, since=now - timedelta(days=1))) == {
        "v0=recent",
        "v0=new",
    }
