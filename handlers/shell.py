"""``pnc-bot shell``: the Slack app on a console, like Hubot's shell adapter or Errbot's text
backend. Each ``/pnc …`` line is dispatched through the very same Bolt app — middleware, roles,
listeners, audit — as a Socket Mode request; the app's Web API calls and replies go to a small
stand-in for Slack on loopback, which prints them. No Slack configuration is needed."""

from __future__ import annotations

import html
import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.bootstrap import Bot, build_background, email_transport
from bot.roles import Actor
from bot.slack_app import build_slack_app
from bot.transports import Result, Transport
from handlers.runner import ACTOR, SOURCE, settle
from store.models import OutboxMessage

log = logging.getLogger(__name__)

PROMPT = "pnc> "
CHANNEL = "CSHELL"
#: how long one command may take before the shell gives up waiting for its replies
COMMAND_TIMEOUT = 60.0


class LoopbackSlack:
    """Slack's Web API (``POST /api/<method>``) and response URLs (``POST /respond/<n>``) on
    loopback. Answers every call ``ok``; subclasses decide what to do with what arrives."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.url = ""

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/{method}", self._api)
        app.router.add_post("/respond/{n}", self._respond)

    async def start(self) -> str:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def api_call(
        self, method: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Status, JSON answer and headers for one Web API call."""
        answer: dict[str, Any] = {"ok": True}
        if method == "auth.test":
            answer.update(user_id="UPNCBOT", bot_id="BPNCBOT", team_id="TLOCAL", user="pnc-bot")
        elif method in ("chat.postMessage", "chat.postEphemeral"):
            answer.update(channel=body.get("channel"), ts="1700000000.000100")
        return 200, answer, {}

    async def responded(self, n: str, payload: dict[str, Any]) -> int:
        """A message sent to a response URL; returns the HTTP status to answer."""
        return 200

    async def _api(self, request: web.Request) -> web.Response:
        status, answer, headers = await self.api_call(
            request.match_info["method"], await request_body(request)
        )
        return web.json_response(answer, status=status, headers=headers)

    async def _respond(self, request: web.Request) -> web.Response:
        status = await self.responded(request.match_info["n"], await request.json())
        return web.Response(text="ok", status=status)


class ConsoleSlack(LoopbackSlack):
    """Prints what the app would show or post."""

    def __init__(self, write: Callable[[str], None]) -> None:
        super().__init__()
        self.write = write

    async def responded(self, n: str, payload: dict[str, Any]) -> int:
        self.write(readable(payload))
        return 200

    async def api_call(
        self, method: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if method in ("chat.postMessage", "chat.postEphemeral"):
            self.write(f"[posted to {body.get('channel')}]\n{readable(body)}")
        elif method == "views.open":
            title = body.get("view", {}).get("title", {}).get("text", "a form")
            self.write(
                f"(In Slack a form opens here: {title}. In the shell, use the text form: "
                "/pnc assess <factory> <YYYY-MM-DD> <codes|none>)"
            )
        elif method == "views.publish":
            self.write(f"[App Home]\n{readable(body.get('view', {}))}")
        return await super().api_call(method, body)


async def run_shell(
    bot: Bot,
    *,
    user_id: str | None,
    operator: Actor,
    read_line: Callable[[], Awaitable[str | None]],
    write: Callable[[str], None],
) -> int:
    """Read ``/pnc …`` lines until the input ends; returns how many commands were run."""
    console = ConsoleSlack(write)
    url = await console.start()
    http = aiohttp.ClientSession()
    app = build_slack_app(
        bot.services,
        token="xoxb-console",
        signing_secret="console",
        api_url=f"{url}/api/",
        http=http,
    )
    background = build_background(
        bot, app.client, email=_Shown(email_transport(bot.settings), write)
    )
    counter = itertools.count(1)
    run = 0
    try:
        while (line := await read_line()) is not None:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line in ("exit", "quit"):
                break
            if not line.startswith("/pnc"):
                write("Commands start with /pnc — try /pnc help (exit to leave).")
                continue
            n = next(counter)
            who = user_id or operator.user_id
            body = {
                "command": "/pnc",
                "text": html.escape(line[len("/pnc") :].strip(), quote=False),
                "user_id": who,
                "user_name": who,
                "channel_id": CHANNEL,
                "team_id": "TSHELL",
                "api_app_id": "ASHELL",
                "trigger_id": f"shell.{n}",
                "response_url": f"{url}/respond/{n}",
            }
            context: dict[str, Any] = {SOURCE: "shell"}
            if user_id is None:
                context[ACTOR] = operator
            response = await app.async_dispatch(
                AsyncBoltRequest(body=body, mode="socket_mode", context=context)
            )
            if response.body:
                write(readable(json.loads(response.body)))
            await settle(COMMAND_TIMEOUT)  # the reply arrives once the listener is done
            await background.reminders.run_due()  # reminders that fell due (a call added …)
            while await background.dispatcher.run_once():  # and the notices go out
                pass
            run += 1
    finally:
        await background.dispatcher.close()
        await http.close()
        await console.stop()
    return run


class _Shown:
    """An email transport that also says, on the console, what it delivered."""

    def __init__(self, transport: Transport, write: Callable[[str], None]) -> None:
        self.transport = transport
        self.channel = transport.channel
        self.write = write

    async def send(self, batch: Sequence[tuple[OutboxMessage, Any]]) -> list[Result]:
        results = await self.transport.send(batch)
        for (row, message), result in zip(batch, results, strict=True):
            where = f" → {result.reply}" if result.reply else f" ({result.outcome}: {result.error})"
            self.write(
                f"[email {row.kind} to {row.recipient_name} <{', '.join(row.addresses)}>]"
                f" {message['Subject']}{where}"
            )
        return results

    async def close(self) -> None:
        await self.transport.close()


async def request_body(request: web.Request) -> dict[str, Any]:
    """A Web API call's arguments, sent as JSON or as a form (with JSON-valued fields)."""
    if request.content_type == "application/json":
        return dict(await request.json())
    form = await request.post()
    body: dict[str, Any] = {}
    for key, value in form.items():
        text = str(value)
        try:
            body[key] = json.loads(text) if text[:1] in "{[" else text
        except ValueError:
            body[key] = text
    return body


def readable(message: dict[str, Any]) -> str:
    """What a person would read: the mrkdwn of the message (or view), entities decoded."""
    text = message.get("text")
    if not text:
        parts = [
            b.get("text", {}).get("text", "")
            for b in message.get("blocks", [])
            if isinstance(b.get("text"), dict)
        ]
        text = "\n\n".join(p for p in parts if p)
    return html.unescape(text or "")
