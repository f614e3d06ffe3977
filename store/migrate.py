"""Alembic migrations, run from inside the bot (``pnc-bot db upgrade`` and on start).

Migrations ship inside the package (``store/migrations``), so they are found from a
non-editable install. On PostgreSQL an advisory lock makes replicas that start together
migrate one at a time.
"""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from store.db import Database

#: pg_advisory_xact_lock key: "pnc-bot migrations"
_MIGRATION_LOCK = 0x706E635F6D6967


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "store:migrations")
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(db: Database) -> str | None:
    async with db.engine.connect() as conn:
        return await conn.run_sync(
            lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
        )


async def upgrade(db: Database, revision: str = "head") -> str | None:
    """Bring the schema to ``revision``; returns the revision now in force."""
    if revision == "head" and await current_revision(db) == head_revision():
        return head_revision()
    async with db.engine.connect() as conn:
        await conn.execution_options(pnc_write=True)
        async with conn.begin():
            if db.is_postgresql:
                await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            await conn.run_sync(_run_upgrade, revision)
    return await current_revision(db)


def _run_upgrade(sync_conn: Any, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, revision)
