"""The operator changes a country's rules (``PNC_CONFIG``) and restarts: the stored snapshots
follow the new rules, new events are held for staff review, and staff get one alert (SQLite and
PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update

from bot.bootstrap import bootstrap
from bot.countries import load_config
from bot.render import render_slack
from bot.settings import Settings
from bot.usecases import assessments, reading, registry, rules
from bot.usecases.core import Core
from scheduler.reminders import ReminderRunner
from store.db import Database
from store.models import AuditEntry, FollowUp, OutboxMessage, PncEvent, Reminder
from tests.conftest import ASSESSOR, MANAGER, FrozenClock

THREE = "CO-01,CO-02,OS-01"  # passes under the default threshold of 4
FAIL4 = "CO-01,CO-02,OS-01,WT-01"


def restarted(
    db: Database, settings: Settings, clock: FrozenClock, tmp_path: Path, rules: str
) -> Core:
    """The bot started again with ``rules`` for Viet Nam in its config file."""
    path = tmp_path / "pnc.toml"
    path.write_text(f"[countries.VN]\n{rules}\n", encoding="utf-8")
    changed = settings.model_copy(update={"config_path": path})
    return Core(db, load_config(changed), changed, clock)


async def outbox(core: Core) -> list[OutboxMessage]:
    async with core.db.transaction() as s:
        return list((await s.exec(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


async def events(core: Core) -> dict[str, PncEvent]:
    async with core.db.transaction() as s:
        found = await s.exec(select(PncEvent).order_by(PncEvent.id))
        return {e.key: e for e in found.scalars()}


async def test_a_lower_threshold_puts_factories_at_risk_and_holds_the_warnings(
    db: Database, settings: Settings, clock: FrozenClock, core: Core, tmp_path: Path
) -> None:
    assert await rules.refresh(core) == {}  # a start with no factory records the rules
    await registry.add_factory(core, MANAGER, "VN-1", "Saigon Stitch", "VN", "hr@stitch.example")
    await registry.add_factory(core, MANAGER, "VN-2", "Hanoi Knit", "VN", "hr@knit.example")
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", THREE)
    await assessments.record(core, ASSESSOR, "VN-1", "2026-04-10", THREE)
    await assessments.record(core, ASSESSOR, "VN-2", "2026-04-10", "none")
    assert await rules.refresh(core) == {}  # the same rules: nothing to do
    assert (await reading.watch_list(core)).factories == ()
    assert await outbox(core) == []

    again = restarted(db, settings, clock, tmp_path, "threshold = 3")
    assert await rules.refresh(again) == {"VN": 2}
    watched = (await reading.watch_list(again)).factories
    assert [(f.factory_id, f.label) for f in watched] == [("VN-1", "At risk (2 of 3)")]
    recorded = await events(again)
    assert {k: e.notice for k, e in recorded.items()} == {
        "VN-1/at_risk_warning/a1/k1": "held",
        "VN-1/at_risk_warning/a2/k2": "held",
    }
    [alert] = await outbox(again)  # nobody but staff hears of it, once
    assert (alert.kind, alert.addresses) == ("rules_changed", ["C0STAFF"])
    assert alert.payload["counts"] == {"changed": 1, "held": 2, "unsupported": 0}
    text = render_slack("slack/alerts/rules_changed.txt", **alert.payload)
    assert "Viet Nam" in text and "3 or more" in text and "`VN-1` At risk (2 of 3)" in text
    assert "`VN-1/at_risk_warning/a2/k2`" in text
    async with again.db.transaction() as s:
        actions = (await s.exec(select(AuditEntry.action))).scalars().all()
    assert actions.count("rules.changed") == 1

    # started again with the same rules: nothing more; the next assessment counts as 3 of 3
    assert await rules.refresh(restarted(db, settings, clock, tmp_path, "threshold = 3")) == {}
    assert len(await outbox(again)) == 1
    third = await assessments.record(again, ASSESSOR, "VN-1", "2026-07-10", THREE)
    assert third.label == "Persistently non-compliant"


async def test_a_higher_threshold_ends_a_designation_and_what_it_left_to_do(
    db: Database, settings: Settings, clock: FrozenClock, core: Core, tmp_path: Path
) -> None:
    await rules.refresh(core)
    await registry.add_factory(
        core, MANAGER, "VN-1", "Saigon Stitch", "VN", "hr@stitch.example", cycle_end="2027-06-30"
    )
    for day in ("2026-01-10", "2026-04-10", "2026-07-10"):
        await assessments.record(core, ASSESSOR, "VN-1", day, FAIL4)
    async with core.db.transaction(write=True) as s:  # the warnings reached the factory
        await s.exec(
            update(OutboxMessage)
            .where(OutboxMessage.kind == "at_risk_warning")
            .values(status="sent", delivered_to=["hr@stitch.example"])
        )

    again = restarted(db, settings, clock, tmp_path, "threshold = 5")
    assert await rules.refresh(again) == {"VN": 1}
    assert (await reading.watch_list(again)).factories == ()
    assert (await reading.status(again, "VN-1")).label == "Not at risk"
    rows = await outbox(again)
    assert {r.status for r in rows if r.kind == "pnc_designated"} == {"cancelled"}
    [alert] = [r for r in rows if r.kind == "rules_changed"]
    assert alert.payload["counts"] == {"changed": 1, "held": 0, "unsupported": 2}
    assert not [r for r in rows if r.kind == "history_changed"]  # one alert, not one each
    async with again.db.transaction() as s:
        [follow_up] = (await s.exec(select(FollowUp))).scalars().all()
        left = (await s.exec(select(Reminder).where(Reminder.status == "pending"))).all()
    assert follow_up.closed_by == "pnc-bot" and left == []
    clock.advance(days=7)
    assert await ReminderRunner(again).run_due() == 0


async def test_covering_a_country_evaluates_its_factories(
    db: Database, settings: Settings, clock: FrozenClock, core: Core, tmp_path: Path
) -> None:
    await rules.refresh(core)
    await registry.add_factory(core, MANAGER, "KH-1", "Phnom Penh Textiles", "KH", "a@pp.example")
    await registry.add_factory(core, MANAGER, "VN-1", "Saigon Stitch", "VN", "hr@stitch.example")
    for day in ("2026-01-10", "2026-04-10"):
        await assessments.record(core, ASSESSOR, "KH-1", day, FAIL4)
    path = tmp_path / "pnc.toml"
    path.write_text("[countries.KH]\npnc_enabled = true\n", encoding="utf-8")
    changed = settings.model_copy(update={"config_path": path})
    again = Core(db, load_config(changed), changed, clock)
    assert await rules.refresh(again) == {"KH": 1}  # Viet Nam's factories are left alone
    assert [(f.factory_id, f.label) for f in (await reading.watch_list(again)).factories] == [
        ("KH-1", "At risk (2 of 3)")
    ]


async def test_the_bot_brings_its_snapshots_in_line_with_changed_rules_when_it_starts(
    db: Database, settings: Settings, clock: FrozenClock, core: Core, tmp_path: Path
) -> None:
    await rules.refresh(core)
    await registry.add_factory(core, MANAGER, "VN-1", "Saigon Stitch", "VN", "hr@stitch.example")
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", THREE)
    path = tmp_path / "pnc.toml"
    path.write_text("[countries.VN]\nthreshold = 3\n", encoding="utf-8")
    bot = await bootstrap(settings.model_copy(update={"config_path": path}), clock=clock)
    try:
        watched = (await reading.watch_list(bot.core)).factories
        assert [(f.factory_id, f.label) for f in watched] == [("VN-1", "At risk (1 of 3)")]
    finally:
        await bot.aclose()
    bot = await bootstrap(settings, upgrade=False, clock=clock)  # a tool that only reads
    try:
        assert [f.factory_id for f in (await reading.watch_list(bot.core)).factories] == ["VN-1"]
    finally:
        await bot.aclose()
