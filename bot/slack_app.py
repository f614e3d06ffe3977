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
        # Bolt answers Slack as soon as a listener returns; ours return once they acknowledge
        # and go on in a task of their own (``handlers.runner.tracked``). Without it Bolt polls
        # for the acknowledgement every 10 ms, which every answer would wait for.
        process_before_response=True,
    )
    app.client.base_url = api_url
    app.client.session = http
    middleware.register(app, core, http)
    commands.register(app)
    views.register(app)
    events.register(app)
    actions.register(app)
    return app
