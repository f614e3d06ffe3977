"""Fixtures shared by the integration tests: a real SMTP server, the fake Slack Web API, and a
small registry of factories and buyers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from bot.services import Services
from tests.conftest import MANAGER
from tests.fakes import FakeSlack, SmtpServer


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def registry(services: Services) -> None:
    """A Vietnamese factory, two subscribing buyers (one with two addresses), one bystander."""
    await services.add_factory(
        MANAGER, "VN-1", "Saigon Stitch", "VN", "hr@stitch.example", "vi", "2027-06-30"
    )
    await services.add_buyer(MANAGER, "B-A", "Acme", "a1@acme.example;a2@acme.example")
    await services.add_buyer(MANAGER, "B-N", "Nordic", "csr@nordic.example")
    await services.add_buyer(MANAGER, "B-X", "Bystander", "x@bystander.example")
    for buyer in ("B-A", "B-N"):
        await services.subscribe(MANAGER, buyer, "VN-1")
