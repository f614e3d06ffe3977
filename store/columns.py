"""The column types and constructors every table uses, and the metadata's naming convention
(set before any table is declared)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.mutable import MutableDict, MutableList
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel
from sqlmodel._compat import SQLModelConfig

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class TableModel(SQLModel):
    """The base of every table's model. Pydantic builds a model's validators when it is first
    used, not when its class is declared (``defer_build``): most commands use few of the
    tables, and the CLI starts faster (``bench/cli_startup.py``)."""

    model_config = SQLModelConfig(defer_build=True)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on SQLite and PostgreSQL alike (SQLite drops the offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store aware datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def json_list(server_default: str | None = None) -> Any:
    return sa.Column(
        MutableList.as_mutable(sa.JSON()),
        nullable=False,
        default=list,
        server_default=server_default,
    )


def json_dict() -> Any:
    return sa.Column(MutableDict.as_mutable(sa.JSON()), nullable=False, default=dict)


def when(nullable: bool = False, index: bool = False) -> Any:
    return sa.Column(UTCDateTime(), nullable=nullable, index=index)
