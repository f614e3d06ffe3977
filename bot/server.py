"""``pnc-bot serve``: Slack over HTTP (``POST /slack/events``, signatures verified by Bolt) or
over Socket Mode, plus ``GET /healthz``; the schema is migrated on start and SIGTERM drains the
work in flight — replies, then deliveries and reminders — before the process exits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

from bot import __version__
from bot.bootstrap import Bot, bootstrap, build_background, email_transport
from bot.errors import ConfigError
from bot.settings import Settings
from bot.slack_app import build_slack_app
from handlers.runner import settle
from scheduler.clock import Background
from store import access

log = logging.getLogger(__name__)

#: how long a stopping server waits for listeners still running (replies, audit entries)
DRAIN_SECONDS = 10.0


def slack_credentials(settings: Settings, socket_mode: bool) -> tuple[str, str, str | None]:
    """Bot token, signing secret and app token, or a ConfigError saying what is missing."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    )
    app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else None
    missing = [] if token else ["SLACK_BOT_TOKEN"]
    if socket_mode and not app_token:
        missing.append("SLACK_APP_TOKEN")
    if not socket_mode and not secret:
        missing.append("SLACK_SIGNING_SECRET")
    if missing:
        mode = "Socket Mode" if socket_mode else "HTTP mode"
        raise ConfigError(
            f"{mode} needs {' and '.join(missing)}.",
            "Set them from the Slack app's settings (see the README), or try the bot without "
            "Slack: pnc-bot shell.",
        )
    assert token is not None
    return token, secret or "", app_token


class ReplayGuard:
    """Refuses a Slack request whose signature was already served.

    On PostgreSQL (several replicas) the signatures are kept in the database, so a replay to any
    replica is refused; on SQLite one process serves Slack, and they are kept in its memory.
    Either way for six minutes: Slack refuses timestamps older than five.
    """

    KEEP = timedelta(minutes=6)

    def __init__(self, bot: Bot, secret: str) -> None:
        self.bot = bot
        self.verifier = SignatureVerifier(secret)
        self.shared = bot.db.is_postgresql
        self._seen: dict[str, datetime] = {}
        self._served = 0

    async def first_time(self, body: str, headers: Mapping[str, str]) -> bool:
        """False for a request correctly signed that was already served. Requests that are not
        correctly signed are left to Bolt, which refuses them."""
        signature = headers.get("X-Slack-Signature", "")
        timestamp = headers.get("X-Slack-Request-Timestamp", "")
        if not self.verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
            return True
        now = self.bot.core.clock()
        self._served += 1
        first = await self._shared(signature, now) if self.shared else self._local(signature, now)
        if not first:
            log.warning("refused a replayed Slack request (timestamp %s)", timestamp)
        return first

    def _local(self, signature: str, now: datetime) -> bool:
        if self._served % 500 == 0:  # forget what can no longer be replayed
            self._seen = {k: v for k, v in self._seen.items() if v >= now - self.KEEP}
        if signature in self._seen:
            return False
        self._seen[signature] = now
        return True

    async def _shared(self, signature: str, now: datetime) -> bool:
        # every 200 requests, forget what can no longer be replayed
        forget = now - self.KEEP if self._served % 200 == 0 else None
        try:
            return await access.first_time(self.bot.db, signature, now, forget_before=forget)
        except Exception as exc:
            # the database is unreachable: nothing can be written by this request either, and
            # the access middleware tells the person to try again
            log.warning("could not check for a replay (%s)", type(exc).__name__)
        return True


class Server:
    """The bot's HTTP server around a Bolt app (and a Socket Mode connection when asked)."""

    #: seconds ``/healthz`` waits for the database (connecting and answering) before a 503
    health_timeout = 5.0

    def __init__(
        self,
        bot: Bot,
        slack: AsyncApp,
        *,
        signing_secret: str | None = None,
        app_token: str | None = None,
        background: Background | None = None,
    ) -> None:
        self.bot = bot
        self.slack = slack
        self.app_token = app_token
        self.background = background
        # HTTP requests carry Slack's signature; Socket Mode does not need one
        self.replays = ReplayGuard(bot, signing_secret) if signing_secret else None
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._socket: AsyncSocketModeHandler | None = None

    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post("/slack/events", self._slack_events)
        app.router.add_get("/healthz", self._healthz)
        return app

    async def start(self, host: str = "0.0.0.0", port: int = 3000) -> int:
        self._runner = web.AppRunner(self.web_app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.port = int(self._runner.addresses[0][1])
        if self.app_token:
            self._socket = AsyncSocketModeHandler(self.slack, self.app_token)
            await self._socket.connect_async()  # type: ignore[no-untyped-call]  # slack_bolt: unannotated
        if self.background is not None:
            await self.background.start()
        log.info(
            "pnc-bot %s listening on %s:%s%s",
            __version__,
            host,
            self.port,
            " and over Socket Mode" if self._socket else "",
        )
        return self.port

    async def stop(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await self._socket.close_async()  # type: ignore[no-untyped-call]  # slack_bolt: unannotated
        if self._runner is not None:
            await self._runner.cleanup()  # stops accepting, lets requests being served finish
        if still := await settle(DRAIN_SECONDS):
            log.warning("stopping with %d replies still being worked on", still)
        if self.background is not None:
            await self.background.stop()  # the clock first; then deliveries in hand finish

    async def _slack_events(self, request: web.Request) -> web.Response:
        try:
            body = (await request.read()).decode("utf-8")
        except UnicodeDecodeError:
            return web.json_response({"error": "the request body is not UTF-8"}, status=400)
        bolt_request = AsyncBoltRequest(
            body=body, query=request.query_string, headers=dict(request.headers)
        )
        if self.replays is not None and not await self.replays.first_time(
            bolt_request.raw_body, request.headers
        ):
            return web.json_response({"error": "this request was already served"}, status=401)
        response = await self.slack.async_dispatch(bolt_request)
        return await to_aiohttp_response(response)

    async def _healthz(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = {"status": "ok", "version": __version__, "database": "ok"}

        try:  # connecting counts: a database that accepts connections but never answers
            await asyncio.wait_for(self.bot.db.ping(), timeout=self.health_timeout)
        except Exception as exc:
            log.warning("health check: database unavailable (%s)", type(exc).__name__)
            body.update(status="unavailable", database="unavailable")
            return web.json_response(body, status=503)
        return web.json_response(body)


async def serve(settings: Settings, *, host: str, port: int, socket_mode: bool) -> None:
    """Run until SIGTERM or SIGINT."""
    token, secret, app_token = slack_credentials(settings, socket_mode)
    email = email_transport(settings)  # a bad PNC_SMTP_URL is refused now, before migrating
    bot = await bootstrap(settings)
    http: aiohttp.ClientSession | None = None
    server: Server | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    try:
        http = aiohttp.ClientSession()
        slack = build_slack_app(
            bot.core,
            token=token,
            signing_secret=secret or "unused",
            api_url=settings.slack_api_url,
            http=http,
        )
        server = Server(
            bot,
            slack,
            signing_secret=None if socket_mode else secret,
            app_token=app_token if socket_mode else None,
            background=build_background(bot, slack.client, email=email),
        )
        for sig in signals:
            loop.add_signal_handler(sig, stop.set)
        await server.start(host, port)
        await stop.wait()
        log.info("stopping")
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        if server is not None:
            await server.stop()
        else:
            await email.close()
        if http is not None:
            await http.close()
        await bot.aclose()
