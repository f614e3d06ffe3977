"""``pnc-bot shell``: the Slack app on a console, like Hubot's shell adapter or Errbot's text
backend. Each ``/pnc …`` line is dispatched through the very same Bolt app — middleware, roles,
listeners, audit — as a Socket Mode request; the app's Web API calls and replies go to a small
stand-in for Slack on loopback, which prints them. No Slack configuration is needed."""

from __future__ import annotations

import html
import itertools
import json
import logging
import re
from collections.abc import Awaitable, Callable
from email.header import decode_header, make_header
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.bootstrap import Bot, build_background, email_transport
from bot.roles import Actor
from bot.slack_app import build_slack_app
from bot.transports import Batch, Done, Result, Transport
from handlers.modals import PRESS_CALLBACK as PRESS_FORM
from handlers.runner import ACTOR, SOURCE, settle

log = logging.getLogger(__name__)

PROMPT = "pnc> "
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)>")
CHANNEL = "CSHELL"
#: how long one command may take before the shell gives up waiting for its replies
COMMAND_TIMEOUT = 60.0


class LoopbackSlack:
    """Slack's Web API (``POST /api/<method>``) and response URLs (``POST /respond/<n>``) on
    loopback. Answers every call ``ok``; subclasses decide what to do with what arrives."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.url = ""
        #: each message posted gets its own ``ts``, as in Slack (a press names its message)
        self._posted = itertools.count(100)

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
            answer.update(channel=body.get("channel"), ts=f"1700000000.{next(self._posted):06d}")
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
    """Prints what the app would show or post; numbers the buttons it shows (``press N``)."""

    def __init__(self, write: Callable[[str], None]) -> None:
        super().__init__()
        self.write = write
        #: the buttons shown, by number: (where it was shown, the message or view, the button)
        self.buttons: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
        #: the form the last press opened (``views.open``)
        self.form: dict[str, Any] | None = None

    def _number(self, where: dict[str, Any], shown: dict[str, Any]) -> None:
        """List the buttons of a message or view, numbered for ``press N``."""
        found = [b for b in shown.get("blocks", []) if b.get("type") == "actions"]
        elements = [e for b in found for e in b.get("elements", [])]
        elements += [b["accessory"] for b in shown.get("blocks", []) if b.get("accessory")]
        for element in elements:
            n = len(self.buttons) + 1
            self.buttons[n] = (where, element)
            self.write(f"  [{n}] {element.get('text', {}).get('text', '')} (press {n})")

    async def responded(self, n: str, payload: dict[str, Any]) -> int:
        self.write(readable(payload))
        return 200

    async def api_call(
        self, method: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        answer = await super().api_call(method, body)
        if method in ("chat.postMessage", "chat.postEphemeral"):
            self.write(f"[posted to {body.get('channel')}]\n{readable(body)}")
            where = {"channel": body.get("channel"), "ts": answer[1].get("ts")}
            self._number(where | {"message": body}, body)
        elif method == "chat.update":
            self.write(f"[message updated in {body.get('channel')}]\n{readable(body)}")
        elif method == "views.open":
            view = body.get("view", {})
            title = view.get("title", {}).get("text", "a form")
            if view.get("callback_id") == PRESS_FORM:
                self.form = view
                self.write(f"(In Slack a form opens here: {title}; the shell fills it in.)")
            else:
                self.write(
                    f"(In Slack a form opens here: {title}. In the shell, use the text form: "
                    "/pnc assess <factory> <YYYY-MM-DD> <codes|none>)"
                )
        elif method == "views.publish":
            self.write(f"[App Home]\n{readable(body.get('view', {}))}")
            self._number({"home": True}, body.get("view", {}))
        return answer


class ConsoleSession:
    """The Slack app on a console: ``/pnc`` lines in, what people would see out.

    Each line is dispatched through the Bolt app as Slack would send it (as a Socket Mode
    request: no signature); then the reminders that fell due and the notices the command caused
    are delivered before the next line, so the output reads as a conversation.
    """

    def __init__(
        self,
        bot: Bot,
        *,
        write: Callable[[str], None],
        operator: Actor,
        user_id: str | None = None,
    ) -> None:
        self.bot = bot
        self.write = write
        self.operator = operator
        self.user_id = user_id
        self._console = ConsoleSlack(write)
        self._counter = itertools.count(1)
        self._http: aiohttp.ClientSession | None = None
        self._app: Any = None
        self._background: Any = None
        self._url = ""

    async def __aenter__(self) -> ConsoleSession:
        self._url = await self._console.start()
        self._http = aiohttp.ClientSession()
        self._app = build_slack_app(
            self.bot.core,
            token="xoxb-console",
            signing_secret="console",
            api_url=f"{self._url}/api/",
            http=self._http,
        )
        self._background = build_background(
            self.bot,
            self._app.client,
            email=_Shown(email_transport(self.bot.settings), self.write),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._background is not None:
            await self._background.dispatcher.close()
        if self._http is not None:
            await self._http.close()
        await self._console.stop()

    async def command(self, line: str) -> None:
        """Run one ``/pnc …`` line and deliver what it caused."""
        n = next(self._counter)
        who = self.user_id or self.operator.user_id
        body = {
            "command": "/pnc",
            "text": html.escape(line[len("/pnc") :].strip(), quote=False),
            "user_id": who,
            "user_name": who,
            "channel_id": CHANNEL,
            "team_id": "TSHELL",
            "api_app_id": "ASHELL",
            "trigger_id": f"shell.{n}",
            "response_url": f"{self._url}/respond/{n}",
        }
        context: dict[str, Any] = {SOURCE: "shell"}
        if self.user_id is None:
            context[ACTOR] = self.operator
        response = await self._app.async_dispatch(
            AsyncBoltRequest(body=body, mode="socket_mode", context=context)
        )
        if response.body:
            self.write(readable(json.loads(response.body)))
        await settle(COMMAND_TIMEOUT)  # the reply arrives once the listener is done
        await self.deliver()

    async def press(self, line: str) -> None:
        """``press N [words]``: press the N-th button shown, as Slack would send it; a form it
        opens is submitted with ``words`` (a note or reason; a date first for a meeting, a
        step first for a zero-tolerance case)."""
        _, _, rest = line.partition(" ")
        number, _, words = rest.strip().partition(" ")
        shown = self._console.buttons.get(int(number)) if number.isdigit() else None
        if shown is None:
            self.write("No such button: `press N` presses a button listed as [N].")
            return
        where, element = shown
        self._console.form = None
        await self._dispatch(press_body(self._who(), where, element, self._url, self._counter))
        if self._console.form is not None:
            form, self._console.form = self._console.form, None
            await self._dispatch(form_body(self._who(), form, words.strip()))
        await self.deliver()

    def _who(self) -> str:
        return self.user_id or self.operator.user_id

    async def _dispatch(self, body: dict[str, Any]) -> None:
        context: dict[str, Any] = {SOURCE: "shell"}
        if self.user_id is None:
            context[ACTOR] = self.operator
        response = await self._app.async_dispatch(
            AsyncBoltRequest(body=body, mode="socket_mode", context=context)
        )
        if response.body:
            answer = json.loads(response.body)
            errors = answer.get("errors") if isinstance(answer, dict) else None
            self.write("\n".join(errors.values()) if errors else readable(answer))
        await settle(COMMAND_TIMEOUT)

    async def deliver(self) -> None:
        """Send the reminders that are due and every notice waiting."""
        await self._background.reminders.run_due()
        while await self._background.dispatcher.run_once():
            pass


async def run_shell(
    bot: Bot,
    *,
    user_id: str | None,
    operator: Actor,
    read_line: Callable[[], Awaitable[str | None]],
    write: Callable[[str], None],
) -> int:
    """Read ``/pnc …`` lines until the input ends; returns how many commands were run."""
    run = 0
    async with ConsoleSession(bot, write=write, operator=operator, user_id=user_id) as session:
        while (line := await read_line()) is not None:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line in ("exit", "quit"):
                break
            if line.split(" ", 1)[0] == "press":
                await session.press(line)
                run += 1
                continue
            if not line.startswith("/pnc"):
                write("Commands start with /pnc — try /pnc help (exit to leave).")
                continue
            await session.command(line)
            run += 1
    return run


class _Shown:
    """An email transport that also says, on the console, what it delivered."""

    def __init__(self, transport: Transport, write: Callable[[str], None]) -> None:
        self.transport = transport
        self.channel = transport.channel
        self.write = write

    async def send(self, batch: Batch, done: Done) -> None:
        async def shown(i: int, result: Result) -> None:
            row, message = batch[i]
            where = f" → {result.reply}" if result.reply else f" ({result.outcome}: {result.error})"
            self.write(
                f"[email {row.kind} to {row.recipient_name} <{', '.join(row.addresses)}>]"
                f" {_decoded(message['Subject'])}{where}"
            )
            await done(i, result)

        await self.transport.send(batch, shown)

    async def close(self) -> None:
        await self.transport.close()


def _decoded(header: object) -> str:
    """A header as a person reads it: RFC 2047 encoded words (a Vietnamese subject) decoded."""
    if header is None:
        return ""
    try:
        return str(make_header(decode_header(str(header))))
    except (ValueError, LookupError):  # malformed encoded words: show them as they are
        return str(header)


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
    # a mention shows as @name in Slack; on the console, as @id
    return _MENTION.sub(r"@\1", html.unescape(text or ""))


def press_body(
    user: str, where: dict[str, Any], element: dict[str, Any], url: str, counter: Any
) -> dict[str, Any]:
    """A button pressed, as Slack sends it (``block_actions``)."""
    n = next(counter)
    body: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "username": user},
        "team": {"id": "TSHELL"},
        "api_app_id": "ASHELL",
        "trigger_id": f"shell.{n}",
        "actions": [{**element, "block_id": "shell", "action_ts": "0"}],
    }
    if where.get("home"):
        return body | {"container": {"type": "view", "view_id": "VHOME"}}
    return body | {
        "container": {"type": "message", "channel_id": where["channel"], "message_ts": where["ts"]},
        "channel": {"id": where["channel"]},
        "message": {**where["message"], "ts": where["ts"]},
        "response_url": f"{url}/respond/{n}",
    }


def form_body(user: str, form: dict[str, Any], words: str) -> dict[str, Any]:
    """A form the bot opened, submitted with what was typed after ``press N``."""
    first, _, after = words.partition(" ")
    values: dict[str, Any] = {}
    for block in form.get("blocks", []):
        kind, block_id = block["element"]["type"], block["block_id"]
        if kind == "datepicker":
            picked = first if re.fullmatch(r"\d{4}-\d{2}-\d{2}", first) else ""
            values[block_id] = {block_id: {"selected_date": picked or None}}
            words = after if picked else words
        elif kind == "static_select":
            values[block_id] = {block_id: {"selected_option": {"value": first} if first else None}}
            words = after
        else:
            values[block_id] = {block_id: {"value": words or None}}
    return {
        "type": "view_submission",
        "user": {"id": user, "username": user},
        "team": {"id": "TSHELL"},
        "api_app_id": "ASHELL",
        "view": {
            "id": "VSHELL",
            "type": "modal",
            "callback_id": form["callback_id"],
            "private_metadata": form.get("private_metadata", ""),
            "state": {"values": values},
        },
    }
