"""Helpers for driving the dispatcher in integration tests."""

from __future__ import annotations

import random

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from bot.dispatcher import Dispatcher
from bot.smtp_url import SmtpSettings
from bot.transports import SlackTransport, SmtpTransport, Transport
from bot.usecases.core import Core
from store.models import OutboxMessage
from tests.fakes import FakeSlack, SmtpServer

FAIL4 = "CO-01,CO-02,OS-01,WT-01"
PASS = "OS-02"


def dispatcher(core: Core, *transports: Transport, name: str = "d1") -> Dispatcher:
    return Dispatcher.for_core(core, list(transports), name=name, rng=random.Random(7))


def smtp_transport(smtp: SmtpServer) -> SmtpTransport:
    return SmtpTransport(SmtpSettings.from_url(smtp.url))


def slack_transport(slack: FakeSlack) -> SlackTransport:
    return SlackTransport(AsyncWebClient(token="xoxb-t", base_url=f"{slack.url}/api/"))


async def drain(d: Dispatcher) -> int:
    total = 0
    while claimed := await d.run_once():
        total += claimed
    return total


async def outbox(core: Core) -> list[OutboxMessage]:
    async with core.db.transaction() as s:
        return list((await s.exec(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())
