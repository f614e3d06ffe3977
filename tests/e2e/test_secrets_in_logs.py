"""Secrets in what the installed ``pnc-bot`` prints: a database password given as a query
parameter of ``PNC_DATABASE_URL``, and — at ``--log-level debug`` — Slack's response URLs (a
short-lived credential: anyone holding one can post to the channel), the tokens, the signing
secret and the SMTP and database passwords."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from store.db import Database
from tests.e2e.conftest import FakeSlack, SlackClient
from tests.e2e.test_cli import PNC_BOT, environment
from tests.fakes import SmtpServer, free_port

TOKEN = "xoxb-LOGGED-TOKEN-7731"
APP_TOKEN = "xapp-LOGGED-APP-TOKEN-9921"
SIGNING = "LOGGED-SIGNING-SECRET-4512"
SMTP_PASSWORD = "LOGGED-SMTP-PASSWORD"
DB_PASSWORD = "LOGGED-DB-PASSWORD"
CHIEF = "U0CHIEF"
FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    "query",
    [
        "password=hunter2-pw",
        "target_session_attrs=any&password=hunter2%2Dpw&krbsrvname=postgres",
    ],
)
@pytest.mark.parametrize("args", [("status", "VN-1"), ("db", "upgrade")])
def test_a_password_in_the_database_urls_query_is_never_printed(
    tmp_path: Path, query: str, args: tuple[str, ...]
) -> None:
    """An unreachable PostgreSQL whose URL carries the password as a query parameter: the error
    names the database, the password masked, at every log level."""
    url = f"postgresql+asyncpg://pnc@127.0.0.1:{free_port()}/pnc?{query}"
    for level in ("warning", "debug"):
        result = subprocess.run(
            [str(PNC_BOT), "--log-level", level, *args],
            cwd=tmp_path,
            env=environment({"PNC_DATABASE_URL": url}),
            capture_output=True,
            text=True,
            timeout=60,
        )
        shown = result.stdout + result.stderr
        assert result.returncode == 1, shown
        assert "hunter2" not in shown, shown
        assert "cannot use the database postgresql+asyncpg://pnc@127.0.0.1:" in result.stderr
        assert "=***" in result.stderr, result.stderr
        assert "Traceback" not in shown, shown


@pytest.mark.parametrize("socket_mode", [False, True], ids=["http", "socket-mode"])
async def test_debug_logs_mask_response_urls_and_every_secret(
    db: Database, slack: FakeSlack, tmp_path: Path, socket_mode: bool
) -> None:
    """``pnc-bot --log-level debug serve`` answering a command (a signed HTTP request, or an
    envelope over Socket Mode): the libraries log what arrives and the reply sent to the
    response URL, but the URL, the tokens and the passwords are masked."""
    url = db.url
    if db.is_postgresql:  # trust authentication: the password is carried and ignored
        url = url.set(query={"password": DB_PASSWORD})
    smtp = SmtpServer()
    smtp.start()
    port = free_port()
    env = environment(
        {
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING,
            "PNC_SMTP_URL": f"smtp://pnc:{SMTP_PASSWORD}@127.0.0.1:{smtp.port}?timeout=5",
            "PNC_DATABASE_URL": url.render_as_string(hide_password=False),
            "PNC_SLACK_API_URL": f"{slack.url}/api/",
            "PNC_ADMINS": CHIEF,
            "PNC_OUTBOX_DIR": str(tmp_path / "outbox"),
        }
    )
    mode = ["--socket-mode"] if socket_mode else []
    process = await asyncio.create_subprocess_exec(
        *[str(PNC_BOT), "--log-level", "debug", "serve", *mode],
        *["--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    stdout, stderr = (asyncio.create_task(s.read()) for s in (process.stdout, process.stderr))
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 60
            while True:
                assert process.returncode is None, "pnc-bot serve stopped"
                assert time.monotonic() < deadline, "pnc-bot serve never became healthy"
                try:
                    async with session.get(f"{base}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
            # a read is answered in the acknowledgement; anything else through the response
            # URL, which is then logged (masked)
            if socket_mode:

                async def envelope(text: str, n: str) -> dict[str, Any]:
                    return await slack.envelope(
                        "slash_commands",
                        {
                            "command": "/pnc",
                            "text": text,
                            "user_id": CHIEF,
                            "team_id": "T0TEST",
                            "channel_id": "C0STAFF",
                            "api_app_id": "A0PNC",
                            "response_url": f"{slack.url}/respond/{n}",
                            "trigger_id": f"trigger.socket.{n}",
                        },
                    )

                assert "/pnc status" in (await envelope("help", "1"))["payload"]["text"]
                await envelope("review release 99", "2")
                reply = await slack.wait(lambda: slack.responses.get("2"))
                assert "99" in reply["text"]
            else:
                client = SlackClient(base, slack, session, secret=SIGNING)
                assert "/pnc status" in (await client.command("help", CHIEF)).text
                assert "99" in (await client.command("review release 99", CHIEF)).text
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 30)
        finally:
            if process.returncode is None:
                process.kill()
            smtp.stop()
    out, err = (await stdout).decode(), (await stderr).decode()
    assert process.returncode == 0, err[-3000:]
    log = out + err
    respond = f"{slack.url}/respond/"
    for secret in (respond, TOKEN, APP_TOKEN, SIGNING, SMTP_PASSWORD, DB_PASSWORD):
        leaked = [line[:300] for line in log.splitlines() if secret in line]
        assert leaked == [], (secret, leaked)
    webhook = "DEBUG slack_sdk.webhook.async_client: Sending a request - url: "
    assert f"{webhook}{slack.url}/***, body: " in log, "the reply is logged, its URL masked"
    if socket_mode:  # the envelope is logged as received, its response URL masked
        assert '"response_url": "***"' in log
