"""``pnc-bot serve`` starting and failing to start, in process: bad settings are refused before
the database is touched, and what was made before a failure is released. Also ``/healthz``
against a database that never answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

import bot.server
from bot.errors import ConfigError
from bot.server import Server, serve
from bot.settings import Settings
from store.db import Database
from tests.fakes import free_port


def serve_settings(tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/pnc.db",
        slack_bot_token="xoxb-test",
        slack_signing_secret="test-signing-secret",
        outbox_dir=tmp_path / "outbox",
        **extra,
    )


async def test_a_bad_smtp_url_is_refused_before_the_database_is_migrated(tmp_path: Path) -> None:
    settings = serve_settings(tmp_path, smtp_url="smtp://relay.example:not-a-port")
    with pytest.raises(ConfigError, match="PNC_SMTP_URL"):
        await serve(settings, host="127.0.0.1", port=free_port(), socket_mode=False)
    assert not (tmp_path / "pnc.db").exists()


async def test_what_serve_made_is_released_when_starting_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: dict[str, Any] = {}
    real_bootstrap, real_app = bot.server.bootstrap, bot.server.build_slack_app

    async def bootstrap(settings: Settings) -> Any:
        made["bot"] = the_bot = await real_bootstrap(settings)
        real_close = the_bot.aclose

        async def aclose() -> None:
            made["bot closed"] = True
            await real_close()

        the_bot.aclose = aclose  # type: ignore[method-assign]
        return the_bot

    def build_slack_app(core: Any, **options: Any) -> Any:
        made["http"] = options["http"]
        return real_app(core, **options)

    def build_background(*args: Any, **options: Any) -> Any:
        raise RuntimeError("the background could not be built")

    monkeypatch.setattr(bot.server, "bootstrap", bootstrap)
    monkeypatch.setattr(bot.server, "build_slack_app", build_slack_app)
    monkeypatch.setattr(bot.server, "build_background", build_background)
    with pytest.raises(RuntimeError, match="could not be built"):
        await serve(serve_settings(tmp_path), host="127.0.0.1", port=free_port(), socket_mode=False)
    assert isinstance(made["http"], aiohttp.ClientSession) and made["http"].closed
    assert made.get("bot closed")


@pytest.fixture
async def silent_database() -> AsyncIterator[Database]:
    """A PostgreSQL URL whose server accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    listener = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    db = Database(f"postgresql+asyncpg://pnc@127.0.0.1:{port}/pnc")
    yield db
    for writer in held:
        writer.close()
    listener.close()
    await db.dispose()


async def test_health_checks_give_up_on_a_database_that_never_answers_a_connection(
    silent_database: Database,
) -> None:
    server = Server(SimpleNamespace(db=silent_database), None)  # type: ignore[arg-type]
    server.health_timeout = 0.3
    response = await asyncio.wait_for(server._healthz(None), 3)  # type: ignore[arg-type]
    assert response.status == 503
    assert json.loads(response.body)["database"] == "unavailable"
