"""The bot's real HTTP server on loopback, a fake Slack Web API it talks to, and a client that
sends requests signed as Slack signs them."""

from __future__ import annotations

import itertools
import json
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from slack_sdk.signature import SignatureVerifier

from bot.bootstrap import Bot
from bot.roles import Actor, RoleLevel
from bot.server import Server
from bot.settings import Settings
from bot.slack_app import build_slack_app
from bot.usecases import access, imports
from bot.usecases.core import Core
from handlers import runner
from store.db import Database
from tests.conftest import EXAMPLES
from tests.fakes import FakeSlack

SIGNING_SECRET = "test-signing-secret-8f2e"
BOT_TOKEN = "xoxb-test-token-4411"


@dataclass
class Reply:
    """What the person saw: the immediate answer (a refusal at the door) or the later reply."""

    status: int
    payload: dict[str, Any]
    ack_seconds: float

    @property
    def text(self) -> str:
        return str(self.payload.get("text", ""))


@dataclass
class SlackClient:
    """Sends signed requests to the bot's HTTP server, as Slack does."""

    base: str
    slack: FakeSlack
    session: aiohttp.ClientSession
    secret: str = SIGNING_SECRET
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    async def post(
        self,
        body: str,
        content_type: str,
        *,
        secret: str | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> tuple[int, str, float]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        sig = signature or SignatureVerifier(secret or self.secret).generate_signature(
            timestamp=ts, body=body
        )
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": sig,
        }
        started = time.perf_counter()
        async with self.session.post(
            f"{self.base}/slack/events", data=body.encode(), headers=headers
        ) as response:
            text = await response.text()
            return response.status, text, time.perf_counter() - started

    def command_body(self, text: str, user: str) -> tuple[str, str]:
        n = str(next(self.counter))
        form = {
            "token": "legacy-unused",
            "team_id": "T0TEST",
            "team_domain": "betterwork",
            "channel_id": "C0STAFF",
            "channel_name": "pnc-staff",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/pnc",
            "text": text,
            "api_app_id": "A0PNC",
            "response_url": f"{self.slack.url}/respond/{n}",
            "trigger_id": f"trigger.{n}",
        }
        return n, urllib.parse.urlencode(form)

    async def command(self, text: str, user: str) -> Reply:
        """``/pnc text`` as ``user``: the refusal at the door, or the reply sent afterwards."""
        n, body = self.command_body(text, user)
        status, answer, seconds = await self.post(body, "application/x-www-form-urlencoded")
        assert status == 200, answer
        if answer.strip():
            await settled()
            return Reply(status, json.loads(answer), seconds)
        payload = await self.slack.wait(lambda: self.slack.responses.get(n))
        await settled()
        return Reply(status, payload, seconds)

    async def interaction(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        status, answer, _ = await self.post(body, "application/x-www-form-urlencoded")
        await settled()
        return status, (json.loads(answer) if answer.strip() else {})

    async def event(self, event: dict[str, Any]) -> int:
        body = json.dumps(
            {
                "token": "legacy-unused",
                "team_id": "T0TEST",
                "api_app_id": "A0PNC",
                "type": "event_callback",
                "event_id": f"Ev{next(self.counter)}",
                "event_time": int(time.time()),
                "event": event,
            }
        )
        status, _, _ = await self.post(body, "application/json")
        await settled()
        return status


async def settled() -> None:
    """Wait for the work the bot goes on with after answering (the listeners still running:
    the server runs in this process), as a person waits for its outcome."""
    assert await runner.settle(30) == 0, "a listener was still running after 30 s"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """The bot's own HTTP session (the one it sends to Slack with)."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def bot_server(
    db: Database,
    settings: Settings,
    core: Core,
    slack: FakeSlack,
    http: aiohttp.ClientSession,
) -> AsyncIterator[Server]:
    app = build_slack_app(
        core,
        token=BOT_TOKEN,
        signing_secret=SIGNING_SECRET,
        api_url=f"{slack.url}/api/",
        http=http,
    )
    bot = Bot(settings, core.config, db, core)
    server = Server(bot, app, signing_secret=SIGNING_SECRET)
    await server.start("127.0.0.1", 0)
    yield server
    await server.stop()


@pytest.fixture
async def client(bot_server: Server, slack: FakeSlack) -> AsyncIterator[SlackClient]:
    async with aiohttp.ClientSession() as session:
        yield SlackClient(f"http://127.0.0.1:{bot_server.port}", slack, session)


ADMIN = "U0ADMIN"  # a manager through PNC_ADMINS in the test settings
VIEWER, ASSESSOR, MANAGER, STRANGER = "U0VIEW", "U0ASSESS", "U0MGR", "U0NOBODY"


@pytest.fixture
async def people(core: Core) -> None:
    """The sample factories and buyers, and one person with each role."""
    admin = Actor(ADMIN, RoleLevel.MANAGER, "test")
    for kind in ("factories", "buyers", "subscriptions", "assessments"):
        await imports.run(core, kind, EXAMPLES / f"{kind}.csv", admin)
    for user, role in ((VIEWER, "viewer"), (ASSESSOR, "assessor"), (MANAGER, "manager")):
        await access.grant(core, admin, user, role)
