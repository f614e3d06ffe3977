"""The migrations build exactly the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.schema import CreateIndex
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


async def test_the_partial_unique_index_is_partial_on_both_databases(db: Database) -> None:
    """One live assessment per factory and day: the index's condition is declared for the
    database in use (PostgreSQL's when a PostgreSQL database is opened, ``store.models``), and
    the migrated index has it."""
    table = SQLModel.metadata.tables["assessment"]
    (index,) = [i for i in table.indexes if i.name == "uq_assessment_factory_day"]
    ddl = str(CreateIndex(index).compile(dialect=db.engine.dialect))
    assert ddl.endswith("WHERE withdrawn_at IS NULL"), ddl
    if db.is_postgresql:
        found = "SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_assessment_factory_day'"
    else:
        found = "SELECT sql FROM sqlite_master WHERE name = 'uq_assessment_factory_day'"
    async with db.engine.connect() as conn:
        made = (await conn.execute(text(found))).scalar_one()
    assert "withdrawn_at IS NULL" in made, made


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
