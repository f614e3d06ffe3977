"""held events reviewed (why held, what people were told, the review); quarterly call series;
the Labour Inspectorate's visits and the improvement reports that answer them

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pnc_event", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("held_because", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
        batch_op.add_column(sa.Column("held_told", sa.JSON(), server_default="[]", nullable=False))
        batch_op.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("reviewed_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(
            sa.Column("review_note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True)
        )
    op.create_table(
        "call_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("first_held_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("months", sa.Integer(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_series")),
    )
    with op.batch_alter_table("buyer_call", schema=None) as batch_op:
        batch_op.add_column(sa.Column("series_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_buyer_call_series_id"), ["series_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_buyer_call_series_id_call_series"), "call_series", ["series_id"], ["id"]
        )
    op.create_table(
        "inspectorate_visit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("factory_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("visited_on", sa.Date(), nullable=False),
        sa.Column("recorded_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report", sqlmodel.sql.sqltypes.AutoString(length=2100), nullable=True),
        sa.Column("report_added_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("report_added_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["factory_id"], ["factory.id"], name=op.f("fk_inspectorate_visit_factory_id_factory")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspectorate_visit")),
    )
    with op.batch_alter_table("inspectorate_visit", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inspectorate_visit_factory_id"), ["factory_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("inspectorate_visit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inspectorate_visit_factory_id"))
    op.drop_table("inspectorate_visit")
    with op.batch_alter_table("buyer_call", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_buyer_call_series_id_call_series"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_buyer_call_series_id"))
        batch_op.drop_column("series_id")
    op.drop_table("call_series")
    with op.batch_alter_table("pnc_event", schema=None) as batch_op:
        batch_op.drop_column("review_note")
        batch_op.drop_column("reviewed_by")
        batch_op.drop_column("reviewed_at")
        batch_op.drop_column("held_told")
        batch_op.drop_column("held_because")
