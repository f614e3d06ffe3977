"""Alembic environment. The bot passes its own connection (see ``store.migrate``); run from the
``alembic`` command line instead, it connects to ``PNC_DATABASE_URL``."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import store.models  # registers the tables

target_metadata = SQLModel.metadata


def _configure_and_run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        store.models.for_postgresql()
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine() -> None:
    from bot.settings import load_settings
    from store.db import Database

    db = Database(load_settings().database_url.get_secret_value())
    try:
        async with db.engine.connect() as conn:
            await conn.run_sync(_configure_and_run)
            await conn.commit()
    finally:
        await db.dispose()


if context.is_offline_mode():
    from bot.settings import load_settings

    if load_settings().database_url.get_secret_value().startswith("postgresql"):
        store.models.for_postgresql()
    context.configure(
        url=load_settings().database_url.get_secret_value(),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = context.config.attributes.get("connection")
    if connection is None:
        asyncio.run(_run_with_own_engine())
    else:
        _configure_and_run(connection)
