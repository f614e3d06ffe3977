"""Fixtures shared by the integration tests: a real SMTP server, the fake Slack Web API, and a
small registry of factories and buyers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from bot.usecases import registry
from bot.usecases.core import Core
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
async def registered(core: Core) -> None:
    """A Vietnamese factory, two subscribing buyers (one with two addresses), one bystander."""
    await registry.add_factory(
        core, MANAGER, "VN-1", "Saigon Stitch", "VN", "hr@stitch.example", "vi", "2027-06-30"
    )
    await registry.add_buyer(core, MANAGER, "B-A", "Acme", "a1@acme.example;a2@acme.example")
    await registry.add_buyer(core, MANAGER, "B-N", "Nordic", "csr@nordic.example")
    await registry.add_buyer(core, MANAGER, "B-X", "Bystander", "x@bystander.example")
    for buyer in ("B-A", "B-N"):
        await registry.subscribe(core, MANAGER, buyer, "VN-1")
