"""Advisory and verification visits are recorded and shown, never counted (unless the country
counts them): through recording, amending and importing, against a real database (SQLite and
PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.countries import load_config
from bot.errors import ImportRejected
from bot.render import render_slack
from bot.settings import Settings
from bot.usecases import assessments, calls, imports, reading, registry, rules
from bot.usecases.core import Core
from scheduler.reminders import ReminderRunner
from store.db import Database
from store.models import AuditEntry, OutboxMessage, PncEvent
from tests.conftest import ASSESSOR, MANAGER, FrozenClock

FAIL = "CO-01,CO-02,OS-01,WT-01"
FIVE = "CO-01,CO-02,OS-01,OS-03,WT-01"
NOT_COUNTED = "kind_not_counted"


@pytest.fixture
async def factory(core: Core) -> None:
    await registry.add_factory(core, MANAGER, "VN-1", "Saigon Stitch", "VN", "hr@stitch.example")


async def events(core: Core) -> dict[str, PncEvent]:
    async with core.db.transaction() as s:
        return {e.key: e for e in (await s.exec(select(PncEvent).order_by(PncEvent.id))).scalars()}


async def outbox(core: Core) -> list[OutboxMessage]:
    async with core.db.transaction() as s:
        return list((await s.exec(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


def with_config(
    db: Database, settings: Settings, clock: FrozenClock, path: Path, text: str
) -> Core:
    path.write_text(text, encoding="utf-8")
    changed = settings.model_copy(update={"config_path": path})
    return Core(db, load_config(changed), changed, clock)


async def test_an_advisory_visit_is_recorded_and_shown_but_moves_nothing(
    core: Core, factory: None
) -> None:
    outcome = await assessments.record(core, ASSESSOR, "VN-1", "2026-03-01", FAIL, "advisory")
    assert (outcome.kind, outcome.counted_kind, outcome.label) == ("advisory", False, "Not at risk")
    assert outcome.new_events == ()
    assert await events(core) == {} and await outbox(core) == []
    reply = render_slack("slack/assessed.txt", o=outcome)
    assert reply.startswith("Recorded the advisory visit of *VN-1 — Saigon Stitch* on 2026-03-01")
    assert "Not counted (advisory visit)" in reply and "nobody is notified" in reply

    view = await reading.status(core, "VN-1")
    (line,) = view.assessments
    assert (line.kind, line.counted, line.not_counted) == ("advisory", False, NOT_COUNTED)
    assert line.to_json()["counted"] is False
    history = render_slack("slack/history.txt", v=await reading.history_of(core, "VN-1"))
    assert "2026-03-01: 4 issues, not counted (advisory visit)" in history
    async with core.db.transaction() as s:
        (entry,) = (
            await s.exec(select(AuditEntry).where(AuditEntry.action == "assessment.record"))
        ).scalars()
    assert entry.detail["kind"] == "advisory"


async def test_a_verification_visit_between_failing_assessments_does_not_stop_the_process(
    core: Core, factory: None
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2025-03-01", FAIL)
    visit = await assessments.record(core, ASSESSOR, "VN-1", "2025-09-01", "none", "verification")
    assert visit.label == "At risk (1 of 3)" and visit.new_events == ()
    third = await assessments.record(core, ASSESSOR, "VN-1", "2026-03-01", FAIL, "unannounced")
    assert third.label == "At risk (2 of 3)"
    assert list(await events(core)) == [
        "VN-1/at_risk_warning/a1/k1",
        "VN-1/at_risk_warning/a3/k2",
    ]


async def test_amending_a_visit_entered_as_an_assessment_takes_back_its_warning(
    core: Core, factory: None
) -> None:
    first = await assessments.record(core, ASSESSOR, "VN-1", "2026-03-01", FAIL)
    assert first.label == "At risk (1 of 3)"
    assert {n.status for n in await outbox(core)} == {"pending"}  # not delivered yet

    amended = await assessments.amend(
        core, MANAGER, "VN-1", "2026-03-01", "it was an advisory visit", kind="advisory"
    )
    assert (amended.label, amended.counted_kind, amended.contradicted) == (
        "Not at risk",
        False,
        (),
    )
    assert {n.status for n in await outbox(core)} == {"cancelled"}  # nobody hears of it
    assert (await events(core))["VN-1/at_risk_warning/a1/k1"].unsupported_at is not None

    again = await assessments.amend(
        core, MANAGER, "VN-1", "2026-03-01", "it was an assessment after all", kind="regular"
    )
    assert again.label == "At risk (1 of 3)"


async def test_importing_visits_records_them_uncounted_and_again_adds_nothing(
    core: Core, factory: None, tmp_path: Path
) -> None:
    path = tmp_path / "assessments.csv"
    path.write_text(
        "factory_id,assessed_on,nc_issues,kind\n"
        f'VN-1,2025-01-10,"{FAIL}",regular\n'
        f'VN-1,2025-04-10,"{FAIL}",Advisory\n'
        "VN-1,2025-07-10,none,verification\n"
        f'VN-1,2025-10-10,"{FAIL}",unannounced\n',
        encoding="utf-8",
    )
    report = await imports.run(core, "assessments", path, MANAGER)
    assert report.added == 4
    view = await reading.status(core, "VN-1")
    assert view.label == "At risk (2 of 3)"
    assert [(a.kind, a.not_counted) for a in view.assessments] == [
        ("regular", None),
        ("advisory", NOT_COUNTED),
        ("verification", NOT_COUNTED),
        ("unannounced", None),
    ]
    assert (await imports.run(core, "assessments", path, MANAGER)).added == 0

    bad = tmp_path / "bad.csv"
    bad.write_text("factory_id,assessed_on,nc_issues,kind\nVN-1,2026-01-10,none,spot\n")
    with pytest.raises(ImportRejected) as caught:
        await imports.run(core, "assessments", bad, MANAGER)
    text = caught.value.render()
    assert "line 2: spot is not an assessment kind" in text
    assert "regular, unannounced, advisory or verification" in text


async def test_a_country_counting_verification_visits_counts_them_after_a_restart(
    db: Database, settings: Settings, clock: FrozenClock, core: Core, tmp_path: Path
) -> None:
    assert await rules.refresh(core) == {}  # the default kinds recorded with the rules
    await registry.add_factory(core, MANAGER, "VN-1", "Saigon Stitch", "VN", "hr@stitch.example")
    await assessments.record(core, ASSESSOR, "VN-1", "2025-03-01", FAIL)
    await assessments.record(core, ASSESSOR, "VN-1", "2025-09-01", "none", "verification")
    assert (await reading.status(core, "VN-1")).label == "At risk (1 of 3)"

    # the same kinds written out: the same rules, nothing re-evaluated
    same = with_config(
        db,
        settings,
        clock,
        tmp_path / "same.toml",
        '[countries.VN]\ncounted_kinds = ["unannounced", "regular"]\n',
    )
    assert await rules.refresh(same) == {}

    counting = with_config(
        db,
        settings,
        clock,
        tmp_path / "pnc.toml",
        '[countries.VN]\ncounted_kinds = ["regular", "unannounced", "verification"]\n',
    )
    assert await rules.refresh(counting) == {"VN": 1}
    view = await reading.status(counting, "VN-1")
    assert view.label == "Not at risk"
    assert [a.counted for a in view.assessments] == [True, True]
    held = await events(counting)
    assert held["VN-1/process_stopped/a2"].notice == "held"  # a rules change notifies nobody
    assert await rules.refresh(counting) == {}


async def test_a_call_agenda_names_the_last_assessment_the_country_counts(
    db: Database, settings: Settings, clock: FrozenClock, core: Core, tmp_path: Path
) -> None:
    """An advisory visit after a factory's last assessment is not what buyers and staff are
    told of before a call — unless the country counts advisory visits."""
    await registry.add_factory(core, MANAGER, "VN-1", "Saigon Stitch", "VN", "hr@stitch.example")
    await assessments.record(core, ASSESSOR, "VN-1", "2026-06-01", FAIL)
    await assessments.record(core, ASSESSOR, "VN-1", "2026-09-01", FIVE, "advisory")

    async def agenda(bot: Core) -> dict[str, object]:
        await calls.add(bot, MANAGER, "2026-11-22")  # within the reminder days: due at once
        await ReminderRunner(bot).run_due()
        notice = [n for n in await outbox(bot) if n.kind == "buyer_call_agenda"][-1]
        await calls.remove(bot, MANAGER, "2026-11-22")
        (group,) = notice.payload["groups"]
        (factory,) = group["factories"]
        return {k: factory[k] for k in ("label", "last_assessed_on", "last_nc_count")}

    assert await agenda(core) == {
        "label": "At risk (1 of 3)",
        "last_assessed_on": "2026-06-01",
        "last_nc_count": 4,
    }
    counting = with_config(
        db,
        settings,
        clock,
        tmp_path / "pnc.toml",
        '[countries.VN]\ncounted_kinds = ["regular", "unannounced", "advisory"]\n',
    )
    await rules.refresh(counting)
    assert await agenda(counting) == {
        "label": "At risk (2 of 3)",
        "last_assessed_on": "2026-09-01",
        "last_nc_count": 5,
    }
