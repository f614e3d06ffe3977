"""The hot reads (``store.hot``, ``store.snapshot``) on SQLite and PostgreSQL: a factory with
something in every table ``status`` reads gives, row for row, what the ORM and Core reads of
the same tables give; the role at the door follows grants and revokes at once; the audit
entries of reads are written in batches, and none is lost on a flush."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from bot.countries import load_config
from bot.errors import UnknownFactory
from bot.roles import RoleLevel
from bot.settings import Settings
from bot.usecases import (
    access,
    assessments,
    inspectorate,
    progress,
    read_audits,
    reading,
    readmission,
    registry,
    ztp,
)
from bot.usecases.core import Core
from bot.vocabulary import AuditOutcome
from store import access as store_access
from store import history, migrate, referrals, snapshot, visits
from store import progress as progress_rows
from store import registry as registry_rows
from store import ztp as ztp_rows
from store.db import Database
from store.models import AuditEntry
from tests.conftest import ASSESSOR, MANAGER, FrozenClock
from tests.integration.helpers import FAIL4
from tests.integration.test_ztp_cases import escalating as escalating

DAYS = ("2024-01-10", "2025-01-10", "2026-01-10")


async def rich(core: Core) -> None:
    """VN-1 designated (events, a referral), visited, applying for readmission with a report,
    with an open zero-tolerance case and a progress report."""
    for day in DAYS:
        await assessments.record(core, ASSESSOR, "VN-1", day, FAIL4)
    await inspectorate.record_visit(core, ASSESSOR, "VN-1", "2026-03-02")
    await readmission.apply(core, ASSESSOR, "VN-1", ["https://drive.example/evidence"])
    await readmission.add_report(core, ASSESSOR, "VN-1", "https://drive.example/report.pdf")
    await ztp.open_by_hand(core, ASSESSOR, "VN-1", "OS-01", "exits locked")
    await progress.record(core, ASSESSOR, "VN-1", "2026-02-10", "CO-01")


def same(hot: list[Any], reference: list[Any]) -> None:
    """Each hot row holds, under each of its names, what the reference row holds."""
    assert len(hot) == len(reference) and hot
    for mine, theirs in zip(hot, reference, strict=True):
        for name in mine._fields:
            assert getattr(mine, name) == getattr(theirs, name), name


async def test_every_table_the_status_reads_gives_what_the_orm_gives(
    escalating: Core,
    registered: None,
) -> None:
    core = escalating
    await rich(core)
    rows = await snapshot.factory_rows(core.db.hot, "VN-1")
    assert rows is not None
    async with core.db.transaction() as s:
        factory = await registry_rows.get_factory(s, "VN-1")
        same([rows.factory], [factory])
        same(rows.assessments, await history.live_assessments(s, "VN-1"))
        same(rows.readmissions, await history.readmissions(s, "VN-1"))
        same(rows.events, await history.events(s, "VN-1"))
        same(rows.subscribers, await registry_rows.subscribers(s, "VN-1"))
        same(rows.referrals, await referrals.referral_log(s, "VN-1"))
        same(rows.visits, await visits.visits(s, "VN-1"))
        same(rows.open_cases, await ztp_rows.open_cases(s, "VN-1"))
        reports = (await progress_rows.reports(s, ["VN-1"]))["VN-1"]
    assert [progress_rows.as_report(r) for r in rows.reports] == reports
    # the types the views need: aware datetimes, dates, lists
    (event, *_) = rows.events
    assert event.created_at.tzinfo is not None
    assert isinstance(rows.assessments[0].nc_issues, list)
    assert rows.open_cases[0].opened_at.tzinfo is not None
    view = await reading.status(core, "VN-1")
    assert view.designated and view.referrals and view.visits and view.ztp_cases
    assert view.applications and view.remediation is not None


async def test_an_unknown_factory_names_the_close_ids(core: Core, registered: None) -> None:
    assert await snapshot.factory_rows(core.db.hot, "VN-2") is None
    with pytest.raises(UnknownFactory) as unknown:
        await reading.status(core, "VN-2")
    assert "VN-1" in str(unknown.value.hint)


async def test_the_role_at_the_door_follows_grants_and_revokes_at_once(core: Core) -> None:
    assert (await access.actor(core, "U0NEW", "slack")).role is None
    await access.grant(core, MANAGER, "U0NEW", "assessor")
    assert (await access.actor(core, "U0NEW", "slack")).role == RoleLevel.ASSESSOR
    await access.revoke(core, MANAGER, "U0NEW")
    assert (await access.actor(core, "U0NEW", "slack")).role is None


async def test_a_second_process_sees_a_revoke_on_its_next_read(
    core: Core, db: Database, settings: Settings, clock: FrozenClock
) -> None:
    """Another replica (its own ``Database`` and hot reads) reads no stale role."""
    other = Core(Database(db.url), core.config, settings, clock)
    try:
        await access.grant(core, MANAGER, "U0TWO", "viewer")
        assert (await access.actor(other, "U0TWO", "slack")).role == RoleLevel.VIEWER
        await access.revoke(core, MANAGER, "U0TWO")
        assert (await access.actor(other, "U0TWO", "slack")).role is None
    finally:
        await other.db.dispose()


async def commands(core: Core) -> list[str]:
    async with core.db.transaction() as s:
        stmt = select(AuditEntry.subject).where(AuditEntry.action == "command")
        return [str(r) for r in (await s.exec(stmt)).scalars().all()]  # type: ignore[call-overload]


async def test_reads_are_audited_in_batches_and_writes_at_once(core: Core) -> None:
    await access.log_command(core, "U0A", "slack", "status VN-1", AuditOutcome.OK, {}, read=True)
    await access.log_command(core, "U0A", "slack", "history VN-1", AuditOutcome.OK, {}, read=True)
    await access.log_command(core, "U0A", "slack", "assess VN-1", AuditOutcome.OK, {})
    assert await commands(core) == ["assess VN-1"]
    await read_audits.flush_all()
    assert sorted(await commands(core)) == ["assess VN-1", "history VN-1", "status VN-1"]


async def test_a_full_batch_is_written_without_waiting(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(read_audits, "MOST", 3)
    monkeypatch.setattr(read_audits, "WINDOW", 3600.0)
    for n in range(3):
        text = f"status F-{n}"
        await access.log_command(core, "U0A", "slack", text, AuditOutcome.OK, {}, read=True)
    writing = core.read_audits._writing
    assert writing is not None
    await writing
    assert len(await commands(core)) == 3 and core.read_audits.pending == []


async def test_a_refused_batch_is_kept_and_written_later(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(*_: Any) -> None:
        raise OSError("the database is away")

    monkeypatch.setattr(read_audits.access, "add_audit_entries", refuse)
    await access.log_command(core, "U0A", "slack", "status VN-1", AuditOutcome.OK, {}, read=True)
    await core.read_audits.flush()
    assert len(core.read_audits.pending) == 1 and await commands(core) == []
    monkeypatch.undo()
    await core.read_audits.flush()
    assert await commands(core) == ["status VN-1"] and core.read_audits.pending == []


async def test_hot_reads_on_an_in_memory_database_go_through_the_engine(
    settings: Settings, clock: FrozenClock
) -> None:
    """A ``:memory:`` database is seen only by the engine's connection: the hot reads go
    through it, and give the same rows."""
    db = Database("sqlite+aiosqlite:///:memory:")
    try:
        assert not db.hot.direct
        await migrate.upgrade(db)
        memory = Core(db, load_config(settings), settings, clock)
        await registry.add_factory(memory, MANAGER, "VN-9", "Mem Ltd", "VN", "hr@mem.example")
        await assessments.record(memory, ASSESSOR, "VN-9", "2026-01-10", FAIL4)
        rows = await snapshot.factory_rows(db.hot, "VN-9")
        assert rows is not None and rows.factory.name == "Mem Ltd"
        (assessment,) = rows.assessments
        assert assessment.nc_issues == FAIL4.split(",")
        assert assessment.submitted_at.tzinfo is not None
        assert (await reading.status(memory, "VN-9")).state == "at_risk"
        assert await snapshot.granted_role(db.hot, "U0NOBODY") is None
    finally:
        await db.dispose()


async def test_a_signature_is_served_once_on_every_backend(core: Core, clock: FrozenClock) -> None:
    """The replay check's insert (one statement on PostgreSQL's hot path): the first time
    True, then False; forgetting old ones on the way keeps the new one."""
    db = core.db
    assert await store_access.first_time(db, "v0=abc", clock(), forget_before=None)
    assert not await store_access.first_time(db, "v0=abc", clock(), forget_before=None)
    assert await store_access.first_time(db, "v0=def", clock(), forget_before=clock())
    assert not await store_access.first_time(db, "v0=def", clock(), forget_before=None)


async def test_the_hot_pool_connects_as_the_engine_does(db: Database) -> None:
    """The hot path's own pool takes the engine's connection options from the URL (an
    option of SQLAlchemy's adapter, such as PgBouncer's statement cache off, included)."""
    if not db.is_postgresql:
        pytest.skip("the pool is PostgreSQL's")
    other = Database(db.url.update_query_dict({"prepared_statement_cache_size": "0"}))
    try:
        assert await snapshot.granted_role(other.hot, "U0NOBODY") is None
        assert other.hot._pool is not None
    finally:
        await other.dispose()


async def test_a_url_with_libpq_sslmode_connects_the_engine_and_the_hot_pool(
    db: Database,
) -> None:
    """``?sslmode=…`` as managed databases write it, read as asyncpg's ``ssl`` by the
    settings: both the engine and the hot pool connect with it (this server offers no SSL:
    ``disable``, and ``prefer`` falls back to a plain connection)."""
    if not db.is_postgresql:
        pytest.skip("asyncpg's options")
    for mode in ("disable", "prefer"):
        url = db.url.update_query_dict({"sslmode": mode}).render_as_string(hide_password=False)
        other = Database(Settings(database_url=url).database_url.get_secret_value())
        try:
            await other.ping()
            assert await snapshot.granted_role(other.hot, "U0NOBODY") is None
        finally:
            await other.dispose()


async def test_entries_added_while_a_batch_is_written_wait_no_longer_than_the_window(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(read_audits, "WINDOW", 0.05)
    monkeypatch.setattr(read_audits, "MOST", 2)
    real, entered, gate = store_access.add_audit_entries, asyncio.Event(), asyncio.Event()

    async def slow(conn: Any, rows: Any) -> None:
        entered.set()
        await gate.wait()
        await real(conn, rows)

    monkeypatch.setattr(read_audits.access, "add_audit_entries", slow)
    audits = core.read_audits

    async def read(text: str) -> None:
        await access.log_command(core, "U0A", "slack", text, AuditOutcome.OK, {}, read=True)

    await read("status A-0")
    await read("status A-1")  # a full batch: its write starts
    await asyncio.wait_for(entered.wait(), 5)
    await read("status B")  # while that batch is being written, for longer than the window
    await asyncio.sleep(0.2)
    gate.set()
    for _ in range(250):  # then written by the timer, with no other read coming
        if not audits.pending and len(await commands(core)) == 3:
            break
        await asyncio.sleep(0.02)
    assert sorted(await commands(core)) == ["status A-0", "status A-1", "status B"]
