"""zero-tolerance cases and their updates; Progress Report One (the assessment report's date,
the factory's reports of what it fixed)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("assessment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("report_on", sa.Date(), nullable=True))
    op.create_table(
        "ztp_case",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("factory_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("assessment_id", sa.Integer(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["assessment_id"], ["assessment.id"], name=op.f("fk_ztp_case_assessment_id_assessment")
        ),
        sa.ForeignKeyConstraint(
            ["factory_id"], ["factory.id"], name=op.f("fk_ztp_case_factory_id_factory")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ztp_case")),
        sa.UniqueConstraint("key", name=op.f("uq_ztp_case_key")),
    )
    with op.batch_alter_table("ztp_case", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ztp_case_factory_id"), ["factory_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ztp_case_status"), ["status"], unique=False)
    op.create_table(
        "ztp_update",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["ztp_case.id"], name=op.f("fk_ztp_update_case_id_ztp_case")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ztp_update")),
    )
    with op.batch_alter_table("ztp_update", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ztp_update_case_id"), ["case_id"], unique=False)
    op.create_table(
        "progress_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("factory_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("assessment_id", sa.Integer(), nullable=False),
        sa.Column("reported_on", sa.Date(), nullable=False),
        sa.Column("fixed", sa.JSON(), nullable=False),
        sa.Column("recorded_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            ["assessment.id"],
            name=op.f("fk_progress_report_assessment_id_assessment"),
        ),
        sa.ForeignKeyConstraint(
            ["factory_id"], ["factory.id"], name=op.f("fk_progress_report_factory_id_factory")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_progress_report")),
    )
    with op.batch_alter_table("progress_report", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_progress_report_factory_id"), ["factory_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("progress_report", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_progress_report_factory_id"))
    op.drop_table("progress_report")
    with op.batch_alter_table("ztp_update", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ztp_update_case_id"))
    op.drop_table("ztp_update")
    with op.batch_alter_table("ztp_case", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ztp_case_status"))
        batch_op.drop_index(batch_op.f("ix_ztp_case_factory_id"))
    op.drop_table("ztp_case")
    with op.batch_alter_table("assessment", schema=None) as batch_op:
        batch_op.drop_column("report_on")
