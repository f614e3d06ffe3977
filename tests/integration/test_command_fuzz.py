"""Fuzzing the whole ``/pnc`` path: random lines through the real Bolt app, as the console shell
runs them (middleware, roles, listeners, core, audit, then the notices they cause).

Whatever is typed, the bot never apologises for a fault of its own (no audit entry with outcome
``error``), every line leaves exactly one ``command`` audit entry, and a refused line writes
nothing.
"""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.bootstrap import Bot
from bot.roles import Actor, RoleLevel
from bot.settings import Settings
from bot.usecases import imports
from bot.usecases.core import Core
from handlers.shell import ConsoleSession
from store.db import Database
from store.models import (
    Assessment,
    AuditEntry,
    Buyer,
    BuyerCall,
    Factory,
    FollowUp,
    OutboxMessage,
    PncEvent,
    Readmission,
    Reminder,
    Role,
    Subscription,
)
from tests.conftest import EXAMPLES, MANAGER
from tests.unit.test_parse_fuzz import FACTORY_IDS, command_texts, garbage, well_formed

FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
    max_examples=60,
)

OPERATOR = Actor("U0FUZZ", RoleLevel.MANAGER, "test")
TABLES = (
    Factory,
    Buyer,
    Subscription,
    Assessment,
    Readmission,
    BuyerCall,
    FollowUp,
    Reminder,
    Role,
    PncEvent,
    OutboxMessage,
)

#: what follows ``/pnc``: real subcommands on the sample data, written as their usage says or
#: mangled, and plain garbage (NUL included). Surrogates cannot arrive (Slack and the console
#: both send UTF-8).
TEXTS = st.one_of(
    *[well_formed(FACTORY_IDS).map(lambda command: command[1])] * 5,
    *[command_texts(FACTORY_IDS, max_args=6)] * 2,
    garbage(),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=30),
)
LINES = st.lists(TEXTS.map(lambda text: f"/pnc {text}"), min_size=1, max_size=4)


async def row_counts(db: Database) -> dict[str, Any]:
    """Rows in each table a command may write, and each factory's verdict."""
    found: dict[str, Any] = {}
    async with db.transaction() as s:
        for model in TABLES:
            query = select(func.count()).select_from(model)
            found[model.__tablename__] = (await s.exec(query)).scalar_one()
        states = await s.exec(select(Factory.id, Factory.state, Factory.streak))
        found["states"] = sorted(map(tuple, states.all()))
    return found


async def commands_audited(db: Database) -> tuple[int, AuditEntry | None]:
    """How many ``command`` entries the audit log has, and the newest."""
    async with db.transaction() as s:
        count = (
            await s.exec(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "command")
            )
        ).scalar_one()
        newest = (
            await s.exec(
                select(AuditEntry)
                .where(AuditEntry.action == "command")
                .order_by(AuditEntry.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
    return count, newest


@pytest.fixture
async def console(
    db: Database, core: Core, settings: Settings, tmp_path: Path
) -> AsyncIterator[tuple[ConsoleSession, list[str]]]:
    """The sample data loaded, and one console session on it acting as a manager."""
    for kind in ("factories", "buyers", "subscriptions", "assessments"):
        await imports.run(core, kind, EXAMPLES / f"{kind}.csv", MANAGER)
    # emails are delivered as files: keep them out of the working directory
    local = settings.model_copy(update={"outbox_dir": tmp_path / "outbox"})
    bot = Bot(local, core.config, db, core)
    shown: list[str] = []
    async with ConsoleSession(bot, write=shown.append, operator=OPERATOR) as session:
        yield session, shown


async def run_line(
    session: ConsoleSession, shown: list[str], db: Database, line: str
) -> AuditEntry:
    """Run one line and check what it left: one audit entry, no fault, no write if refused."""
    before = await row_counts(db)
    audited, _ = await commands_audited(db)
    shown.clear()
    await session.command(line)
    after = await row_counts(db)
    count, entry = await commands_audited(db)
    assert count == audited + 1, f"{line!r} left {count - audited} command audit entries"
    assert entry is not None
    assert entry.outcome != "error", f"{line!r} failed: {entry.detail} — the person saw {shown}"
    assert entry.outcome in ("ok", "refused"), entry.outcome
    assert shown, f"{line!r} got no answer"
    if entry.outcome == "refused":
        changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
        assert not changed, f"refused {line!r} ({entry.detail}) changed {changed}"
    return entry


@FUZZ
@given(lines=LINES)
async def test_no_line_fails_and_a_refused_line_writes_nothing(
    console: tuple[ConsoleSession, list[str]], db: Database, lines: list[str]
) -> None:
    session, shown = console
    for line in lines:
        entry = await run_line(session, shown, db, line)
        detail = entry.detail
        event(f"ok: {detail.get('action')}" if entry.outcome == "ok" else detail.get("error", ""))


# --- bugs found ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "/pnc \x00",
        "/pnc status VN-1001\x00",
        '/pnc factory add VN-7777 "A\x00B" VN a@b.example',
        "/pnc readmission apply VN-1001 https://x.example/\x00",
    ],
)
async def test_a_line_with_a_nul_character_is_audited(
    console: tuple[ConsoleSession, list[str]],
    db: Database,
    line: str,
) -> None:
    session, shown = console
    await run_line(session, shown, db, line)


def _unprintable(shown: list[str]) -> list[str]:
    """Control characters other than line breaks in what the person saw."""
    return [c for c in "".join(shown) if unicodedata.category(c) == "Cc" and c != "\n"]


@pytest.mark.parametrize(
    "line",
    [
        '/pnc issues "X\x1b[2JY"',
        '/pnc at-risk "X\nY"',
        '/pnc factory add VN-7001 A "\x1b" a@b.example',
    ],
)
async def test_an_unknown_country_is_quoted_without_control_characters(
    console: tuple[ConsoleSession, list[str]], db: Database, line: str
) -> None:
    session, shown = console
    entry = await run_line(session, shown, db, line)
    assert entry.outcome == "refused"
    assert entry.detail.get("error") == "unknown_country"
    assert not _unprintable(shown), shown
    assert len("".join(shown).splitlines()) == 1, shown


@pytest.mark.parametrize(
    "line", ["/pnc status VN\x9b1", "/pnc x\x85y", "/pnc calls add 2027-01-0\x85 09:30"]
)
async def test_a_refusal_shows_no_c1_control_characters(
    console: tuple[ConsoleSession, list[str]], db: Database, line: str
) -> None:
    session, shown = console
    entry = await run_line(session, shown, db, line)
    assert entry.outcome == "refused"
    assert not _unprintable(shown), shown
