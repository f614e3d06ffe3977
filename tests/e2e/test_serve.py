"""``pnc-bot serve`` as a process (SIGTERM), and Socket Mode against a fake Slack websocket."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.bootstrap import Bot
from bot.server import Server
from bot.settings import Settings
from bot.slack_app import build_slack_app
from bot.usecases import imports
from bot.usecases.core import Core
from store.db import Database
from tests.conftest import EXAMPLES, MANAGER
from tests.e2e.conftest import BOT_TOKEN, FakeSlack
from tests.e2e.test_cli import PNC_BOT, environment


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_health_checks_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = environment({"SLACK_BOT_TOKEN": "xoxb-x", "SLACK_SIGNING_SECRET": "s3cr3t-signing"})
    process = subprocess.Popen(
        [str(PNC_BOT), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline, health = time.monotonic() + 30, None
        while time.monotonic() < deadline and health is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    health = json.loads(r.read())
            except OSError:
                time.sleep(0.2)
        assert health is not None and health["status"] == "ok"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr and "s3cr3t-signing" not in stderr
    assert (tmp_path / "var" / "pnc.db").exists()  # migrated on start


def test_serve_without_slack_settings_says_what_is_missing(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(PNC_BOT), "serve", "--socket-mode"],
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Socket Mode needs SLACK_BOT_TOKEN and SLACK_APP_TOKEN" in result.stderr


@pytest.fixture
async def socket_server(
    db: Database,
    settings: Settings,
    core: Core,
    slack: FakeSlack,
    http: aiohttp.ClientSession,
) -> AsyncIterator[Server]:
    for kind in ("factories", "assessments"):
        await imports.run(core, kind, EXAMPLES / f"{kind}.csv", MANAGER)
    app = build_slack_app(
        core,
        token=BOT_TOKEN,
        signing_secret="unused",
        api_url=f"{slack.url}/api/",
        http=http,
    )
    bot = Bot(settings, core.config, db, core)
    server = Server(bot, app, app_token="xapp-test-socket")
    await server.start("127.0.0.1", 0)
    yield server
    await server.stop()


async def test_socket_mode_carries_commands(socket_server: Server, slack: FakeSlack) -> None:
    assert slack.calls_to("apps.connections.open")  # the app asked Slack for a socket
    ack = await slack.envelope(
        "slash_commands",
        {
            "command": "/pnc",
            "text": "status VN-1001",
            "user_id": "U0ADMIN",  # a manager through PNC_ADMINS
            "team_id": "T0TEST",
            "channel_id": "C0STAFF",
            "api_app_id": "A0PNC",
            "response_url": f"{slack.url}/respond/socket-1",
            "trigger_id": "trigger.socket",
        },
    )
    assert ack["envelope_id"].startswith("env-")
    # a read is answered in the acknowledgement itself, over the socket as over HTTP
    assert "*Persistently non-compliant*" in ack["payload"]["text"]
