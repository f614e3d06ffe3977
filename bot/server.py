"""``pnc-bot serve``: Slack over HTTP (``POST /slack/events``) or over Socket Mode, plus
``GET /healthz``, ``/livez``, ``/readyz`` (``bot.probes``) and, on a port of its own, ``/metrics``
(``bot.metrics``); the schema is migrated on start and SIGTERM drains the work in flight —
replies, then deliveries and reminders — before the process exits.

An HTTP request from Slack passes these checks in turn, each answering at once when it refuses:
the size (413, before the body is read), Slack's signature over the raw bytes (401), a replay
(401), the body's shape (400, ``handlers.middleware.screen``); only then does Bolt take it (its
fields read by ``bot.slack_body``, where Bolt misreads them). A refusal is logged in one line —
the reason and the size, never the body.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
import signal
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from bot import __version__, logs
from bot.bootstrap import Bot, bootstrap, build_background, email_transport
from bot.errors import ConfigError
from bot.metrics import Exporter
from bot.probes import Probes
from bot.replays import ReplayGuard
from bot.settings import Settings
from bot.slack_app import build_slack_app
from bot.slack_body import bolt_request, read_body
from handlers.middleware import Malformed, quoted, screen
from handlers.runner import settle
from scheduler.clock import Background

log = logging.getLogger(__name__)

#: how long a stopping server waits for listeners still running (replies, audit entries)
DRAIN_SECONDS = 10.0
#: the largest request body taken (413 beyond). The largest Slack sends the bot is the
#: assessment form, its whole view included: about 11 KB URL-encoded (tests/e2e/
#: test_hostile_requests.py measures it); a quarter of a megabyte leaves room for long texts
MAX_BODY_BYTES = 256 * 1024
#: a request whose timestamp is further than this from now is refused, as Slack's SDK does
MAX_SKEW_SECONDS = 5 * 60
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


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


class SlackSignature:
    """Slack's signature of a request — ``v0=`` and the HMAC-SHA256, keyed with the signing
    secret, of ``v0:<timestamp>:<body>`` — checked on the raw bytes, never raising."""

    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        self._key = secret.encode()
        self.clock = clock

    def headers_problem(self, timestamp: str | None, signature: str | None) -> str | None:
        """What is wrong with the signature's headers (missing, not a number, stale, not of
        Slack's form), if anything."""
        if not timestamp:
            return "no timestamp"
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            return f"the timestamp {quoted(timestamp)} is not a number of seconds"
        skew = self.clock() - int(timestamp)
        if abs(skew) > MAX_SKEW_SECONDS:
            return f"the timestamp is {abs(skew):.0f} s {'old' if skew > 0 else 'ahead'}"
        if not signature:
            return "no signature"
        if not _SIGNATURE.fullmatch(signature):
            return f"the signature {quoted(signature)} is not v0= and 64 hex digits"
        return None

    def matches(self, body: bytes, timestamp: str, signature: str) -> bool:
        """Whether ``signature`` (its form checked by ``headers_problem``) signs the body."""
        signed = b"v0:" + timestamp.encode() + b":" + body
        expected = "v0=" + hmac.new(self._key, signed, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)


@contextlib.asynccontextmanager
async def _timed(step: str, slow: float = 2.0) -> AsyncIterator[None]:
    """Log a step of stopping that took more than ``slow`` seconds."""
    started = time.monotonic()
    yield
    if (took := time.monotonic() - started) > slow:
        log.warning("stopping: %s took %.1f s", step, took)


class _HttpLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server log, where a request that is not valid HTTP (a control character in a
    header, say) takes one line rather than a traceback; other errors keep theirs."""

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info")
        if isinstance(exc, HttpProcessingError):
            reason = (exc.message or type(exc).__name__).splitlines()[0]
            where = args[0] if args else "?"
            self.warning(
                "refused a request that is not HTTP: %s (from %s)", ascii(reason[:80]), where
            )
        else:
            super().exception(msg, *args, **kwargs)


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
        # HTTP requests carry Slack's signature; Socket Mode does not need one (and without a
        # signing secret, every HTTP request is refused)
        self.signature = SlackSignature(signing_secret) if signing_secret else None
        self.replays = ReplayGuard(bot.db, bot.core.clock) if signing_secret else None
        self.probes = Probes(bot.db, background)
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._socket: AsyncSocketModeHandler | None = None

    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/slack/events", self._slack_events)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/livez", self.probes.livez)
        app.router.add_get("/readyz", self.probes.readyz)
        return app

    async def start(self, host: str = "0.0.0.0", port: int = 3000) -> int:
        if self.replays is not None:
            await self.replays.start()
        self._runner = web.AppRunner(
            self.web_app(),
            access_log=None,
            # a body left unread (one over MAX_BODY_BYTES) closes the connection; by default
            # aiohttp would read and drop up to 10 s of it: cheap flooding
            lingering_time=0,
            logger=_HttpLog(logging.getLogger("aiohttp.server")),
        )
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, host, port).start()
        except OSError as exc:  # not the database's fault: say what it is
            await self._runner.cleanup()
            self._runner = None
            raise ConfigError(
                f"Cannot listen on {host}:{port}: {exc.strerror or exc}.",
                "Another program (another pnc-bot serve?) may have that port: stop it, or choose "
                "a free port with --port and an address of this machine with --host.",
            ) from None
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
        """Stop taking requests, let replies in progress finish, then deliveries and reminders
        in hand; a step that takes long is named in the log."""
        started = time.monotonic()
        async with _timed("closing the Slack connections"):
            if self._socket is not None:
                with contextlib.suppress(Exception):
                    await self._socket.close_async()  # type: ignore[no-untyped-call]  # slack_bolt: unannotated
            if self._runner is not None:
                await self._runner.cleanup()  # stops accepting, lets requests being served finish
        if self.replays is not None:
            async with _timed("writing the Slack requests served"):
                await self.replays.close()
        async with _timed("finishing the replies"):
            if still := await settle(DRAIN_SECONDS):
                log.warning("stopping with %d replies still being worked on", still)
        if self.background is not None:
            async with _timed("finishing the deliveries and reminders in hand"):
                await self.background.stop()  # the clock first; then deliveries in hand finish
        log.info("stopped in %.1f s", time.monotonic() - started)

    async def _slack_events(self, request: web.Request) -> web.Response:
        """A request from Slack, checked in turn (see the module's docstring)."""
        request_id = logs.new_request(request.headers.get("X-Request-Id"))
        if (request.content_length or 0) > MAX_BODY_BYTES:  # not read: the connection closes
            return _refused(request, 413, f"larger than {MAX_BODY_BYTES} bytes")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _refused(request, 413, f"larger than {MAX_BODY_BYTES} bytes")
        if self.signature is None:
            reason = "this server takes Slack's requests over Socket Mode"
            return _refused(request, 401, reason, len(raw))
        timestamp = request.headers.get("X-Slack-Request-Timestamp")
        signature = request.headers.get("X-Slack-Signature")
        if problem := self.signature.headers_problem(timestamp, signature):
            return _refused(request, 401, problem, len(raw))
        assert timestamp is not None and signature is not None
        if not self.signature.matches(raw, timestamp, signature):
            return _refused(request, 401, "the signature does not match", len(raw))
        if self.replays is not None and not await self.replays.first_time(signature):
            return web.json_response({"error": "this request was already served"}, status=401)
        try:
            body = raw.decode("utf-8")
            wanted = screen(read_body(body, request.content_type))
            slack_request = bolt_request(
                body,
                query=request.query_string,
                headers=dict(request.headers),
                context={logs.REQUEST_ID: request_id},  # the middleware keeps it
            )
        except Exception as exc:
            return _refused(request, 400, _unreadable(exc), len(raw))
        if not wanted:
            log.info("acknowledged a Slack event no listener wants (%d bytes)", len(raw))
            return web.Response(status=200)
        response = await self.slack.async_dispatch(slack_request)
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


def _refused(
    request: web.Request, status: int, reason: str, size: int | None = None
) -> web.Response:
    """Refuse a request with one line in the log: why, its size, where from; never its body."""
    size = request.content_length if size is None else size
    what = {
        400: "a malformed Slack request",
        401: "a request without a valid Slack signature",
        413: "a request too large to be Slack's",
    }[status]
    log.warning("refused %s: %s (%s bytes, from %s)", what, reason, size, request.remote)
    answer = {400: f"malformed request: {reason}", 413: "request too large"}
    return web.json_response({"error": answer.get(status, "invalid request")}, status=status)


def _unreadable(exc: Exception) -> str:
    if isinstance(exc, Malformed):
        return str(exc)
    if isinstance(exc, UnicodeDecodeError):
        return "the body is not UTF-8"
    if isinstance(exc, ValueError | RecursionError):
        return "the body is not JSON Slack would send"
    return f"Slack's library could not read it ({type(exc).__name__})"


async def serve(
    settings: Settings,
    *,
    host: str,
    port: int,
    socket_mode: bool,
    metrics: tuple[str, int] | None = None,
) -> None:
    """Run until SIGTERM or SIGINT; ``metrics`` (host, port) serves ``/metrics`` there."""
    token, secret, app_token = slack_credentials(settings, socket_mode)
    email = email_transport(settings)  # a bad PNC_SMTP_URL is refused now, before migrating
    bot = await bootstrap(settings)
    http: aiohttp.ClientSession | None = None
    server: Server | None = None
    exporter = Exporter(bot.db, bot.core.clock) if metrics is not None else None
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
        if exporter is not None and metrics is not None:
            await exporter.start(*metrics)
        await stop.wait()
        log.info("stopping")
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        if exporter is not None:
            await exporter.stop()
        if server is not None:
            await server.stop()
        else:
            await email.close()
        if http is not None:
            await http.close()
        await bot.aclose()
