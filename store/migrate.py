"""Alembic migrations, run from inside the bot (``pnc-bot db upgrade`` and on start).

Migrations ship inside the package (``store/migrations``), so they are found from a
non-editable install. On PostgreSQL an advisory lock makes replicas that start together
migrate one at a time.

Every start of the CLI asks whether the schema is at head: that is **one query** against
``HEAD`` (kept equal to the newest migration by a unit test); Alembic itself is imported only
when there is migrating to do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from store.db import Database

if TYPE_CHECKING:
    from alembic.config import Config

#: the newest migration (``store/migrations/versions``); ``test_head_is_the_newest_migration``
HEAD = "0010"

#: pg_advisory_xact_lock key: "pnc-bot migrations"
_MIGRATION_LOCK = 0x706E635F6D6967


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "store:migrations")
    return cfg


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    async with db.engine.connect() as conn:
        return await conn.run_sync(
            lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
        )


async def at_head(db: Database) -> bool:
    """Whether the schema is at ``HEAD``, in one query (False too when there is no schema)."""
    try:
        async with db.connection() as conn:
            found = await conn.execute(text("SELECT version_num FROM alembic_version"))
            return [r[0] for r in found] == [HEAD]
    except DBAPIError:
        return False  # no alembic_version table yet: a new database


async def upgrade(db: Database, revision: str = "head") -> str | None:
    """Bring the schema to ``revision``; returns the revision now in force."""
    if revision in ("head", HEAD) and await at_head(db):
        return HEAD
    async with db.engine.connect() as conn:
        await conn.execution_options(pnc_write=True)
        async with conn.begin():
            if db.is_postgresql:
                await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            await conn.run_sync(_run_upgrade, revision)
    return await current_revision(db)


def _run_upgrade(sync_conn: Any, revision: str) -> None:
    from alembic import command

    cfg = alembic_config()
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, revision)
