"""What every reminder handler shares: the staff alert it writes, and moments as people read
them."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from bot import notices
from bot.usecases import access
from bot.usecases.core import Core
from bot.vocabulary import NoticeKind
from store.db import Session
from store.models import Factory, Reminder

log = logging.getLogger(__name__)

#: what a reminder does when it falls due, given the core, the transaction, the reminder, its
#: subject (a ``bot.vocabulary.Subject``) and now: None, or why it was skipped
Handler = Callable[[Core, Session, Reminder, Any, datetime], Awaitable[str | None]]


async def alert(
    core: Core,
    s: Session,
    key: str,
    kind: NoticeKind,
    factory: Factory | None,
    context: dict[str, Any],
) -> None:
    """A staff alert about ``factory`` (or none), in its country's staff channel."""
    country = core.countries.get(factory.country) if factory else None
    notice = notices.staff_alert(
        key,
        kind,
        country,
        core.settings.staff_channel,
        {
            "factory": {"id": factory.id, "name": factory.name} if factory else None,
            "managers": await access.managers(core, s),
            **context,
        },
        factory_id=factory.id if factory else None,
    )
    if notice is None:
        log.warning("no staff channel for reminder %s: set PNC_STAFF_CHANNEL", key)
        return
    await core.enqueue(s, [notice])


def local(core: Core, moment: datetime) -> str:
    """A moment as people read it: local time, with the zone named."""
    settings = core.settings
    return f"{moment.astimezone(settings.tz).strftime('%Y-%m-%d %H:%M')} ({settings.timezone})"
