"""``pnc-bot shell``: the Slack app on a console, like Hubot's shell adapter or Errbot's text
backend. Each ``/pnc …`` line is dispatched through the very same Bolt app — middleware, roles,
listeners, audit — as a Socket Mode request; the app's Web API calls and replies go to a small
stand-in for Slack on loopback, which prints them. No Slack configuration is needed."""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.bootstrap import Bot
from bot.roles import Actor
from bot.slack_app import build_slack_app
from handlers.runner import ACTOR, SOURCE

log = logging.getLogger(__name__)

PROMPT = "pnc> "
CHANNEL = "CSHELL"
#: how long one command may take before the shell gives up waiting for its replies
COMMAND_TIMEOUT = 60.0


class ConsoleSlack:
    """A loopback stand-in for Slack's Web API and response URLs that prints what it gets."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_post("/respond/{n}", self._respond)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _respond(self, request: web.Request) -> web.Response:
        self.write(_shown(await request.json()))
        return web.Response(text="ok")

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body = await _body(request)
        answer: dict[str, Any] = {"ok": True}
        if method == "auth.test":
            answer.update(user_id="UPNCBOT", bot_id="BPNCBOT", team_id="TSHELL", user="pnc-bot")
        elif method in ("chat.postMessage", "chat.postEphemeral"):
            self.write(f"[posted to {body.get('channel')}]\n{_shown(body)}")
            answer.update(channel=body.get("channel"), ts="0000000000.000100")
        elif method == "views.open":
            title = body.get("view", {}).get("title", {}).get("text", "a form")
            self.write(
                f"(In Slack a form opens here: {title}. In the shell, use the text form: "
                "/pnc assess <factory> <YYYY-MM-DD> <codes|none>)"
            )
        elif method == "views.publish":
            self.write(f"[App Home]\n{_shown(body.get('view', {}))}")
        return web.json_response(answer)


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
    app = build_slack_app(
        bot.services, token="xoxb-console", signing_secret="console", api_url=f"{url}/api/"
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
            before = asyncio.all_tasks()
            response = await app.async_dispatch(
                AsyncBoltRequest(body=body, mode="socket_mode", context=context)
            )
            if response.body:
                write(_shown(json.loads(response.body)))
            started = [t for t in asyncio.all_tasks() - before if not t.done()]
            if started:
                await asyncio.wait(started, timeout=COMMAND_TIMEOUT)
            run += 1
    finally:
        await console.stop()
    return run


async def _body(request: web.Request) -> dict[str, Any]:
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


def _shown(message: dict[str, Any]) -> str:
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
