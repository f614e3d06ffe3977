"""Use cases against a real database (each test runs on SQLite and on PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from bot.countries import load_config
from bot.errors import (
    AlreadyExists,
    DuplicateAssessment,
    InvalidDate,
    InvalidInput,
    NotFound,
    PermissionDenied,
    UnknownBuyer,
    UnknownCountry,
    UnknownFactory,
    UnknownIssueCodes,
)
from bot.settings import Settings
from bot.usecases import (
    access,
    assessments,
    calls,
    imports,
    outbox_admin,
    reading,
    readmission,
    registry,
)
from bot.usecases.core import Core
from store import reminders
from store.db import Database
from store.models import Assessment, AuditEntry, Factory, PncEvent, Subscription
from tests.conftest import ASSESSOR, MANAGER, VIEWER, FrozenClock

FAIL = "CO-01,CO-02,OS-01,WT-01"  # 4 issues: fails
FAIL5 = "CO-01,CO-02,OS-01,WT-01,WT-02"
PASS = "OS-02,WT-01,CO-03"  # 3 issues: passes


async def count(core: Core, model: type) -> int:
    async with core.db.transaction() as s:
        return (await s.exec(select(func.count()).select_from(model))).scalar_one()


async def events(core: Core, factory_id: str) -> list[PncEvent]:
    async with core.db.transaction() as s:
        rows = await s.exec(
            select(PncEvent).where(PncEvent.factory_id == factory_id).order_by(PncEvent.id)
        )
        return list(rows.scalars())


@pytest.fixture
async def factory(core: Core) -> str:
    await registry.add_factory(
        core, MANAGER, "VN-1001", "Saigon Stitch", "VN", "hr@stitch.example", cycle_end="2027-06-30"
    )
    return "VN-1001"


async def test_registers_factories_buyers_and_subscriptions(core: Core) -> None:
    f = await registry.add_factory(
        core, ASSESSOR, "vn-7", "  Hue   Garments ", "vn", "A@Hue.Example"
    )
    assert (f.id, f.name, f.country, f.emails) == ("VN-7", "Hue Garments", "VN", ["A@hue.example"])
    await registry.add_buyer(core, ASSESSOR, "b-1", "Acme", "x@acme.example; y@acme.example")
    assert await registry.subscribe(core, ASSESSOR, "B-1", "VN-7") is True
    assert (
        await registry.subscribe(core, ASSESSOR, "B-1", "VN-7") is False
    )  # already: no second row
    view = await reading.status(core, "VN-7")
    assert [b.id for b in view.subscribers] == ["B-1"]
    await registry.unsubscribe(core, ASSESSOR, "B-1", "VN-7")
    assert await count(core, Subscription) == 0
    with pytest.raises(NotFound):
        await registry.unsubscribe(core, ASSESSOR, "B-1", "VN-7")


async def test_registry_refusals_write_nothing(core: Core, factory: str) -> None:
    with pytest.raises(AlreadyExists):
        await registry.add_factory(core, ASSESSOR, "VN-1001", "Again", "VN", "a@b.example")
    with pytest.raises(UnknownCountry) as exc:
        await registry.add_factory(core, ASSESSOR, "VN-2", "X", "VM", "a@b.example")
    assert "VN" in exc.value.suggestions
    with pytest.raises(InvalidInput):
        await registry.add_factory(core, ASSESSOR, "VN-2", "X", "VN", "not-an-address")
    with pytest.raises(InvalidInput):
        await registry.add_factory(core, ASSESSOR, "VN 2!", "X", "VN", "a@b.example")
    with pytest.raises(PermissionDenied):
        await registry.add_factory(core, VIEWER, "VN-2", "X", "VN", "a@b.example")
    with pytest.raises(UnknownBuyer):
        await registry.subscribe(core, ASSESSOR, "B-NONE", "VN-1001")
    await registry.add_buyer(core, ASSESSOR, "B-1", "Acme", "x@acme.example")
    with pytest.raises(UnknownFactory):
        await registry.subscribe(core, ASSESSOR, "B-1", "VN-9999")
    assert await count(core, Factory) == 1
    assert await count(core, Subscription) == 0


async def test_three_failing_assessments_designate_with_events_and_audit(
    core: Core, factory: str
) -> None:
    first = await assessments.record(core, ASSESSOR, factory, "2024-03-01", FAIL)
    assert (first.nc_count, first.label) == (4, "At risk (1 of 3)")
    second = await assessments.record(core, ASSESSOR, factory, "2025-03-01", FAIL5)
    assert second.label == "At risk (2 of 3)"
    third = await assessments.record(core, ASSESSOR, factory, date(2026, 3, 1), FAIL)
    assert (third.state, third.label) == ("pnc", "Persistently non-compliant")
    assert [e.kind.value for e in third.new_events] == ["pnc_designated"]

    recorded = await events(core, factory)
    assert [(e.kind, e.payload.get("k")) for e in recorded] == [
        ("at_risk_warning", 1),
        ("at_risk_warning", 2),
        ("pnc_designated", None),
    ]
    assert all(e.notice == "due" for e in recorded)
    basis = recorded[-1].payload["basis"]
    assert [b["assessed_on"] for b in basis] == ["2024-03-01", "2025-03-01", "2026-03-01"]

    view = await reading.status(core, factory)
    assert (view.state, view.streak, view.designated) == ("pnc", 3, True)
    assert [a.assessed_on.isoformat() for a in view.basis] == [
        "2024-03-01",
        "2025-03-01",
        "2026-03-01",
    ]
    async with core.db.transaction() as s:
        snapshot = await s.get(Factory, factory)
        audit = (await s.exec(select(AuditEntry.action, AuditEntry.actor))).all()
    assert (snapshot.state, snapshot.streak) == ("pnc", 3)
    assert audit.count(("assessment.record", ASSESSOR.user_id)) == 3


async def test_a_passing_assessment_stops_the_process(core: Core, factory: str) -> None:
    await assessments.record(core, ASSESSOR, factory, "2024-03-01", FAIL)
    outcome = await assessments.record(core, ASSESSOR, factory, "2025-03-01", PASS)
    assert (outcome.label, [e.kind.value for e in outcome.new_events]) == (
        "Not at risk",
        ["process_stopped"],
    )


@pytest.mark.parametrize(
    ("day", "codes", "error", "fragment"),
    [
        ("2026-11-21", FAIL, InvalidDate, "in the future"),
        ("1999-12-31", FAIL, InvalidDate, "before 2000"),
        ("2026-02-30", FAIL, InvalidDate, "YYYY-MM-DD"),
        ("01/03/2025", FAIL, InvalidDate, "YYYY-MM-DD"),
        ("2025-03-01", "CO-01,C0-02", UnknownIssueCodes, "CO-02"),
        ("2025-03-01", "XX-99", UnknownIssueCodes, "XX-99"),
    ],
)
async def test_bad_assessments_are_refused_with_what_would_be_right(
    core: Core, factory: str, day: str, codes: str, error: type, fragment: str
) -> None:
    with pytest.raises(error) as exc:
        await assessments.record(core, ASSESSOR, factory, day, codes)
    assert fragment in exc.value.render()
    assert await count(core, Assessment) == 0
    assert await count(core, PncEvent) == 0


async def test_today_is_the_configured_time_zone(core: Core, factory: str) -> None:
    # 2026-11-20 03:00 UTC is 10:00 on the 20th in Ho Chi Minh City
    await assessments.record(core, ASSESSOR, factory, "2026-11-20", "none")
    with pytest.raises(InvalidDate):
        await assessments.record(core, ASSESSOR, factory, "2026-11-21", "none")


async def test_unknown_factory_suggests_close_ids(core: Core, factory: str) -> None:
    with pytest.raises(UnknownFactory) as exc:
        await assessments.record(core, ASSESSOR, "VN-1010", "2025-01-01", FAIL)
    assert exc.value.suggestions == ("VN-1001",)
    assert "Did you mean `VN-1001`?" in exc.value.render()


async def test_one_assessment_per_factory_and_day(core: Core, factory: str) -> None:
    await assessments.record(core, ASSESSOR, factory, "2025-01-01", FAIL)
    with pytest.raises(DuplicateAssessment):
        await assessments.record(core, ASSESSOR, factory, "2025-01-01", PASS)
    assert await count(core, Assessment) == 1


async def test_assessors_may_not_amend(core: Core, factory: str) -> None:
    await assessments.record(core, ASSESSOR, factory, "2025-01-01", FAIL)
    with pytest.raises(PermissionDenied) as exc:
        await assessments.amend(core, ASSESSOR, factory, "2025-01-01", "typo", nc_issues=PASS)
    assert "manager" in exc.value.render()
    with pytest.raises(PermissionDenied):
        await assessments.record(core, VIEWER, factory, "2025-02-01", FAIL)


async def test_a_late_assessment_rewrites_the_history_and_holds_new_notices(
    core: Core, factory: str, deliver: Any
) -> None:
    await assessments.record(core, ASSESSOR, factory, "2024-01-10", FAIL)
    await assessments.record(core, ASSESSOR, factory, "2025-01-10", FAIL)
    assert await deliver() > 0  # 2 of 3: the factory was told
    late = await assessments.record(core, ASSESSOR, factory, "2024-06-10", PASS)
    # the streak was broken in between: 2025-01-10 is now 1 of 3, not 2 of 3
    assert late.label == "At risk (1 of 3)"
    assert len(late.contradicted) == 1 and late.contradicted[0].endswith("/k2")
    recorded = {e.key.split("/", 2)[2]: e for e in await events(core, factory)}
    stopped = [e for e in recorded.values() if e.kind == "process_stopped"]
    assert len(stopped) == 1 and stopped[0].notice == "held"
    old_warning = next(e for k, e in recorded.items() if k.endswith("k2"))
    assert old_warning.unsupported_at is not None
    async with core.db.transaction() as s:
        actions = (await s.exec(select(AuditEntry.action))).scalars().all()
    assert "history.changed" in actions


async def test_amend_and_withdraw_reevaluate(core: Core, factory: str, deliver: Any) -> None:
    await assessments.record(core, ASSESSOR, factory, "2024-01-10", FAIL)
    await assessments.record(core, ASSESSOR, factory, "2025-01-10", FAIL)
    await deliver()
    amended = await assessments.amend(
        core, MANAGER, factory, "2025-01-10", "data entry error", nc_issues=PASS
    )
    assert amended.label == "Not at risk"
    assert amended.contradicted  # the factory had been told "2 of 3"
    withdrawn = await assessments.withdraw(core, MANAGER, factory, "2025-01-10", "duplicate visit")
    assert withdrawn.label == "At risk (1 of 3)"
    # the day is free again after a withdrawal
    again = await assessments.record(core, ASSESSOR, factory, "2025-01-10", FAIL)
    assert again.label == "At risk (2 of 3)"
    view = await reading.status(core, factory)
    assert [a.assessed_on.isoformat() for a in view.assessments] == ["2024-01-10", "2025-01-10"]
    # the 2-of-3 warning came back: the earlier event is supported again, not duplicated
    keys = [e.key for e in await events(core, factory)]
    assert len(keys) == len(set(keys))


async def test_amend_refusals(core: Core, factory: str) -> None:
    await assessments.record(core, ASSESSOR, factory, "2024-01-10", FAIL)
    await assessments.record(core, ASSESSOR, factory, "2024-02-10", FAIL)
    with pytest.raises(NotFound) as exc:
        await assessments.amend(core, MANAGER, factory, "2024-01-11", "x", nc_issues=PASS)
    assert "2024-01-10" in exc.value.render()
    with pytest.raises(InvalidInput):
        await assessments.amend(core, MANAGER, factory, "2024-01-10", "  ", nc_issues=PASS)
    with pytest.raises(InvalidInput):
        await assessments.amend(core, MANAGER, factory, "2024-01-10", "nothing")
    with pytest.raises(DuplicateAssessment):
        await assessments.amend(core, MANAGER, factory, "2024-01-10", "x", new_date="2024-02-10")


async def test_not_covered_country(core: Core) -> None:
    await registry.add_factory(core, MANAGER, "KH-1", "Phnom Penh Textiles", "KH", "a@pp.example")
    for day in ("2024-01-01", "2025-01-01", "2026-01-01"):
        outcome = await assessments.record(core, ASSESSOR, "KH-1", day, FAIL5)
    assert outcome.label == "Not covered by the PNC framework"
    assert outcome.new_events == ()
    assert await events(core, "KH-1") == []


async def test_concurrent_submissions_for_one_factory_are_serialised(
    core: Core, factory: str
) -> None:
    days = ["2023-01-01", "2024-01-01", "2025-01-01"]
    await asyncio.gather(*(assessments.record(core, ASSESSOR, factory, d, FAIL) for d in days))
    view = await reading.status(core, factory)
    assert view.state == "pnc"
    recorded = await events(core, factory)
    # whatever order they committed in, the events are those of the final history
    supported = sorted((e.kind, e.payload.get("k")) for e in recorded if e.unsupported_at is None)
    assert supported == [("at_risk_warning", 1), ("at_risk_warning", 2), ("pnc_designated", None)]


async def test_concurrent_duplicates_store_one(core: Core, factory: str) -> None:
    results = await asyncio.gather(
        *(assessments.record(core, ASSESSOR, factory, "2025-05-05", FAIL) for _ in range(4)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, DuplicateAssessment) for r in results if isinstance(r, BaseException))
    assert await count(core, Assessment) == 1


async def test_a_use_case_needs_one_pooled_connection(
    db: Database, settings: Settings, clock: FrozenClock, factory: str
) -> None:
    # a transaction that took a second connection (e.g. to list the managers for a notice)
    # would wait for itself here, and exhaust the pool under concurrent requests
    narrow = Database(db.url, pool_size=1, max_overflow=0, pool_timeout=2)
    try:
        core = Core(narrow, load_config(settings), settings, clock)
        outcome = await assessments.record(core, ASSESSOR, factory, "2025-01-10", FAIL)
        assert outcome.label == "At risk (1 of 3)"
        assert await access.managers(core) == ["U0ADMIN"]
    finally:
        await narrow.dispose()


async def test_refusals_name_every_manager_and_allowed_actions_look_up_none(
    core: Core, factory: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    await access.grant(core, MANAGER, "U0GRANTED", "manager")
    refusals = [
        registry.add_factory(core, VIEWER, "VN-2", "X", "VN", "a@b.example"),
        assessments.amend(core, ASSESSOR, factory, "2025-01-10", "x", nc_issues=PASS),
        imports.run(core, "factories", tmp_path / "f.csv", ASSESSOR),
        readmission.apply(core, VIEWER, factory, ["https://drive.example/e"]),
        calls.add(core, ASSESSOR, "2026-12-24"),
        outbox_admin.retry(core, ASSESSOR, 1),
    ]
    for refusal in refusals:
        with pytest.raises(PermissionDenied) as exc:
            await refusal
        assert exc.value.mentions == ("U0ADMIN", "U0GRANTED")  # one list, wherever refused

    async def looked_up(*_: Any) -> list[str]:
        raise AssertionError("the managers were looked up for an allowed action")

    monkeypatch.setattr(access, "managers", looked_up)
    await assessments.record(core, ASSESSOR, factory, "2025-01-10", PASS)
    await calls.add(core, MANAGER, "2026-12-24")


@contextlib.contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements sent while the block runs."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(" ".join(statement.split()))

    engines = {db.engine.sync_engine, db.read_engine.sync_engine}  # reads may have their own
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


def reads(sent: list[str], table: str) -> int:
    return sum(1 for q in sent if q.startswith("SELECT") and f"FROM {table} " in f"{q} ")


async def test_a_use_case_reads_the_factory_and_its_history_once(core: Core, factory: str) -> None:
    await assessments.record(core, ASSESSOR, factory, "2024-01-10", FAIL)
    await assessments.record(core, ASSESSOR, factory, "2024-06-10", FAIL)
    with statements(core.db) as sent:
        outcome = await assessments.record(core, ASSESSOR, factory, "2025-01-10", FAIL)
    assert outcome.label == "Persistently non-compliant"  # notices and follow-ups written
    assert reads(sent, "factory") == 1
    with statements(core.db) as sent:
        await readmission.apply(core, MANAGER, factory, ["https://drive.example/e"])
    found = reads(sent, "factory"), reads(sent, "assessment"), reads(sent, "readmission")
    assert found == (1, 1, 1)
    with statements(core.db) as sent:
        outcome = await readmission.decide(core, MANAGER, factory, True, None)
    assert outcome.label == "Not at risk"
    assert (reads(sent, "factory"), reads(sent, "assessment")) == (1, 1)


async def test_the_agenda_reads_the_last_assessments_in_one_query(core: Core) -> None:
    for n in range(3):
        await registry.add_factory(core, MANAGER, f"VN-{n}", "Garments", "VN", "a@b.example")
        await assessments.record(core, ASSESSOR, f"VN-{n}", "2025-01-10", FAIL[: 5 + 6 * n])
    await assessments.withdraw(core, MANAGER, "VN-2", "2025-01-10", "duplicate")
    pairs = [(f"VN-{n}", date(2025, 1, 10)) for n in range(3)] + [("VN-9", None)]
    with statements(core.db) as sent:
        async with core.db.transaction() as s:
            found = await reminders.last_assessments(s, pairs)
    assert found == {"VN-0": ["CO-01"], "VN-1": ["CO-01", "CO-02"]}
    assert reads(sent, "assessment") == 1


async def test_missing_subscriptions_and_calls_are_named(core: Core, factory: str) -> None:
    await registry.add_buyer(core, MANAGER, "B-1", "Acme", "x@acme.example")
    with pytest.raises(NotFound) as exc:
        await registry.unsubscribe(core, ASSESSOR, "B-1", factory)
    assert exc.value.render() == (
        "There is no subscription `B-1 → VN-1001`. `B-1` does not subscribe to `VN-1001`."
    )
    with pytest.raises(NotFound) as exc:
        await calls.remove(core, MANAGER, "2026-12-24")
    assert exc.value.render() == (
        "There is no buyer call `2026-12-24`. `calls list` shows the calls to come."
    )


async def test_concurrent_subscriptions_store_one_and_refuse_none(core: Core, factory: str) -> None:
    await registry.add_buyer(core, MANAGER, "B-1", "Acme", "x@acme.example")
    results = await asyncio.gather(
        *(registry.subscribe(core, ASSESSOR, "B-1", factory) for _ in range(4)),
        return_exceptions=True,
    )
    assert sorted(results, key=str) == [False, False, False, True]
    assert await count(core, Subscription) == 1
