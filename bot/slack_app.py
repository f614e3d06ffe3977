"""The Slack app: a slack-bolt ``AsyncApp`` with pnc-bot's middleware and listeners."""

from __future__ import annotations

import logging

import aiohttp
from slack_bolt.async_app import AsyncApp

from bot.usecases.core import Core
from handlers import actions, commands, events, middleware, views


def build_slack_app(
    core: Core,
    *,
    token: str,
    signing_secret: str,
    api_url: str,
    http: aiohttp.ClientSession,
) -> AsyncApp:
    """The app; its Web API client talks to ``api_url`` (Slack's, or a fake in tests).

    ``http`` is one keep-alive session for everything the app sends to Slack (Web API calls
    and replies to response URLs); whoever builds the app closes it.
    """
    app = AsyncApp(
        token=token,
        signing_secret=signing_secret,
        logger=logging.getLogger("pnc-bot.slack"),
    )
    app.client.base_url = api_url
    app.client.session = http
    middleware.register(app, core, http)
    commands.register(app)
    views.register(app)
    events.register(app)
    actions.register(app)
    return app
