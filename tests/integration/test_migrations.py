"""The migrations build exactly the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from store import migrate
from store.db import Database


async def test_migrated_schema_matches_the_models(db: Database) -> None:
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), SQLModel.metadata
            )
        )
    assert diff == []


async def test_upgrade_is_idempotent_and_at_head(db: Database) -> None:
    assert await migrate.upgrade(db) == migrate.head_revision()
    assert await migrate.current_revision(db) == migrate.head_revision()


def test_head_is_the_newest_migration() -> None:
    """``migrate.HEAD``, which every start checks in one query, is Alembic's head."""
    assert migrate.head_revision() == migrate.HEAD


async def test_at_head_is_one_answer_for_a_migrated_a_new_and_a_behind_database(
    db: Database, tmp_path: Path
) -> None:
    assert await migrate.at_head(db)
    fresh = Database(f"sqlite+aiosqlite:///{tmp_path}/new.db")
    try:
        assert not await migrate.at_head(fresh)
        assert await migrate.upgrade(fresh, "0008") == "0008"
        assert not await migrate.at_head(fresh)
        assert await migrate.upgrade(fresh) == migrate.HEAD and await migrate.at_head(fresh)
    finally:
        await fresh.dispose()
