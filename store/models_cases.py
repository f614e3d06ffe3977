"""The tables of zero-tolerance cases and of progress reports (#13); ``store.models`` imports
them, so they are registered with the others and importable from there."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Field

from store.columns import TableModel
from store.columns import json_list as _json_list
from store.columns import when as _when


class ZtpCase(TableModel, table=True):
    """A zero-tolerance case (child labour, forced labour, violence, an imminent threat to
    workers' safety): escalated to the authorities at once, followed until staff close it.
    Never counted towards PNC. Opened by an assessment with a zero-tolerance code (``key`` is
    then derived from it, so re-evaluating opens none twice) or by hand."""

    __tablename__ = "ztp_case"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    factory_id: str = Field(foreign_key="factory.id", max_length=64, index=True)
    code: str = Field(max_length=32)
    #: the assessment that found it (None: opened by hand)
    assessment_id: int | None = Field(default=None, foreign_key="assessment.id")
    opened_at: datetime = Field(sa_column=_when())
    opened_by: str = Field(max_length=64)
    note: str | None = Field(default=None, max_length=2000)
    #: a ``bot.vocabulary.ZtpStatus``
    status: str = Field(default="open", max_length=16, index=True)
    updated_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    updated_by: str | None = Field(default=None, max_length=64)
    closed_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class ZtpUpdate(TableModel, table=True):
    """Progress recorded on a zero-tolerance case (``/pnc ztp update``)."""

    __tablename__ = "ztp_update"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="ztp_case.id", index=True)
    status: str = Field(max_length=16)
    note: str | None = Field(default=None, max_length=2000)
    by: str = Field(max_length=64)
    at: datetime = Field(sa_column=_when())


class ProgressReport(TableModel, table=True):
    """Progress Report One: what a factory reports it fixed of the publicly reported
    non-compliances of an assessment (``/pnc progress``)."""

    __tablename__ = "progress_report"

    id: int | None = Field(default=None, primary_key=True)
    factory_id: str = Field(foreign_key="factory.id", max_length=64, index=True)
    assessment_id: int = Field(foreign_key="assessment.id")
    reported_on: date
    #: the issue codes reported fixed
    fixed: list[str] = Field(sa_column=_json_list())
    recorded_by: str = Field(max_length=64)
    recorded_at: datetime = Field(sa_column=_when())
