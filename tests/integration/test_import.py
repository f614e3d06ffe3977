"""CSV import against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.errors import ImportRejected, PermissionDenied
from bot.usecases import assessments, imports, reading, registry
from bot.usecases.core import Core
from store import history
from store.models import Assessment, Buyer, Factory, PncEvent, Subscription
from tests.conftest import ASSESSOR, EXAMPLES, MANAGER

FACTORIES = "factory_id,name,country,emails,language,cycle_end\n"
ASSESSMENTS = "factory_id,assessed_on,nc_issues\n"
FAIL = "CO-01,CO-02,OS-01,WT-01"


def csv_file(tmp_path: Path, name: str, body: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(body, bytes):
        path.write_bytes(body)
    else:
        path.write_text(body, encoding="utf-8")
    return path


async def counts(core: Core) -> dict[str, int]:
    result = {}
    async with core.db.transaction() as s:
        for model in (Factory, Buyer, Subscription, Assessment, PncEvent):
            result[model.__tablename__] = (
                await s.exec(select(func.count()).select_from(model))
            ).scalar_one()
    return result


async def load_examples(core: Core, notify: bool = False) -> None:
    for kind in ("factories", "buyers", "subscriptions", "assessments"):
        await imports.run(core, kind, EXAMPLES / f"{kind}.csv", MANAGER, notify=notify)


async def test_importing_the_examples_gives_each_factory_its_state(core: Core) -> None:
    await load_examples(core)
    states = {
        fid: (await reading.status(core, fid)).label
        for fid in ("VN-1001", "VN-1002", "VN-1003", "VN-1004", "VN-1005", "KH-2001")
    }
    assert states == {
        "VN-1001": "Persistently non-compliant",
        "VN-1002": "At risk (1 of 3)",
        "VN-1003": "Not at risk",
        "VN-1004": "Not at risk",
        "VN-1005": "Not at risk",  # its failing assessments predate public reporting
        "KH-2001": "Not covered by the PNC framework",
    }
    view = await reading.status(core, "VN-1005")
    assert [a.not_counted for a in view.assessments] == [
        "before_public_reporting",
        "before_public_reporting",
        None,
    ]
    async with core.db.transaction() as s:
        notices = set((await s.exec(select(PncEvent.notice))).scalars())
    assert notices == {"suppressed"}  # historic import: nobody is notified


async def test_reimporting_the_same_files_adds_nothing(core: Core) -> None:
    await load_examples(core)
    before = await counts(core)
    for kind in ("factories", "buyers", "subscriptions", "assessments"):
        report = await imports.run(core, kind, EXAMPLES / f"{kind}.csv", MANAGER)
        assert (report.added, report.updated) == (0, 0)
        assert report.unchanged == report.rows
    assert await counts(core) == before


async def test_notify_marks_the_events_due(core: Core) -> None:
    await load_examples(core, notify=True)
    async with core.db.transaction() as s:
        notices = set((await s.exec(select(PncEvent.notice))).scalars())
    assert notices == {"due"}


async def test_every_bad_row_is_reported_by_line_and_nothing_is_written(
    core: Core, tmp_path: Path
) -> None:
    await imports.run(core, "factories", EXAMPLES / "factories.csv", MANAGER)
    before = await counts(core)
    body = (
        "factory_id,assessed_on,nc_issues\n"
        "VN-1001,2024-01-01,CO-01;CO-02;OS-01;WT-01\n"  # 2: fine
        "VN-1010,2024-01-01,CO-01\n"  # 3: unknown factory
        "VN-1002,2031-01-01,CO-01\n"  # 4: future
        'VN-1002,2024-02-01,"CO-01;\nC0-02"\n'  # 5-6: typo'd code in a two-line cell
        "VN-1001,2024-01-01,none\n"  # 7: repeats line 2
        "VN-1003,1999-05-05,none\n"  # 8: before 2000
        "VN-1003,2024-13-01,none\n"  # 9: not a date
        "VN-1004,2024-01-01\n"  # 10: missing a cell
        "\n"  # 11: blank lines are fine
        "VN-1004,2024-01-01,none,extra\n"  # 12: one cell too many
    )
    with pytest.raises(ImportRejected) as exc:
        await imports.run(core, "assessments", csv_file(tmp_path, "a.csv", body), MANAGER)
    lines = dict(exc.value.errors)
    assert sorted(lines) == [3, 4, 5, 7, 8, 9, 10, 12]
    assert "expected 3 cells" in lines[10] and "found 4" in lines[12]
    assert "no factory VN-1010 (did you mean VN-1001" in lines[3]
    assert "future" in lines[4]
    assert "C0-02" in lines[5] and "CO-02" in lines[5]
    assert "line 2" in lines[7]
    assert "before 2000" in lines[8]
    assert "YYYY-MM-DD" in lines[9]
    assert "nothing was imported" in exc.value.render()
    assert await counts(core) == before


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "empty"),
        (b"factory_id,name,country\n", "missing column emails"),
        (FACTORIES.replace("cycle_end", "cycle_end,colour").encode(), "unknown column colour"),
        (b"factory_id,name,country,emails,name\n", "repeated column name"),
        (FACTORIES.encode() + b"VN-1,Nh\xe0 m\xe1y,VN,a@b.example,,\n", "line 2: not UTF-8"),
    ],
)
async def test_malformed_files_are_refused(
    core: Core, tmp_path: Path, body: bytes, fragment: str
) -> None:
    with pytest.raises(ImportRejected) as exc:
        await imports.run(core, "factories", csv_file(tmp_path, "f.csv", body), MANAGER)
    assert fragment in exc.value.render()
    assert (await counts(core))["factory"] == 0


async def test_factory_rows_are_checked(core: Core, tmp_path: Path) -> None:
    body = FACTORIES + (
        "VN-1,Good,VN,a@b.example,,\n"
        "VN-2,Bad mail,VN,not-an-address,,\n"
        "VN-3,Bad country,XX,a@b.example,,\n"
        "VN-4,Bad language,VN,a@b.example,fr,\n"
        "VN-5,Bad cycle,VN,a@b.example,,2027-02-30\n"
        ",No id,VN,a@b.example,,\n"
        "VN-1,Again,VN,a@b.example,,\n"
    )
    with pytest.raises(ImportRejected) as exc:
        await imports.run(core, "factories", csv_file(tmp_path, "f.csv", body), MANAGER)
    assert [line for line, _ in exc.value.errors] == [3, 4, 5, 6, 7, 8]
    assert (await counts(core))["factory"] == 0


async def test_factory_rows_update_what_changed(core: Core, tmp_path: Path) -> None:
    body = FACTORIES + "VN-1,Hue Garments,VN,a@hue.example,,\nVN-2,Vinh Knit,VN,b@vinh.example,,\n"
    first = await imports.run(core, "factories", csv_file(tmp_path, "f.csv", body), MANAGER)
    assert (first.added, first.updated, first.unchanged) == (2, 0, 0)
    changed = body.replace("a@hue.example", "hr@hue.example")
    second = await imports.run(core, "factories", csv_file(tmp_path, "f.csv", changed), MANAGER)
    assert (second.added, second.updated, second.unchanged) == (0, 1, 1)
    async with core.db.transaction() as s:
        assert (await s.get(Factory, "VN-1")).emails == ["hr@hue.example"]


async def test_a_stored_assessment_is_not_overwritten(core: Core, tmp_path: Path) -> None:
    await load_examples(core)
    before = await counts(core)
    body = "factory_id,assessed_on,nc_issues\nVN-1002,2025-09-03,none\n"
    with pytest.raises(ImportRejected) as exc:
        await imports.run(core, "assessments", csv_file(tmp_path, "a.csv", body), MANAGER)
    assert "amend" in exc.value.errors[0][1]
    assert await counts(core) == before


async def test_subscriptions_need_known_buyers_and_factories(core: Core, tmp_path: Path) -> None:
    await imports.run(core, "factories", EXAMPLES / "factories.csv", MANAGER)
    await imports.run(core, "buyers", EXAMPLES / "buyers.csv", MANAGER)
    body = "buyer_id,factory_id\nB-ACME,VN-1001\nB-ACMEE,VN-1001\nB-ACME,VN-9\nB-ACME,VN-1001\n"
    with pytest.raises(ImportRejected) as exc:
        await imports.run(core, "subscriptions", csv_file(tmp_path, "s.csv", body), MANAGER)
    errors = dict(exc.value.errors)
    assert sorted(errors) == [3, 4, 5]
    assert "did you mean B-ACME" in errors[3]
    assert (await counts(core))["subscription"] == 0


async def test_a_late_import_under_notified_events_is_flagged(
    core: Core, tmp_path: Path, deliver: Any
) -> None:
    await registry.add_factory(core, MANAGER, "VN-7", "Hue", "VN", "a@hue.example")
    await assessments.record(core, ASSESSOR, "VN-7", "2024-01-10", "CO-01,CO-02,OS-01,WT-01")
    await assessments.record(core, ASSESSOR, "VN-7", "2025-01-10", "CO-01,CO-02,OS-01,WT-01")
    await deliver()
    body = "factory_id,assessed_on,nc_issues\nVN-7,2024-06-01,none\n"
    report = await imports.run(core, "assessments", csv_file(tmp_path, "late.csv", body), MANAGER)
    assert (report.added, report.contradicted) == (1, 1)
    assert report.to_review == ("VN-7",)
    assert (await reading.status(core, "VN-7")).label == "At risk (1 of 3)"


async def test_a_byte_order_mark_and_upper_case_headers_are_accepted(
    core: Core, tmp_path: Path
) -> None:
    body = "\ufeffBUYER_ID,Name,Emails\nB-1,Acme,a@acme.example\n"
    report = await imports.run(core, "buyers", csv_file(tmp_path, "b.csv", body), MANAGER)
    assert report.added == 1


async def test_only_managers_import(core: Core) -> None:
    with pytest.raises(PermissionDenied):
        await imports.run(core, "buyers", EXAMPLES / "buyers.csv", ASSESSOR)


async def test_an_assessment_recorded_during_an_import_waits_for_it(
    core: Core, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the import has read the stored history when someone records an earlier assessment in
    # Slack: that one must wait (the factory is locked), not change the history underneath
    await registry.add_factory(core, MANAGER, "VN-1", "Saigon Stitch", "VN", "hr@stitch.example")
    path = csv_file(tmp_path, "a.csv", f'{ASSESSMENTS}VN-1,2026-03-01,"{FAIL.replace(",", ";")}"\n')
    read, go_on = asyncio.Event(), asyncio.Event()
    live_days = history.live_days

    async def pausing(s: Any, ids: Any) -> Any:
        found = await live_days(s, ids)
        read.set()
        await go_on.wait()
        return found

    monkeypatch.setattr(history, "live_days", pausing)
    imported = asyncio.create_task(imports.run(core, "assessments", path, MANAGER))
    await read.wait()
    recorded = asyncio.create_task(assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL))
    await asyncio.wait([recorded], timeout=0.5)
    waited = not recorded.done()
    go_on.set()
    await imported
    assert waited  # for the import
    assert (await recorded).label == "At risk (2 of 3)"
    async with core.db.transaction() as s:
        rows = (await s.exec(select(PncEvent).where(PncEvent.unsupported_at.is_(None)))).scalars()
        assert sorted(e.payload["k"] for e in rows) == [1, 2]
    assert [(f.factory_id, f.label) for f in (await reading.watch_list(core)).factories] == [
        ("VN-1", "At risk (2 of 3)")
    ]
