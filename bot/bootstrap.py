"""The composition root: the one place that builds settings, config, database and services."""

from __future__ import annotations

from dataclasses import dataclass

from bot.countries import Config, load_config
from bot.importer import Importer
from bot.services import Clock, Services
from bot.settings import Settings, load_settings
from store import migrate
from store.db import Database
from store.models import utcnow


@dataclass
class Bot:
    settings: Settings
    config: Config
    db: Database
    services: Services
    importer: Importer

    async def aclose(self) -> None:
        await self.db.dispose()


async def bootstrap(
    settings: Settings | None = None, *, upgrade: bool = True, clock: Clock = utcnow
) -> Bot:
    """Everything wired together; the schema is migrated first unless ``upgrade`` is False."""
    settings = settings or load_settings()
    config = load_config(settings)
    db = Database(settings.database_url.get_secret_value())
    try:
        if upgrade:
            await migrate.upgrade(db)
    except BaseException:
        await db.dispose()
        raise
    services = Services(db, config, settings, clock)
    return Bot(settings, config, db, services, Importer(services))
