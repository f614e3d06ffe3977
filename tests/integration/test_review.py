"""Events held for staff review, released or dismissed (``bot.usecases.review``): a country
enabled part-way through (the Cambodian factory), a correction that contradicts what people
were told, the refusals, and two managers releasing at once (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from bot.countries import load_config
from bot.errors import (
    AlreadyReviewed,
    InvalidInput,
    PermissionDenied,
    PncError,
    StateConflict,
    UnknownHeldEvent,
)
from bot.render import render_slack, render_text
from bot.roles import Actor, RoleLevel
from bot.settings import Settings
from bot.usecases import assessments, reading, registry, review, rules
from bot.usecases.core import Core
from handlers import blocks
from store import registry as registry_rows
from store.db import Database
from store.models import AuditEntry, FollowUp, OutboxMessage, PncEvent, Reminder
from tests.conftest import ASSESSOR, MANAGER, FrozenClock

FAIL4 = "CO-01,CO-02,OS-01,WT-01"
KH_ENABLED = (
    '[countries.KH]\npnc_enabled = true\ninspectorate_emails = ["inspection@mlvt.example.gov.kh"]\n'
)
OTHER_MANAGER = Actor("U0MANAGER2", RoleLevel.MANAGER, "test")


def restarted(
    db: Database, settings: Settings, clock: FrozenClock, tmp_path: Path, config: str
) -> Core:
    """The bot started again with ``config`` as its config file."""
    path = tmp_path / "pnc.toml"
    path.write_text(config, encoding="utf-8")
    changed = settings.model_copy(update={"config_path": path})
    return Core(db, load_config(changed), changed, clock)


async def events(core: Core, factory_id: str) -> dict[str, PncEvent]:
    """The factory's events, by key without the factory (``at_risk_warning/a1/k1``)."""
    async with core.db.transaction() as s:
        found = await s.exec(select(PncEvent).where(PncEvent.factory_id == factory_id))
        return {e.key.split("/", 1)[1]: e for e in found.scalars()}


async def outbox(core: Core, event_id: int | None = None) -> list[OutboxMessage]:
    async with core.db.transaction() as s:
        stmt = select(OutboxMessage).order_by(OutboxMessage.id)
        if event_id is not None:
            stmt = stmt.where(OutboxMessage.event_id == event_id)
        return list((await s.exec(stmt)).scalars())


async def audit_actions(core: Core) -> list[str]:
    async with core.db.transaction() as s:
        return list((await s.exec(select(AuditEntry.action))).scalars())


async def counts(core: Core) -> dict[str, Any]:
    """What a refusal must leave as it was."""
    async with core.db.transaction() as s:
        found: dict[str, Any] = {}
        for name, model in (
            ("outbox", OutboxMessage),
            ("audit", AuditEntry),
            ("follow_up", FollowUp),
            ("reminder", Reminder),
        ):
            found[name] = (await s.exec(select(func.count()).select_from(model))).scalar_one()
        rows = (await s.exec(select(PncEvent).order_by(PncEvent.id))).scalars()
        found["events"] = [(e.id, e.notice, e.reviewed_at, e.payload) for e in rows]
    return found


async def cambodia(
    db: Database, settings: Settings, clock: FrozenClock, core: Core, tmp_path: Path
) -> Core:
    """A Cambodian factory with three failing assessments and a subscribing buyer; then the
    config file enables Cambodia and the bot starts again."""
    await rules.refresh(core)
    await registry.add_factory(
        core,
        MANAGER,
        "KH-1",
        "Phnom Penh Textiles",
        "KH",
        "hr@pptextiles.example",
        "en",
        "2027-06-30",
    )
    await registry.add_buyer(core, MANAGER, "B-PAC", "Pacific Brands", "rs@pacific.example")
    await registry.subscribe(core, MANAGER, "B-PAC", "KH-1")
    for day in ("2024-03-11", "2025-03-19", "2026-03-25"):
        await assessments.record(core, ASSESSOR, "KH-1", day, FAIL4)
    assert await outbox(core) == []  # Cambodia is not covered: nobody is told anything
    again = restarted(db, settings, clock, tmp_path, KH_ENABLED)
    assert await rules.refresh(again) == {"KH": 1}
    return again


async def test_a_country_enabled_part_way_through_holds_the_designation_until_it_is_released(
    db: Database, settings: Settings, clock: FrozenClock, core: Core, tmp_path: Path
) -> None:
    kh = await cambodia(db, settings, clock, core, tmp_path)
    status = await reading.status(kh, "KH-1")
    assert status.label == "Persistently non-compliant"
    held = await events(kh, "KH-1")
    assert {k: (e.notice, e.held_because, e.held_told) for k, e in held.items()} == {
        "at_risk_warning/a1/k1": ("held", "rules_changed", []),
        "at_risk_warning/a2/k2": ("held", "rules_changed", []),
        "pnc_designated/a3": ("held", "rules_changed", []),
    }
    [alert] = await outbox(kh)  # only staff hear of it, and are told how to review
    assert alert.kind == "rules_changed"
    text = render_slack("slack/alerts/rules_changed.txt", **alert.payload)
    assert "`/pnc review`" in text and "`pnc-bot review`" in text
    assert [e.id for e in status.held_for_review] == sorted(e.id for e in held.values())
    shown = render_slack("slack/status.txt", v=status, shown=status.latest(5))
    assert "*Held for review*: 3 events" in shown and "`/pnc review`" in shown
    assert status.to_json()["held_for_review"][2]["kind"] == "pnc_designated"

    listed = await review.pending(kh, MANAGER)
    assert listed.total == 3
    assert [(e.kind, e.k, e.supported, e.held_because) for e in listed.events] == [
        ("at_risk_warning", 1, True, "rules_changed"),
        ("at_risk_warning", 2, True, "rules_changed"),
        ("pnc_designated", None, True, "rules_changed"),
    ]
    page = render_slack("slack/review.txt", v=listed, tz=settings.tz)
    designation = held["pnc_designated/a3"]
    assert f"*#{designation.id}* `KH-1` Phnom Penh Textiles" in page
    assert "designation as persistently non-compliant, 2026-03-25" in page
    assert "at-risk warning (2 of 3), 2025-03-19" in page
    assert "held because the country's rules changed" in page.lower()
    assert f"`/pnc review release {designation.id}`" in page

    clock.advance(hours=2)
    done = await review.release(kh, MANAGER, f"#{designation.id}")
    assert done.released and done.meeting and str(done.cycle_end) == "2027-06-30"
    assert {(n.recipient_type, n.recipient) for n in done.notices} == {
        ("factory", "Phnom Penh Textiles"),
        ("buyer", "Pacific Brands"),
        ("inspectorate", "Labour Inspectorate (Cambodia)"),
        ("staff", "staff"),
    }
    reply = blocks.phrase("review_released", done)
    assert f"Released #{designation.id}" in reply and "4 notices written" in reply
    assert "Pacific Brands" in reply and "2027-06-30" in reply

    # the notices, as the designation's would have been: factory, buyer, Inspectorate, staff
    written = await outbox(kh, designation.id)
    assert sorted((r.kind, r.recipient_type) for r in written) == [
        ("inspectorate_referral", "inspectorate"),
        ("pnc_designated", "buyer"),
        ("pnc_designated", "factory"),
        ("pnc_designated", "staff"),
    ]
    assert {r.status for r in written} == {"pending"}
    referral = next(r for r in written if r.kind == "inspectorate_referral")
    assert referral.addresses == ["inspection@mlvt.example.gov.kh"]
    assert [b["assessed_on"] for b in referral.payload["basis"]] == [
        "2024-03-11",
        "2025-03-19",
        "2026-03-25",
    ]
    row = (await events(kh, "KH-1"))["pnc_designated/a3"]
    assert (row.notice, row.reviewed_by, row.notified_at) == ("due", MANAGER.user_id, clock.now)
    assert row.reviewed_at == clock.now and row.payload["basis"]
    # what a designation leaves to do: the stakeholder meeting and the end of the cycle
    async with kh.db.transaction() as s:
        [meeting] = (await s.exec(select(FollowUp))).scalars().all()
        pending = (await s.exec(select(Reminder).where(Reminder.status == "pending"))).all()
    assert (meeting.kind, meeting.event_id, meeting.closed_on) == (
        "stakeholder_meeting",
        designation.id,
        None,
    )
    due = {(r.kind, r.subject): r.due_at for (r,) in pending}
    assert due[("stakeholder_meeting", f"follow_up:{meeting.id}")] == clock.now + timedelta(days=7)
    cycle_end = due[("cycle_end", "factory:KH-1:2027-06-30")]
    assert cycle_end.astimezone(settings.tz) == datetime(2027, 6, 30, 9, 0, tzinfo=settings.tz)
    assert (await audit_actions(kh)).count("review.release") == 1

    # the designation is no longer listed; the warnings still are
    assert [e.kind for e in (await review.pending(kh, MANAGER)).events] == ["at_risk_warning"] * 2
    history = await reading.history_of(kh, "KH-1")
    text = render_slack("slack/history.txt", v=history)
    assert "_released on review_ by <@U0MANAGER>" in text
    assert text.count("_held for review_") == 2


async def test_a_hold_after_a_correction_is_released_and_another_dismissed(
    core: Core, registered: None, clock: FrozenClock
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    async with core.db.transaction(write=True) as s:  # the warning "1 of 3" reached everyone
        await s.exec(update(OutboxMessage).values(status="sent"))
    # an earlier failing assessment comes in late: the warning told becomes "2 of 3"
    outcome = await assessments.record(core, ASSESSOR, "VN-1", "2025-12-10", FAIL4)
    assert outcome.contradicted == ("VN-1/at_risk_warning/a1/k1",)
    held = {k: e for k, e in (await events(core, "VN-1")).items() if e.notice == "held"}
    assert {k: (e.held_because, e.held_told) for k, e in held.items()} == {
        "at_risk_warning/a2/k1": ("history_changed", ["VN-1/at_risk_warning/a1/k1"]),
        "at_risk_warning/a1/k2": ("history_changed", ["VN-1/at_risk_warning/a1/k1"]),
    }
    [alert] = [r for r in await outbox(core) if r.kind == "history_changed"]
    text = render_slack("slack/alerts/history_changed.txt", **alert.payload)
    assert "`/pnc review`" in text and "`pnc-bot review`" in text
    assert all(f"#{e.id}" in text for e in held.values())

    listed = await review.pending(core, MANAGER)
    assert [(e.kind, e.k) for e in listed.events] == [
        ("at_risk_warning", 1),
        ("at_risk_warning", 2),
    ]
    [told] = {t for e in listed.events for t in e.told}
    assert (told.kind, str(told.occurred_on), told.k) == ("at_risk_warning", "2026-01-10", 1)
    page = render_slack("slack/review.txt", v=listed, tz=core.settings.tz)
    assert "held because the history changed under notices already sent" in page.lower()
    assert "the at-risk warning (1 of 3), 2026-01-10" in page
    cli = render_text("cli/review.txt", v=listed, done=None, tz=core.settings.tz)
    assert "told before, no longer supported by the history: the at-risk warning (1 of 3)" in cli

    second, first = held["at_risk_warning/a1/k2"], held["at_risk_warning/a2/k1"]
    done = await review.release(core, MANAGER, second.id)
    assert done.released and not done.meeting and done.cycle_end is None
    written = await outbox(core, second.id)
    assert sorted(r.recipient_type for r in written) == ["buyer", "buyer", "factory", "staff"]
    factory_notice = next(r for r in written if r.recipient_type == "factory")
    assert (factory_notice.payload["k"], factory_notice.payload["assessed_on"]) == (
        2,
        "2026-01-10",
    )

    before = len(await outbox(core))
    dismissed = await review.dismiss(core, MANAGER, first.id, "  told 1 of 3 already  ")
    assert not dismissed.released and dismissed.reason == "told 1 of 3 already"
    assert len(await outbox(core)) == before  # no notice
    row = (await events(core, "VN-1"))["at_risk_warning/a2/k1"]
    assert (row.notice, row.review_note, row.reviewed_by) == (
        "dismissed",
        "told 1 of 3 already",
        MANAGER.user_id,
    )
    assert (await review.pending(core, MANAGER)).events == ()
    actions = await audit_actions(core)
    assert actions.count("review.release") == actions.count("review.dismiss") == 1
    reply = blocks.phrase("review_dismissed", dismissed)
    assert f"Dismissed #{first.id}" in reply and "told 1 of 3 already" in reply
    text = render_slack("slack/history.txt", v=await reading.history_of(core, "VN-1"))
    assert "_dismissed on review_ by <@U0MANAGER>: told 1 of 3 already" in text


async def test_events_held_before_the_reason_was_recorded_say_so(
    core: Core, registered: None
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    async with core.db.transaction(write=True) as s:  # as an older version left it
        await s.exec(update(PncEvent).values(notice="held", notified_at=None))
        await s.exec(update(OutboxMessage).values(status="cancelled"))
    listed = await review.pending(core, MANAGER)
    assert [e.held_because for e in listed.events] == [None]
    page = render_slack("slack/review.txt", v=listed, tz=core.settings.tz)
    assert "held (reason not recorded)" in page.lower()
    assert "contradicted" not in page and "Told before" not in page


async def test_refusals_say_what_is_wrong_and_write_nothing(
    db: Database, settings: Settings, clock: FrozenClock, core: Core, tmp_path: Path
) -> None:
    kh = await cambodia(db, settings, clock, core, tmp_path)
    held = await events(kh, "KH-1")
    first, second = held["at_risk_warning/a1/k1"], held["at_risk_warning/a2/k2"]
    designation = held["pnc_designated/a3"]
    await review.release(kh, MANAGER, first.id)
    await review.dismiss(kh, OTHER_MANAGER, second.id, "two years old")
    # the last assessment is withdrawn: the held designation is no longer supported
    await assessments.withdraw(kh, MANAGER, "KH-1", "2026-03-25", "entered for the wrong factory")
    await registry.add_factory(kh, MANAGER, "VN-9", "Hue Garments", "VN", "hr@hue.example")
    await assessments.record(kh, ASSESSOR, "VN-9", "2026-01-10", FAIL4)  # notified at once
    notified = (await events(kh, "VN-9"))["at_risk_warning/a4/k1"]
    listed = await review.pending(kh, MANAGER)
    assert [(e.id, e.supported) for e in listed.events] == [(designation.id, False)]
    page = render_slack("slack/review.txt", v=listed, tz=settings.tz)
    assert "_The history no longer supports it_" in page
    assert f"`/pnc review dismiss {designation.id}`" in page

    before = await counts(kh)
    refusals: list[tuple[Any, type[PncError], str]] = [
        (review.release(kh, MANAGER, first.id), AlreadyReviewed, "released on"),
        (review.dismiss(kh, MANAGER, first.id, "late"), AlreadyReviewed, "released on"),
        (review.release(kh, MANAGER, second.id), AlreadyReviewed, '("two years old") by'),
        (review.release(kh, MANAGER, notified.id), StateConflict, "notices went out"),
        (review.release(kh, MANAGER, 999999), UnknownHeldEvent, "`review` lists"),
        (review.release(kh, MANAGER, "0"), UnknownHeldEvent, "`review` lists"),
        (review.release(kh, MANAGER, "x12"), InvalidInput, "not an event number"),
        (review.dismiss(kh, MANAGER, 424242, "why"), UnknownHeldEvent, "no event `#424242`"),
        (review.release(kh, MANAGER, designation.id), StateConflict, "no longer supported"),
        (review.dismiss(kh, MANAGER, designation.id, ""), InvalidInput, "needs a reason"),
        (review.dismiss(kh, MANAGER, designation.id, "  "), InvalidInput, "needs a reason"),
        (review.dismiss(kh, MANAGER, designation.id, None), InvalidInput, "needs a reason"),
        (review.release(kh, ASSESSOR, designation.id), PermissionDenied, "manager role"),
        (review.dismiss(kh, ASSESSOR, designation.id, "x"), PermissionDenied, "manager role"),
        (review.pending(kh, ASSESSOR), PermissionDenied, "manager role"),
    ]
    for call, error, words in refusals:
        with pytest.raises(error) as refused:
            await call
        assert words in refused.value.render(), refused.value.render()
    assert await counts(kh) == before

    with pytest.raises(AlreadyReviewed) as refused:
        await review.release(kh, MANAGER, second.id)
    assert refused.value.mentions == (OTHER_MANAGER.user_id,)
    assert "Dismiss it with `review dismiss" in str(
        (await _refusal(review.release(kh, MANAGER, designation.id))).hint
    )
    # what is not supported can still be dismissed
    await review.dismiss(kh, MANAGER, designation.id, "the assessment was withdrawn")
    assert (await review.pending(kh, MANAGER)).total == 0


async def _refusal(call: Any) -> PncError:
    try:
        await call
    except PncError as exc:
        return exc
    raise AssertionError("not refused")


async def test_two_managers_releasing_at_once_release_it_once(
    db: Database, settings: Settings, clock: FrozenClock, core: Core, tmp_path: Path
) -> None:
    kh = await cambodia(db, settings, clock, core, tmp_path)
    designation = (await events(kh, "KH-1"))["pnc_designated/a3"]
    async with kh.db.transaction(write=True) as s:  # someone else is changing its history
        await registry_rows.get_factory(s, "KH-1", lock=True)
        releases = [
            asyncio.create_task(review.release(kh, who, designation.id))
            for who in (MANAGER, OTHER_MANAGER)
        ]
        await asyncio.sleep(0.3)
        assert not any(r.done() for r in releases)  # both wait, having found the event
    outcomes = await asyncio.gather(*releases, return_exceptions=True)
    released = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(released) == 1 and len(refused) == 1, outcomes
    assert isinstance(refused[0], AlreadyReviewed), refused
    row = (await events(kh, "KH-1"))["pnc_designated/a3"]
    winner = MANAGER if row.reviewed_by == MANAGER.user_id else OTHER_MANAGER
    assert refused[0].mentions == (winner.user_id,)
    assert refused[0].render().endswith(f"by {winner.user_id}")
    assert len(await outbox(kh, designation.id)) == 4
    assert (await audit_actions(kh)).count("review.release") == 1
    async with kh.db.transaction() as s:
        assert len((await s.exec(select(FollowUp))).scalars().all()) == 1
