"""Events: App Home is rebuilt each time someone opens it."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.render import render_slack
from bot.roles import Actor
from bot.usecases import access, calls, reading
from bot.usecases.core import Core
from handlers import blocks
from handlers.runner import ACTOR, CORE, tracked

HOME_LIMIT = 20
#: the events the bot listens to; the server acknowledges any other and does nothing
EVENTS = frozenset({"app_home_opened"})
log = logging.getLogger(__name__)


def register(app: AsyncApp) -> None:
    app.event("app_home_opened")(tracked(home_opened))


async def home_opened(event: dict[str, Any], context: dict[str, Any], client: Any) -> None:
    if event.get("tab", "home") != "home":
        return
    if not isinstance(context.get(ACTOR), Actor):
        log.warning("App Home was opened by nobody named in the event; nothing was published")
        return
    try:
        await _publish_home(context, client)
    except Exception:
        log.exception("could not publish App Home for %s", context.get("user_id"))


async def _publish_home(context: dict[str, Any], client: Any) -> None:
    core: Core = context[CORE]
    actor: Actor = context[ACTOR]
    factories: list[str] = []
    if actor.role is None:
        text = render_slack("slack/home.txt", actor=actor, managers=await access.managers(core))
    else:
        watch = await reading.watch_list(core, limit=HOME_LIMIT)
        factories = [f.factory_id for f in watch.factories]
        text = render_slack(
            "slack/home.txt",
            actor=actor,
            watch=watch,
            calls=await calls.upcoming(core),
            submissions=await reading.recent_submissions(core, actor.user_id),
        )
    view = blocks.home_view(text, factories)
    await client.views_publish(user_id=actor.user_id, view=view)
