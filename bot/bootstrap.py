"""The composition root: the one place that builds settings, config, database, the use cases'
core and the workers.

The workers' parts (Slack's client, the transports, the dispatcher, APScheduler) are imported
by the functions that build them: a CLI command that runs no worker does not load them
(``bench/cli_startup.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.countries import Config, load_config, warn_builtin_catalogues
from bot.settings import Settings, load_settings
from bot.usecases import referrals, rules
from bot.usecases.core import Clock, Core
from store import migrate
from store.db import Database
from store.models import utcnow

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.dispatcher import Dispatcher
    from bot.transports import Transport
    from scheduler.clock import Background


@dataclass
class Bot:
    settings: Settings
    config: Config
    db: Database
    core: Core

    async def aclose(self) -> None:
        await self.core.read_audits.flush()
        await self.db.dispose()


async def bootstrap(
    settings: Settings | None = None,
    *,
    upgrade: bool = True,
    clock: Clock = utcnow,
    catalogue_notice: bool = True,
) -> Bot:
    """Everything wired together. Unless ``upgrade`` is False, the schema is migrated first and
    the stored snapshots re-evaluated for any country whose rules changed since the last start."""
    settings = settings or load_settings()
    config = load_config(settings)
    if catalogue_notice:  # the demo runs on the built-in catalogue on purpose
        warn_builtin_catalogues(config.countries)
    db = Database(settings.database_url.get_secret_value())
    core = Core(db, config, settings, clock)
    try:
        if upgrade:
            await migrate.upgrade(db)
            # rules changed in PNC_CONFIG since the last start: bring the snapshots in line
            await rules.refresh(core)
            # referrals held for want of an Inspectorate address go out once one is configured
            await referrals.release_configured(core)
    except BaseException:
        await db.dispose()
        raise
    return Bot(settings, config, db, core)


def email_transport(settings: Settings) -> Transport:
    """SMTP when ``PNC_SMTP_URL`` is set; otherwise ``.eml`` files in ``PNC_OUTBOX_DIR``."""
    from bot.smtp_url import SmtpSettings
    from bot.transports import FileTransport, SmtpTransport

    if settings.smtp_url is None:
        return FileTransport(settings.outbox_dir)
    return SmtpTransport(SmtpSettings.from_url(settings.smtp_url.get_secret_value()))


def build_dispatcher(
    bot: Bot, slack: AsyncWebClient | None, *, email: Transport | None = None
) -> Dispatcher:
    """The outbox dispatcher, woken by every commit that writes notices."""
    from bot.delivery import RetryPolicy
    from bot.dispatcher import Dispatcher
    from bot.transports import SlackTransport

    transports = [email or email_transport(bot.settings)]
    if slack is not None:
        transports.append(SlackTransport(slack))
    policy = RetryPolicy(lease=timedelta(seconds=bot.settings.delivery_lease_seconds))
    dispatcher = Dispatcher.for_core(bot.core, transports, policy=policy)
    bot.core.wakeups.notices = dispatcher.wake
    return dispatcher


def build_background(
    bot: Bot, slack: AsyncWebClient | None, *, email: Transport | None = None
) -> Background:
    """The dispatcher and the reminder runner, with the clock that wakes them (imported here:
    the commands that run no workers need not load APScheduler)."""
    from scheduler.clock import Background
    from scheduler.reminders import ReminderRunner

    return Background(build_dispatcher(bot, slack, email=email), ReminderRunner(bot.core))
