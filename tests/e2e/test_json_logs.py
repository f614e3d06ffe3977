"""``pnc-bot --log-level debug serve --log-format json --metrics-port …`` as a process: every
line it writes is one JSON object with the time, level, logger and message, the lines logged
while a command is served carry its request id, user and subcommand, and no configured secret
appears anywhere — also at debug level, where the libraries log what they send and receive."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path

import aiohttp

from store.db import Database
from tests.e2e.conftest import FakeSlack, SlackClient
from tests.e2e.test_cli import PNC_BOT, environment
from tests.fakes import SmtpServer, free_port

TOKEN = "xoxb-JSON-TOKEN-5520"
SIGNING = "JSON-SIGNING-SECRET-7781"
SMTP_PASSWORD = "JSON-SMTP-PASSWORD-3310"
DB_PASSWORD = "JSON-DB-PASSWORD-9902"
CHIEF = "U0CHIEF"
REQUEST_ID = "lb-req-4242"


async def test_json_logs_one_object_a_line_with_the_request_and_no_secret(
    db: Database, slack: FakeSlack, tmp_path: Path
) -> None:
    url = db.url
    if db.is_postgresql:  # trust authentication: the password is carried and ignored
        url = url.set(query={"password": DB_PASSWORD})
    smtp = SmtpServer(password=SMTP_PASSWORD)
    smtp.start()
    port, metrics_port = free_port(), free_port()
    env = environment(
        {
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING,
            "PNC_SMTP_URL": smtp.url,
            "PNC_DATABASE_URL": url.render_as_string(hide_password=False),
            "PNC_SLACK_API_URL": f"{slack.url}/api/",
            "PNC_ADMINS": CHIEF,
            "PNC_STAFF_CHANNEL": "C0STAFF",
        }
    )
    process = await asyncio.create_subprocess_exec(
        *[str(PNC_BOT), "--log-level", "debug", "serve", "--log-format", "json"],
        *["--host", "127.0.0.1", "--port", str(port), "--metrics-port", str(metrics_port)],
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
                assert time.monotonic() < deadline, "pnc-bot serve never became ready"
                try:
                    async with session.get(f"{base}/readyz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
            client = SlackClient(base, slack, session, secret=SIGNING)
            session.headers["X-Request-Id"] = REQUEST_ID  # as a load balancer may set it
            # not a read: its reply goes to the response URL, from the listener's own task
            assert "99" in (await client.command("review release 99", CHIEF)).text
            del session.headers["X-Request-Id"]
            refused = await client.command("status VN-404", CHIEF)
            assert "VN-404" in refused.text
            async with session.get(f"http://127.0.0.1:{metrics_port}/metrics") as response:
                assert response.status == 200
                metrics = await response.text()
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
    assert 'pnc_refusals_total{code="unknown_factory"} 1.0' in metrics
    assert out == ""
    lines = [json.loads(line) for line in err.splitlines()]  # each line one object
    assert len(lines) > 20
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert any(line["logger"] == "bot.server" and "listening" in line["message"] for line in lines)
    # the load balancer's request id, on the lines of the request it was given with
    helped = [line for line in lines if line.get("request_id") == REQUEST_ID]
    assert {line.get("subcommand") for line in helped if "user" in line} == {"review release"}
    assert {line["user"] for line in helped if "user" in line} == {CHIEF}
    # also in the listener's own task: the reply sent to the response URL
    webhook = [line for line in helped if line["logger"].startswith("slack_sdk.webhook")]
    assert webhook and all(line.get("subcommand") == "review release" for line in webhook)
    # a request id of the bot's own otherwise; the factory named in the command
    status = [line for line in lines if line.get("subcommand") == "status"]
    assert status and {line["factory"] for line in status} == {"VN-404"}
    assert len({line["request_id"] for line in status}) == 1
    assert status[0]["request_id"] != REQUEST_ID
    for secret in (TOKEN, SIGNING, SMTP_PASSWORD, DB_PASSWORD, f"{slack.url}/respond/"):
        assert secret not in err, [line for line in err.splitlines() if secret in line][:3]


def test_a_command_that_fails_says_so_in_a_json_line_without_the_password(
    tmp_path: Path,
) -> None:
    """``PNC_LOG_FORMAT=json``: even the last word of a command that fails is a JSON line."""
    url = f"postgresql+asyncpg://pnc:{DB_PASSWORD}@127.0.0.1:{free_port()}/pnc"
    result = subprocess.run(
        [str(PNC_BOT), "status", "VN-1001"],
        cwd=tmp_path,
        env=environment({"PNC_DATABASE_URL": url, "PNC_LOG_FORMAT": "json"}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert lines[-1]["level"] == "error"
    assert lines[-1]["message"].startswith("cannot use the database postgresql+asyncpg://pnc:***@")
    assert DB_PASSWORD not in result.stdout + result.stderr
