"""The Labour Inspectorate's referral (#12) on SQLite and PostgreSQL: a designation made while no
Inspectorate address is configured keeps its referral, held, and staff are told; configuring an
address and starting again sends it, or a manager does with ``/pnc referral send``; a held
referral whose designation loses its support is cancelled like the other unsent notices; and
the referral's log — when, to whom, for which designation, delivered or not — is in ``status``.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.bootstrap import bootstrap
from bot.countries import load_config
from bot.errors import Conflict, PermissionDenied, StateConflict, UnknownFactory
from bot.render import render_slack, render_text
from bot.settings import Settings
from bot.usecases import assessments, outbox_admin, reading, referrals
from bot.usecases.core import Core
from bot.vocabulary import OutboxStatus
from store.db import Database
from store.models import AuditEntry, OutboxMessage
from tests.conftest import ASSESSOR, MANAGER, FrozenClock
from tests.fakes import FakeSlack, SmtpServer
from tests.integration.helpers import (
    FAIL4,
    PASS,
    dispatcher,
    drain,
    outbox,
    slack_transport,
    smtp_transport,
)

DAYS = ("2024-01-10", "2025-01-10", "2026-01-10")
INSPECTION = "inspection@molisa.example"


@pytest.fixture
def nowhere(db: Database, settings: Settings, clock: FrozenClock) -> Core:
    """The bot configured without any Labour Inspectorate address."""
    bare = settings.model_copy(update={"inspectorate_email": None})
    config = load_config(bare)
    assert config.countries["VN"].inspectorate_emails == ()
    return Core(db, config, bare, clock)


async def designate(core: Core) -> None:
    for day in DAYS:
        await assessments.record(core, ASSESSOR, "VN-1", day, FAIL4)


async def referral_rows(core: Core) -> list[OutboxMessage]:
    return [r for r in await outbox(core) if r.kind == "inspectorate_referral"]


async def audit(core: Core, action: str) -> list[AuditEntry]:
    async with core.db.transaction() as s:
        found = await s.exec(select(AuditEntry).where(AuditEntry.action == action))
        return list(found.all())


async def test_without_an_address_the_referral_waits_held_and_staff_are_told(
    nowhere: Core, registered: None, smtp: SmtpServer, slack: FakeSlack
) -> None:
    await designate(nowhere)
    (held,) = await referral_rows(nowhere)
    assert held.status == OutboxStatus.HELD and held.addresses == []
    assert held.language == "vi" and held.event_id is not None
    assert held.key.endswith("/email/inspectorate")
    # the dispatcher sends everything else, and leaves the referral waiting
    await drain(dispatcher(nowhere, smtp_transport(smtp), slack_transport(slack)))
    (held,) = await referral_rows(nowhere)
    assert held.status == OutboxStatus.HELD and held.attempts == 0
    assert not any(m.message["PNC-Notice"] == "inspectorate_referral" for m in smtp.received)
    alerts = [c.body["text"] for c in slack.calls_to("chat.postMessage")]
    (designated,) = [t for t in alerts if "Designated persistently non-compliant" in t]
    assert "the Labour Inspectorate (referral, waiting)" in designated
    assert "no Labour Inspectorate address is configured for Viet Nam" in designated
    assert "`/pnc referral send VN-1`" in designated and "PNC_INSPECTORATE_EMAIL" in designated
    # /pnc outbox counts it apart: held, not waiting
    view = await outbox_admin.overview(nowhere)
    assert view.counts["held"] == 1 and view.counts["pending"] == 0
    assert held.id not in {n.id for n in (*view.pending, *view.retrying, *view.dead)}
    shown = render_slack("slack/outbox.txt", o=view, tz=nowhere.settings.tz)
    assert shown.startswith("*Notices*: 0 waiting, 0 retrying, 0 dead,")
    assert "1 held: a referral waits for a Labour Inspectorate address" in shown
    assert "1 held (referrals waiting" in render_text(
        "cli/outbox.txt", o=view, tz=nowhere.settings.tz
    )
    # a held notice cannot be "retried" into a message to nobody
    with pytest.raises(Conflict) as refused:
        await outbox_admin.retry(nowhere, MANAGER, held.id or 0)
    assert "is held" in refused.value.message and "referral send VN-1" in str(refused.value.hint)
    (held,) = await referral_rows(nowhere)
    assert held.status == OutboxStatus.HELD
    # the log says it waits
    view = await reading.status(nowhere, "VN-1")
    (line,) = view.referrals
    assert line.status == "held" and line.designated_on.isoformat() == DAYS[-1]
    assert line.addresses == () and line.supported
    assert view.to_json()["referrals"][0]["delivered"] is False


async def test_configuring_an_address_and_starting_again_sends_it(
    nowhere: Core,
    settings: Settings,
    clock: FrozenClock,
    registered: None,
    smtp: SmtpServer,
) -> None:
    await designate(nowhere)
    # started again without an address: it keeps waiting, and nothing is written
    again = await bootstrap(nowhere.settings, clock=clock)
    await again.aclose()
    assert (await referral_rows(nowhere))[0].status == OutboxStatus.HELD
    assert await audit(nowhere, "referral.released") == []
    # the address configured (PNC_INSPECTORATE_EMAIL), and the bot started again
    bot = await bootstrap(settings, clock=clock)
    try:
        (row,) = await referral_rows(bot.core)
        assert row.status == OutboxStatus.PENDING and row.addresses == [INSPECTION]
        assert row.language == "vi" and row.recipient_name == "Labour Inspectorate (Viet Nam)"
        (entry,) = await audit(bot.core, "referral.released")
        assert entry.actor == "pnc-bot" and entry.subject == "VN-1"
        assert entry.detail == {"notices": [row.id], "addresses": [INSPECTION]}
        await drain(dispatcher(bot.core, smtp_transport(smtp)))
        (sent,) = [m for m in smtp.received if m.recipients == [INSPECTION]]
        assert sent.message["PNC-Notice"] == "inspectorate_referral"
        assert str(sent.message["Subject"]).startswith("Đề nghị ưu tiên thanh tra")
        text = sent.message.get_body(("plain",)).get_content()
        assert text.index("Kính gửi: Thanh tra Lao động") < text.index("To the Labour Inspectorate")
        # a third start finds nothing held
        assert await referrals.release_configured(bot.core) == 0
        view = await reading.status(bot.core, "VN-1")
        (line,) = view.referrals
        assert line.status == "sent" and line.addresses == (INSPECTION,)
        assert line.sent_at is not None and line.sent_at.utcoffset() is not None
        shown = render_slack("slack/status.txt", v=view, shown=view.latest(5))
        local = line.sent_at.strftime("%Y-%m-%d %H:%M")
        assert (
            f"• Referral of the designation of {DAYS[-1]}: delivered to {INSPECTION} on {local}"
        ) in shown
    finally:
        await bot.aclose()


async def test_a_manager_sends_a_held_referral_once_the_address_is_configured(
    nowhere: Core, core: Core, registered: None, smtp: SmtpServer
) -> None:
    await designate(nowhere)
    # still no address where the command runs: refused, saying what to configure
    with pytest.raises(Conflict) as refused:
        await referrals.send(nowhere, MANAGER, "VN-1")
    assert "No Labour Inspectorate address is configured for Viet Nam" in refused.value.message
    assert "`inspectorate_emails` under `[countries.VN]`" in str(refused.value.hint)
    assert "PNC_INSPECTORATE_EMAIL" in str(refused.value.hint)
    with pytest.raises(PermissionDenied):
        await referrals.send(core, ASSESSOR, "VN-1")
    with pytest.raises(UnknownFactory):
        await referrals.send(core, MANAGER, "VN-9")
    (held,) = await referral_rows(core)
    assert held.status == OutboxStatus.HELD
    assert await audit(core, "referral.send") == []
    # where the address is configured, a manager sends it at once
    sent = await referrals.send(core, MANAGER, "vn-1")
    assert sent.factory_id == "VN-1" and sent.addresses == (INSPECTION,) and sent.count == 1
    (row,) = await referral_rows(core)
    assert row.status == OutboxStatus.PENDING and row.addresses == [INSPECTION]
    (entry,) = await audit(core, "referral.send")
    assert entry.actor == MANAGER.user_id and entry.subject == "VN-1"
    assert entry.detail == {"notices": [row.id], "addresses": [INSPECTION]}
    await drain(dispatcher(core, smtp_transport(smtp)))
    assert [m.recipients for m in smtp.received if m.recipients == [INSPECTION]] == [[INSPECTION]]
    # nothing waits any more
    with pytest.raises(StateConflict) as nothing:
        await referrals.send(core, MANAGER, "VN-1")
    assert "No referral of `VN-1` to the Labour Inspectorate is waiting" in nothing.value.message


async def test_nothing_waits_for_a_factory_referred_when_the_address_was_known(
    core: Core, registered: None
) -> None:
    await designate(core)
    (row,) = await referral_rows(core)
    assert row.status == OutboxStatus.PENDING and row.addresses == [INSPECTION]
    with pytest.raises(StateConflict):
        await referrals.send(core, MANAGER, "VN-1")


async def test_a_held_referral_is_cancelled_when_the_designation_loses_its_support(
    nowhere: Core, core: Core, registered: None
) -> None:
    await designate(nowhere)
    await assessments.amend(nowhere, MANAGER, "VN-1", DAYS[-1], "typo", nc_issues=PASS)
    (row,) = await referral_rows(nowhere)
    assert row.status == OutboxStatus.CANCELLED
    assert row.last_error == "the history no longer supports this event"
    # no "history changed" alert: nobody had been told of the designation
    assert not [r for r in await outbox(nowhere) if r.kind == "history_changed"]
    # an address configured later sends nothing for it
    assert await referrals.release_configured(core) == 0
    with pytest.raises(StateConflict):
        await referrals.send(core, MANAGER, "VN-1")
    (line,) = (await reading.status(core, "VN-1")).referrals
    assert line.status == "cancelled" and not line.supported
    # the designation supported again, still without an address: its referral waits again
    await assessments.amend(nowhere, MANAGER, "VN-1", DAYS[-1], "typo undone", nc_issues=FAIL4)
    (row,) = await referral_rows(nowhere)
    assert row.status == OutboxStatus.HELD and row.addresses == []
    assert (await referrals.send(core, MANAGER, "VN-1")).count == 1


async def test_the_history_shows_the_referral_log(
    nowhere: Core, core: Core, registered: None
) -> None:
    await designate(nowhere)
    view = await reading.history_of(nowhere, "VN-1")
    shown = render_slack("slack/history.txt", v=view)
    assert "*Labour Inspectorate*" in shown
    assert (
        f"• Referral of the designation of {DAYS[-1]}: _waiting for an Inspectorate address_"
        in shown
    )
    assert "`/pnc referral send VN-1`" in shown
    text = render_text("cli/status.txt", v=view, shown=view.latest(5))
    assert f"referral of the designation of {DAYS[-1]}: waiting for an Inspectorate address" in text
