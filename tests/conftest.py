"""Shared fixtures. Integration tests run on both SQLite and PostgreSQL: a PostgreSQL database is
created for the run on 127.0.0.1:5432 (``PNC_TEST_POSTGRES_URL``) and dropped after. A run that
was meant to cover PostgreSQL and did not pass a single PostgreSQL test fails."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from bot.countries import load_config
from bot.roles import Actor, RoleLevel
from bot.settings import Settings
from bot.usecases.core import Core
from store import migrate
from store.db import Database

BACKENDS = [b.strip() for b in os.environ.get("PNC_TEST_BACKENDS", "sqlite,postgresql").split(",")]
POSTGRES_ADMIN_URL = os.environ.get(
    "PNC_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
EXAMPLES = Path(__file__).resolve().parent.parent / "bot" / "data" / "examples"
#: "now" in tests: 2026-11-20 10:00 in Ho Chi Minh City
NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)

MANAGER = Actor("U0MANAGER", RoleLevel.MANAGER, "test")
ASSESSOR = Actor("U0ASSESSOR", RoleLevel.ASSESSOR, "test")
VIEWER = Actor("U0VIEWER", RoleLevel.VIEWER, "test")


class FrozenClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session", params=BACKENDS)
async def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    """One migrated database per backend for the whole run."""
    backend = request.param
    if backend == "sqlite":
        db = Database(f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite')}/pnc.db")
        await migrate.upgrade(db)
        yield db
        await db.dispose()
        return
    if backend != "postgresql":
        raise pytest.UsageError(f"unknown backend {backend!r} in PNC_TEST_BACKENDS")
    admin_dsn = _asyncpg_dsn(POSTGRES_ADMIN_URL)
    name = f"pnc_test_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        admin = await asyncpg.connect(admin_dsn, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL} ({exc}). Start it (see "
            ".ci/run) or, on a machine without it, run PNC_TEST_BACKENDS=sqlite pytest.",
            pytrace=False,
        )
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = make_url(POSTGRES_ADMIN_URL).set(database=name)
    db = Database(url)
    try:
        await migrate.upgrade(db)
        yield db
    finally:
        await db.dispose()
        admin = await asyncpg.connect(admin_dsn, timeout=10)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def wipe(db: Database) -> None:
    """Empty every table (the schema stays)."""
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]
    async with db.engine.begin() as conn:
        if db.is_postgresql:
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                await conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture
async def db(database: Database) -> AsyncIterator[Database]:
    """The run's database, emptied after each test."""
    yield database
    await wipe(database)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def settings(database: Database) -> Settings:
    return Settings(
        database_url=database.url.render_as_string(hide_password=False),
        inspectorate_email="inspection@molisa.example",
        admins="U0ADMIN",
        staff_channel="C0STAFF",
    )


@pytest.fixture
def core(db: Database, settings: Settings, clock: FrozenClock) -> Core:
    return Core(db, load_config(settings), settings, clock)


@pytest.fixture
def deliver(core: Core, clock: FrozenClock, tmp_path: Path) -> Any:
    """Deliver the emails due now (to files), as a running bot would have."""
    from bot.dispatcher import Dispatcher
    from bot.transports import FileTransport

    async def run() -> int:
        dispatcher = Dispatcher.for_core(core, [FileTransport(tmp_path / "delivered")])
        total = 0
        while claimed := await dispatcher.run_once():
            total += claimed
        return total

    return run


# --- a run meant to cover PostgreSQL must have passed PostgreSQL tests ----------------------
# Known by the ``database`` fixture's parameter (also when a test asks for it through ``db`` or
# ``core``), never by test ids: a unit test whose id says "postgresql" proves nothing.

_on_postgresql: set[str] = set()
_passed_on_postgresql = 0


def _runs_on_postgresql(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("database") == "postgresql"


def pytest_itemcollected(item: pytest.Item) -> None:
    if _runs_on_postgresql(item):
        _on_postgresql.add(item.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    global _passed_on_postgresql
    if report.when == "call" and report.passed and report.nodeid in _on_postgresql:
        _passed_on_postgresql += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    wanted = "postgresql" in BACKENDS
    collected = any(_runs_on_postgresql(item) for item in session.items)
    if wanted and collected and _passed_on_postgresql == 0 and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\nERROR: no PostgreSQL test passed; the suite must cover PostgreSQL.")
