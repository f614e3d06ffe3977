"""Notices end to end below Slack: the outbox written with the assessment, the dispatcher, a real
SMTP server (aiosmtpd on loopback) and the fake Slack Web API — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.countries import load_config
from bot.delivery import RetryPolicy
from bot.dispatcher import Dispatcher
from bot.settings import Settings
from bot.smtp_url import SmtpSettings
from bot.transports import FileTransport, SmtpTransport
from bot.usecases import assessments, outbox_admin, registry
from bot.usecases.core import Core
from store.db import Database
from store.models import OutboxMessage
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


async def test_a_warning_reaches_each_organisation_separately(
    core: Core, clock: FrozenClock, registered: None, smtp: SmtpServer, slack: FakeSlack
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    rows = await outbox(core)
    assert sorted((r.channel, r.recipient_type, r.recipient_id) for r in rows) == [
        ("email", "buyer", "B-A"),
        ("email", "buyer", "B-N"),
        ("email", "factory", "VN-1"),
        ("slack", "staff", "VN"),
    ]
    d = dispatcher(core, smtp_transport(smtp), slack_transport(slack))
    assert await drain(d) == 4
    await d.close()
    by_recipients = {tuple(sorted(m.recipients)): m.message for m in smtp.received}
    assert set(by_recipients) == {
        ("hr@stitch.example",),
        ("a1@acme.example", "a2@acme.example"),
        ("csr@nordic.example",),
    }
    for recipients, message in by_recipients.items():
        to = {a.addr_spec for a in message["To"].addresses}
        assert to == set(recipients)  # no message carries two organisations
        assert message["Auto-Submitted"] == "auto-generated"
        assert message["PNC-Notice"] == "at_risk_warning"
        assert message["PNC-Factory"] == "VN-1"
        assert message.get_content_type() == "multipart/alternative"
        assert {p.get_content_type() for p in message.iter_parts()} == {"text/plain", "text/html"}
        text = message.get_body(preferencelist=("plain",)).get_content()
        assert "CO-01" in text and "1 of 3" in text
        if recipients != ("hr@stitch.example",):
            assert "Acme" not in text or recipients[0].endswith("acme.example")
            assert "Nordic" not in text or recipients[0].endswith("nordic.example")
    factory_text = by_recipients[("hr@stitch.example",)].get_body(("plain",)).get_content()
    assert factory_text.index("English") > 0  # Vietnamese first, English below
    sent = {r.recipient_id: r for r in await outbox(core)}
    assert all(r.status == "sent" for r in sent.values())
    assert {r.message_id for r in sent.values() if r.channel == "email"} == {
        str(m["Message-ID"]) for m in by_recipients.values()
    }
    post = slack.calls_to("chat.postMessage")[0]
    assert post.body["channel"] == "C0STAFF" and "VN-1" in post.body["text"]
    assert sent["VN"].provider_reply.startswith("ts:")


async def test_a_designation_refers_the_factory_to_the_inspectorate(
    core: Core, clock: FrozenClock, registered: None, smtp: SmtpServer
) -> None:
    for day in ("2024-01-10", "2025-01-10", "2026-01-10"):
        await assessments.record(core, ASSESSOR, "VN-1", day, FAIL4)
    await drain(dispatcher(core, smtp_transport(smtp)))
    referral = [m for m in smtp.received if m.recipients == ["inspection@molisa.example"]]
    assert len(referral) == 1
    text = referral[0].message.get_body(("plain",)).get_content()
    assert referral[0].message["PNC-Notice"] == "inspectorate_referral"
    for day in ("2024-01-10", "2025-01-10", "2026-01-10"):
        assert day in text
    kinds = Counter(str(m.message["PNC-Notice"]) for m in smtp.received)
    assert kinds == {"at_risk_warning": 6, "pnc_designated": 3, "inspectorate_referral": 1}


async def test_a_temporary_refusal_is_retried_with_backoff(
    core: Core, clock: FrozenClock, registered: None, smtp: SmtpServer
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    smtp.data_replies.append("451 4.3.0 try again later")
    d = dispatcher(core, smtp_transport(smtp))
    await drain(d)
    retrying = [r for r in await outbox(core) if r.status == "pending" and r.channel == "email"]
    assert len(retrying) == 1 and retrying[0].attempts == 1
    assert "451" in (retrying[0].last_error or "")
    wait = retrying[0].next_attempt_at - clock.now
    assert timedelta(seconds=20) <= wait <= timedelta(seconds=60)  # first retry within a minute
    assert await drain(d) == 0  # not yet due
    clock.advance(seconds=61)
    assert await drain(d) == 1
    assert len(smtp.received) == 3
    assert len({m.message_id for m in smtp.received}) == 3


async def test_a_permanent_refusal_is_dead_lettered_and_reported(
    core: Core, clock: FrozenClock, registered: None, smtp: SmtpServer, slack: FakeSlack
) -> None:
    smtp.refuse["csr@nordic.example"] = "550 5.1.1 no such user"
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    await drain(dispatcher(core, smtp_transport(smtp), slack_transport(slack)))
    rows = {(r.kind, r.recipient_id): r for r in await outbox(core)}
    dead = rows[("at_risk_warning", "B-N")]
    assert dead.status == "dead" and "550" in (dead.last_error or "")
    alert = rows[("delivery_failed", "VN")]
    assert alert.status == "sent"
    posted = [c.body["text"] for c in slack.calls_to("chat.postMessage")]
    assert any("Nordic" in text and "550" in text for text in posted)
    view = await outbox_admin.overview(core)
    assert [n.id for n in view.dead] == [dead.id]


async def test_a_partial_refusal_retries_only_the_refused_address(
    core: Core, clock: FrozenClock, registered: None, smtp: SmtpServer
) -> None:
    smtp.refuse["a2@acme.example"] = "452 4.2.2 mailbox full"
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    d = dispatcher(core, smtp_transport(smtp))
    await drain(d)
    acme = next(r for r in await outbox(core) if r.recipient_id == "B-A")
    assert (acme.status, acme.addresses, acme.delivered_to) == (
        "pending",
        ["a2@acme.example"],
        ["a1@acme.example"],
    )
    del smtp.refuse["a2@acme.example"]
    clock.advance(minutes=2)
    await drain(d)
    to_acme = [m for m in smtp.received if any("acme" in r for r in m.recipients)]
    assert [m.recipients for m in to_acme] == [["a1@acme.example"], ["a2@acme.example"]]
    assert to_acme[0].message_id == to_acme[1].message_id  # the same notice
    acme = next(r for r in await outbox(core) if r.recipient_id == "B-A")
    assert acme.status == "sent"
    assert sorted(acme.delivered_to) == ["a1@acme.example", "a2@acme.example"]


async def test_nothing_is_lost_while_smtp_is_down(
    core: Core, clock: FrozenClock, registered: None, smtp: SmtpServer
) -> None:
    smtp.stop()
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    await assessments.record(core, ASSESSOR, "VN-1", "2026-02-10", PASS)
    d = dispatcher(core, smtp_transport(smtp))
    for _ in range(6):  # down for a while: the channel pauses, attempts are not spent
        clock.advance(minutes=5)
        await drain(d)
    rows = await outbox(core)
    assert {r.status for r in rows if r.channel == "email"} == {"pending"}
    assert all(r.attempts == 0 for r in rows)
    assert [p.name for p in (await outbox_admin.overview(core)).paused] == ["email"]
    smtp.start()
    clock.advance(minutes=10)
    await drain(d)
    await d.close()
    ids = Counter(m.message_id for m in smtp.received)
    assert len(ids) == 6 and set(ids.values()) == {1}  # every notice once
    assert {r.status for r in await outbox(core) if r.channel == "email"} == {"sent"}


async def test_wrong_smtp_credentials_pause_the_channel_and_alert_staff(
    core: Core, clock: FrozenClock, registered: None, slack: FakeSlack
) -> None:
    server = SmtpServer(password="right")
    server.start()
    try:
        wrong = SmtpSettings.from_url(server.url.replace(":right@", ":wrong@"))
        await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
        await drain(dispatcher(core, SmtpTransport(wrong), slack_transport(slack)))
        rows = await outbox(core)
        assert all(r.attempts == 0 for r in rows if r.channel == "email")
        posted = " ".join(c.body["text"] for c in slack.calls_to("chat.postMessage"))
        assert "login refused" in posted
        assert server.received == []
    finally:
        server.stop()


async def test_a_dispatcher_killed_before_sending_loses_nothing(
    core: Core, clock: FrozenClock, registered: None, smtp: SmtpServer
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    crashed = dispatcher(core, smtp_transport(smtp), name="crashed")
    claimed = await crashed.outbox.claim("email")  # claimed, then the process died
    assert len(claimed) == 3
    survivor = dispatcher(core, smtp_transport(smtp), name="survivor")
    assert await drain(survivor) == 0  # leases still held
    clock.advance(minutes=3)  # the leases expire
    assert await drain(survivor) == 3
    assert Counter(m.message_id for m in smtp.received).most_common(1)[0][1] == 1
    assert len(smtp.received) == 3


async def test_a_dispatcher_killed_after_sending_duplicates_with_the_same_message_id(
    core: Core, clock: FrozenClock, registered: None, smtp: SmtpServer
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    crashed = dispatcher(core, smtp_transport(smtp), name="crashed")
    rows = await crashed.outbox.claim("email")
    ready, _ = crashed._render(rows)

    async def died(i: int, result: object) -> None:  # one went out, then the process died
        return None

    await crashed.transports["email"].send(ready[:1], died)
    clock.advance(minutes=3)
    await drain(dispatcher(core, smtp_transport(smtp), name="survivor"))
    counts = Counter(m.message_id for m in smtp.received)
    assert sorted(counts.values()) == [1, 1, 2]  # only the message in flight, and the same id


async def test_slack_rate_limiting_waits_for_retry_after(
    core: Core, clock: FrozenClock, registered: None, slack: FakeSlack
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    slack.fail("chat.postMessage", 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "7"})
    d = dispatcher(core, slack_transport(slack))
    await drain(d)
    staff = next(r for r in await outbox(core) if r.channel == "slack")
    assert (staff.status, staff.attempts) == ("pending", 0)
    assert staff.next_attempt_at - clock.now == timedelta(seconds=7)
    clock.advance(seconds=8)
    await drain(d)
    staff = next(r for r in await outbox(core) if r.channel == "slack")
    assert staff.status == "sent" and staff.provider_reply.startswith("ts:")


async def test_two_dispatchers_racing_claim_each_notice_once(
    core: Core, clock: FrozenClock, smtp: SmtpServer
) -> None:
    await registry.add_buyer(core, MANAGER, "B-A", "Acme", "a@acme.example")
    for n in range(40):
        await registry.add_factory(
            core, MANAGER, f"VN-{n}", f"Factory {n}", "VN", f"f{n}@x.example"
        )
        await registry.subscribe(core, MANAGER, "B-A", f"VN-{n}")
        await assessments.record(core, ASSESSOR, f"VN-{n}", "2026-01-10", FAIL4)
    first = dispatcher(core, smtp_transport(smtp), name="one")
    second = dispatcher(core, smtp_transport(smtp), name="two")
    first.outbox.policy = second.outbox.policy = RetryPolicy(batch=7)
    await asyncio.gather(drain(first), drain(second))
    counts = Counter(m.message_id for m in smtp.received)
    assert len(counts) == 80 and set(counts.values()) == {1}
    async with core.db.transaction() as s:
        by = dict(
            (
                await s.exec(
                    select(OutboxMessage.claimed_by, func.count()).group_by(
                        OutboxMessage.claimed_by
                    )
                )
            ).all()
        )
    assert by == {None: 80 + 40}  # all released; 40 staff alerts had no Slack transport here


async def test_a_mistake_corrected_before_sending_is_never_sent(
    core: Core, clock: FrozenClock, registered: None, smtp: SmtpServer
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    outcome = await assessments.amend(core, MANAGER, "VN-1", "2026-01-10", "typo", nc_issues=PASS)
    assert outcome.contradicted == ()  # nobody had been told yet
    assert {r.status for r in await outbox(core)} == {"cancelled"}
    await drain(dispatcher(core, smtp_transport(smtp)))
    assert smtp.received == []


async def test_emails_go_to_files_when_no_smtp_is_configured(
    core: Core, clock: FrozenClock, registered: None, tmp_path: Path
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    d = dispatcher(core, FileTransport(tmp_path / "outbox"))
    await drain(d)
    emls = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(emls) == 3 and len(list((tmp_path / "outbox").glob("*.html"))) == 3
    assert all(
        r.provider_reply.startswith("file:") for r in await outbox(core) if r.channel == "email"
    )


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (the relay's, in TLS tests)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            key,
            "-out",
            cert,
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "smtps"])
async def test_tls_to_the_relay(
    core: Core,
    clock: FrozenClock,
    registered: None,
    certificate: tuple[str, str],
    implicit: bool,
) -> None:
    server = SmtpServer(password="s3cret", tls=certificate, implicit_tls=implicit)
    server.start()
    try:
        url = server.url + ("&starttls=true" if not implicit else "") + f"&cafile={certificate[0]}"
        await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
        await drain(dispatcher(core, SmtpTransport(SmtpSettings.from_url(url))))
        assert len(server.received) == 3
    finally:
        server.stop()


async def test_an_untrusted_certificate_pauses_the_channel(
    core: Core, clock: FrozenClock, registered: None, certificate: tuple[str, str]
) -> None:
    server = SmtpServer(tls=certificate)
    server.start()
    try:
        await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
        transport = SmtpTransport(SmtpSettings.from_url(server.url + "&starttls=true"))
        await drain(dispatcher(core, transport))
        view = await outbox_admin.overview(core)
        assert view.paused and "TLS" in (view.paused[0].reason or "")
        assert all(r.attempts == 0 for r in await outbox(core))
        assert server.received == []
    finally:
        server.stop()


async def test_smtps_to_an_untrusted_certificate_is_a_configuration_fault(
    core: Core, clock: FrozenClock, registered: None, certificate: tuple[str, str]
) -> None:
    server = SmtpServer(tls=certificate, implicit_tls=True)
    server.start()
    try:
        await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
        await drain(dispatcher(core, SmtpTransport(SmtpSettings.from_url(server.url))))
        assert "TLS failed" in ((await outbox_admin.overview(core)).paused[0].reason or "")
    finally:
        server.stop()


async def test_a_crash_mid_batch_duplicates_at_most_the_message_in_flight(
    core: Core, clock: FrozenClock, smtp: SmtpServer
) -> None:
    await registry.add_buyer(core, MANAGER, "B-A", "Acme", "a@acme.example")
    for n in range(10):
        await registry.add_factory(
            core, MANAGER, f"VN-{n}", f"Factory {n}", "VN", f"f{n}@x.example"
        )
        await assessments.record(core, ASSESSOR, f"VN-{n}", "2026-01-10", FAIL4)
    one_lane = SmtpTransport(SmtpSettings.from_url(smtp.url), connections=1)
    crashed = dispatcher(core, one_lane, name="crashed")
    rows = await crashed.outbox.claim("email")
    ready, _ = crashed._render(rows)
    recorded = 0

    async def dies_after_six(i: int, result: object) -> None:
        nonlocal recorded
        if recorded == 5:  # the 6th message was accepted by the server; the process dies now
            raise asyncio.CancelledError
        await crashed.outbox.record(ready[i][0], result, "email")
        recorded += 1

    with pytest.raises(asyncio.CancelledError):
        await one_lane.send(ready, dies_after_six)
    clock.advance(minutes=3)  # the crashed claim's lease expires
    await drain(dispatcher(core, smtp_transport(smtp), name="survivor"))
    counts = Counter(m.message_id for m in smtp.received)
    assert len(counts) == 10
    assert sorted(counts.values()) == [1] * 9 + [2]  # only the one in flight, same Message-ID


async def test_a_sender_with_a_vietnamese_display_name_reaches_the_relay_intact(
    db: Database, settings: Settings, clock: FrozenClock, smtp: SmtpServer
) -> None:
    named = Settings(
        database_url=settings.database_url,
        staff_channel="C0STAFF",
        mail_from="Phòng PNC Better Work <pnc@betterwork.example>",
        reply_to='"Bộ phận CSR, Better Work" <csr@betterwork.example>',
    )
    core = Core(db, load_config(named), named, clock)
    await registry.add_factory(
        core, MANAGER, "VN-1", "Saigon Stitch", "VN", "hr@stitch.example", "vi"
    )
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    await drain(dispatcher(core, smtp_transport(smtp)))
    (received,) = smtp.received
    assert received.sender == "pnc@betterwork.example"  # MAIL FROM: the bare address
    (sender,) = received.message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (
        "Phòng PNC Better Work",
        "pnc@betterwork.example",
    )
    (reply_to,) = received.message["Reply-To"].addresses
    assert (reply_to.display_name, reply_to.addr_spec) == (
        "Bộ phận CSR, Better Work",
        "csr@betterwork.example",
    )
    assert received.message_id.startswith("<pnc.")
    assert received.message_id.endswith("@betterwork.example>")


class WokenDuringItsRound(Dispatcher):
    """Its first round is woken by a commit that wrote notices while the round was under way."""

    rounds = 0

    async def run_once(self) -> int:
        self.rounds += 1
        if self.rounds == 1:
            self.wake()
        return 0


async def test_a_wake_up_during_a_round_brings_another_round(
    core: Core, clock: FrozenClock
) -> None:
    d = WokenDuringItsRound.for_core(core, [])
    running = asyncio.create_task(d.run(interval=30))
    await asyncio.sleep(0.3)
    d.stop()
    await running
    assert d.rounds >= 2  # not left waiting for the next tick


async def test_a_notice_that_dies_again_after_a_retry_alerts_staff_again(
    core: Core, clock: FrozenClock, registered: None, smtp: SmtpServer, slack: FakeSlack
) -> None:
    smtp.refuse["csr@nordic.example"] = "550 5.1.1 no such user"
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    d = dispatcher(core, smtp_transport(smtp), slack_transport(slack))
    await drain(d)
    (dead,) = (await outbox_admin.overview(core)).dead
    await outbox_admin.retry(core, MANAGER, dead.id)  # someone tries again; it dies again
    await drain(d)
    await d.close()
    assert [n.id for n in (await outbox_admin.overview(core)).dead] == [dead.id]
    alerts = [r for r in await outbox(core) if r.kind == "delivery_failed"]
    assert len(alerts) == 2 and {r.status for r in alerts} == {"sent"}
    posted = [c.body["text"] for c in slack.calls_to("chat.postMessage")]
    assert sum("Nordic" in text and "550" in text for text in posted) == 2


async def test_a_dead_slack_notice_alerts_staff(
    core: Core, clock: FrozenClock, registered: None, slack: FakeSlack
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    slack.fail("chat.postMessage", 200, {"ok": False, "error": "msg_too_long"})
    await drain(dispatcher(core, slack_transport(slack)))
    rows = {r.kind: r for r in await outbox(core) if r.channel == "slack"}
    assert rows["at_risk_warning"].status == "dead"
    assert rows["delivery_failed"].status == "sent"
    alert = slack.calls_to("chat.postMessage")[-1].body["text"]
    assert "Notice not delivered" in alert and "msg_too_long" in alert


async def test_a_dead_alert_about_a_dead_notice_is_only_logged(
    core: Core, clock: FrozenClock, registered: None, slack: FakeSlack
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    slack.fail("chat.postMessage", 200, {"ok": False, "error": "msg_too_long"}, times=5)
    await drain(dispatcher(core, slack_transport(slack)))
    rows = [r for r in await outbox(core) if r.channel == "slack"]
    assert sorted((r.kind, r.status) for r in rows) == [
        ("at_risk_warning", "dead"),
        ("delivery_failed", "dead"),  # and no alert about it: no loop
    ]
    assert len(slack.calls_to("chat.postMessage")) == 2


async def test_a_mixed_refusal_retries_every_refused_address_until_only_permanent_ones_are_left(
    core: Core, clock: FrozenClock, registered: None, smtp: SmtpServer, slack: FakeSlack
) -> None:
    await registry.add_buyer(
        core, MANAGER, "B-M", "Mixed", "ok@mixed.example;full@mixed.example;gone@mixed.example"
    )
    await registry.subscribe(core, MANAGER, "B-M", "VN-1")
    smtp.refuse["full@mixed.example"] = "452 4.2.2 mailbox full"
    smtp.refuse["gone@mixed.example"] = "550 5.1.1 no such user"
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    d = dispatcher(core, smtp_transport(smtp), slack_transport(slack))
    await drain(d)
    mixed = next(r for r in await outbox(core) if r.recipient_id == "B-M")
    # one refusal is temporary: both refused addresses wait for the retry, the 550 one too
    assert (mixed.status, mixed.delivered_to) == ("pending", ["ok@mixed.example"])
    assert sorted(mixed.addresses) == ["full@mixed.example", "gone@mixed.example"]
    del smtp.refuse["full@mixed.example"]
    clock.advance(minutes=2)
    await drain(d)
    await d.close()
    mixed = next(r for r in await outbox(core) if r.recipient_id == "B-M")
    # only the permanent refusal is left: dead for that address, and staff are told
    assert (mixed.status, mixed.addresses) == ("dead", ["gone@mixed.example"])
    assert sorted(mixed.delivered_to) == ["full@mixed.example", "ok@mixed.example"]
    to_mixed = [m.recipients for m in smtp.received if "mixed" in m.recipients[0]]
    assert to_mixed == [["ok@mixed.example"], ["full@mixed.example"]]  # nobody got it twice
    posted = " ".join(c.body["text"] for c in slack.calls_to("chat.postMessage"))
    assert "Mixed" in posted and "550" in posted
