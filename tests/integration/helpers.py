"""Helpers for driving the dispatcher in integration tests."""

from __future__ import annotations

import random

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from bot.dispatcher import Dispatcher
from bot.services import Services
from bot.transports import SlackTransport, SmtpSettings, SmtpTransport, Transport
from store.models import OutboxMessage
from tests.conftest import FrozenClock
from tests.fakes import FakeSlack, SmtpServer

FAIL4 = "CO-01,CO-02,OS-01,WT-01"
PASS = "OS-02"


def dispatcher(
    services: Services, clock: FrozenClock, *transports: Transport, name: str = "d1"
) -> Dispatcher:
    return Dispatcher(
        services.db,
        services.settings,
        services.config,
        list(transports),
        clock,
        name=name,
        rng=random.Random(7),
    )


def smtp_transport(smtp: SmtpServer) -> SmtpTransport:
    return SmtpTransport(SmtpSettings.from_url(smtp.url))


def slack_transport(slack: FakeSlack) -> SlackTransport:
    return SlackTransport(AsyncWebClient(token="xoxb-t", base_url=f"{slack.url}/api/"))


async def drain(d: Dispatcher) -> int:
    total = 0
    while claimed := await d.run_once():
        total += claimed
    return total


async def outbox(services: Services) -> list[OutboxMessage]:
    async with services.db.transaction() as s:
        return list((await s.exec(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())
