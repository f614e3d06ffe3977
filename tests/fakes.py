"""Stand-ins for what is outside the project, on loopback: Slack's Web API (with its websocket for
Socket Mode) and a real SMTP server (aiosmtpd) that records what it accepts and can be told to
refuse."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import json
import socket
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiohttp import WSMsgType, web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from handlers.shell import LoopbackSlack


@dataclass
class Call:
    method: str
    body: dict[str, Any]
    #: when it arrived (time.monotonic)
    at: float = field(default_factory=time.monotonic)


class FakeSlack(LoopbackSlack):
    """Records every Web API call and every message sent to a response URL; a test can make
    the next calls to a method fail (status, body, headers — e.g. 429 with Retry-After)."""

    def __init__(self) -> None:
        super().__init__()
        self.socket: web.WebSocketResponse | None = None
        self.socket_acks: dict[str, dict[str, Any]] = {}
        self.calls: list[Call] = []
        self.responses: dict[str, dict[str, Any]] = {}
        self._failures: dict[str, list[tuple[int, dict[str, Any], dict[str, str]]]] = {}
        self._drops: Counter[str] = Counter()
        self._arrived = asyncio.Event()

    def fail(
        self,
        method: str,
        status: int = 500,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        answer = body if body is not None else {"ok": False, "error": "fatal_error"}
        self._failures.setdefault(method, []).extend([(status, answer, headers or {})] * times)

    def drop(self, method: str, times: int = 1) -> None:
        """Close the connection instead of answering the next calls to a method: the client
        sees the server disconnect (aiohttp's ``ServerDisconnectedError``)."""
        self._drops[method] += times

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if self._drops[method] > 0:
            self._drops[method] -= 1
            await request.read()
            self.calls.append(Call(method, {}))
            self._arrived.set()
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=204)  # never reaches the client
        return await super()._api(request)

    async def api_call(
        self, method: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        self.calls.append(Call(method, body))
        self._arrived.set()
        queued = self._failures.get(method)
        if queued:
            return queued.pop(0)
        if method == "apps.connections.open":
            return 200, {"ok": True, "url": self.url.replace("http", "ws") + "/link"}, {}
        return await super().api_call(method, body)

    def routes(self, app: web.Application) -> None:
        super().routes(app)
        app.router.add_get("/link", self._link)

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        """Socket Mode: say hello, then record the app's acknowledgements of envelopes."""
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_json({"type": "hello", "num_connections": 1})
        self.socket = socket
        self._arrived.set()
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                data = json.loads(message.data)
                self.socket_acks[data.get("envelope_id", "")] = data
                self._arrived.set()
        return socket

    async def envelope(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send an event over the socket; returns the app's acknowledgement."""
        socket = await self.wait(lambda: self.socket)
        envelope_id = f"env-{len(self.socket_acks) + 1}-{kind}"
        await socket.send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": True,
                "retry_attempt": 0,
                "retry_reason": "",
            }
        )
        return await self.wait(lambda: self.socket_acks.get(envelope_id))

    async def responded(self, n: str, payload: dict[str, Any]) -> int:
        self.responses[n] = payload
        self._arrived.set()
        return 200

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait(self, condition: Any, within: float = 10.0) -> Any:
        """Wait until ``condition()`` returns something truthy, and return it."""
        deadline = time.monotonic() + within
        while not (found := condition()):
            self._arrived.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("timed out waiting for the fake Slack")
            with contextlib.suppress(TimeoutError):  # also re-check now and then: the
                # condition may depend on other fakes (the SMTP server)
                await asyncio.wait_for(self._arrived.wait(), min(remaining, 0.05))
        return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    """One message the SMTP server accepted."""

    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


@dataclass
class SmtpServer:
    """aiosmtpd on 127.0.0.1: records accepted messages; refuses as told.

    ``refuse[address] = "550 …"`` refuses a recipient; ``data_replies`` is a queue of answers to
    DATA (e.g. ``"451 try later"``) used before accepting; ``password`` requires AUTH.
    """

    port: int = field(default_factory=free_port)
    password: str | None = None
    #: (certificate, key) files: offer STARTTLS, or with ``implicit_tls`` speak SMTPS
    tls: tuple[str, str] | None = None
    implicit_tls: bool = False
    refuse: dict[str, str] = field(default_factory=dict)
    data_replies: list[str] = field(default_factory=list)
    #: seconds to stall before answering each of the next DATA commands (a hanging server)
    data_stalls: list[float] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    controller: Controller | None = None

    def start(self) -> None:
        options: dict[str, Any] = {}
        if self.password is not None:
            options = {
                "authenticator": self._authenticate,
                "auth_require_tls": False,
                "auth_required": True,
            }
        if self.tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self.tls)
            options["ssl_context" if self.implicit_tls else "tls_context"] = context
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **options)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def url(self) -> str:
        auth = f"pnc:{self.password}@" if self.password is not None else ""
        scheme = "smtps" if self.implicit_tls else "smtp"
        return f"{scheme}://{auth}127.0.0.1:{self.port}?timeout=5"

    def _authenticate(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password.decode() == self.password
        return AuthResult(success=ok, handled=False)

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.data_stalls:
            await asyncio.sleep(self.data_stalls.pop(0))
        if self.data_replies:
            return self.data_replies.pop(0)
        content = envelope.original_content or envelope.content
        message = email.message_from_bytes(content, policy=email.policy.default)
        self.received.append(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), message)  # type: ignore[arg-type]
        )
        return "250 Message accepted for delivery"
