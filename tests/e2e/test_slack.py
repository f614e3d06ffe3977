"""Slack, end to end: signed requests to the bot's real HTTP server, the bot talking to a fake
Slack Web API on loopback, a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.usecases.core import Core
from store.models import Assessment, AuditEntry, Buyer, Factory, Readmission, Role, Subscription
from tests.e2e.conftest import (
    ADMIN,
    ASSESSOR,
    MANAGER,
    STRANGER,
    VIEWER,
    FakeSlack,
    SlackClient,
    settled,
)

FAIL4 = "CO-01,CO-02,OS-01,WT-01"


async def rows(core: Core, model: type, *where: Any) -> int:
    async with core.db.transaction() as s:
        stmt = select(func.count()).select_from(model)
        for condition in where:
            stmt = stmt.where(condition)
        return (await s.exec(stmt)).scalar_one()


async def audited(core: Core, user: str) -> list[tuple[str, str]]:
    await settled()  # reads' entries are written in batches (``read_audits``)
    async with core.db.transaction() as s:
        stmt = (
            select(AuditEntry.subject, AuditEntry.outcome)
            .where(AuditEntry.actor == user, AuditEntry.action == "command")
            .order_by(AuditEntry.id)
        )
        return [tuple(r) for r in (await s.exec(stmt)).all()]


# --- the door: signatures --------------------------------------------------------------------


async def test_requests_not_signed_by_slack_are_refused(client: SlackClient) -> None:
    _, body = client.command_body("status VN-1001", ADMIN)
    form = "application/x-www-form-urlencoded"
    assert (await client.post(body, form, secret="not-the-secret"))[0] == 401
    stale = int(time.time()) - 6 * 60
    assert (await client.post(body, form, timestamp=stale))[0] == 401
    assert (await client.post(body, form, signature="v0=" + "0" * 64))[0] == 401
    assert (await client.post(body, form))[0] == 200


async def test_a_replayed_request_is_refused(client: SlackClient, core: Core, people: None) -> None:
    _, body = client.command_body("assess VN-1004 2026-10-01 none", ASSESSOR)
    stamp = int(time.time())
    form = "application/x-www-form-urlencoded"
    first = await client.post(body, form, timestamp=stamp)
    assert first[0] == 200
    again = await client.post(body, form, timestamp=stamp)  # the very same signed request
    assert again[0] == 401 and "already served" in again[1]
    await client.slack.wait(lambda: client.slack.responses)
    assert await rows(core, Assessment, Assessment.submitted_by == ASSESSOR) == 1


async def test_health_check_names_no_secret(client: SlackClient) -> None:
    async with client.session.get(f"{client.base}/healthz") as response:
        assert response.status == 200
        text = await response.text()
    assert json.loads(text)["status"] == "ok"
    for secret in ("test-signing-secret", "xoxb-test-token"):
        assert secret not in text


# --- roles -----------------------------------------------------------------------------------


async def test_a_person_without_a_role_is_told_who_can_grant_one(
    client: SlackClient, core: Core, people: None
) -> None:
    reply = await client.command("status VN-1001", STRANGER)
    assert "`status` needs the viewer role" in reply.text
    assert f"<@{ADMIN}>" in reply.text and f"<@{MANAGER}>" in reply.text
    assert await audited(core, STRANGER) == [("/pnc status VN-1001", "refused")]


@pytest.mark.parametrize(
    ("text", "allowed"),
    [
        ("status VN-1001", {VIEWER, ASSESSOR, MANAGER, ADMIN}),
        ("assess VN-1004 2026-10-01 none", {ASSESSOR, MANAGER, ADMIN}),
        ("amend VN-1004 2025-11-05 OS-05 typo", {MANAGER, ADMIN}),
        ("role grant <@U0NEW|new> viewer", {MANAGER, ADMIN}),
    ],
)
async def test_role_boundaries(
    client: SlackClient, people: None, text: str, allowed: set[str]
) -> None:
    for user in (STRANGER, VIEWER, ASSESSOR, MANAGER):
        reply = await client.command(text, user)
        refused = "needs the" in reply.text and "role" in reply.text
        assert refused == (user not in allowed), (user, reply.text)
        if user in allowed and "assess " in text:
            break  # the same assessment can be recorded only once


async def test_managers_grant_and_revoke_roles(
    client: SlackClient, core: Core, people: None
) -> None:
    granted = await client.command("role grant <@U0NEW|newbie> assessor", MANAGER)
    assert granted.text == "<@U0NEW> is now an assessor."
    assert "Recorded" in (await client.command("assess VN-1004 2026-10-01 none", "U0NEW")).text
    revoked = await client.command("role revoke <@U0NEW>", MANAGER)
    assert "no longer has a pnc-bot role" in revoked.text
    assert "needs the viewer role" in (await client.command("status VN-1004", "U0NEW")).text
    configured = await client.command(f"role revoke <@{ADMIN}>", MANAGER)
    assert "through the configuration" in configured.text
    assert await rows(core, Role, Role.user_id == ADMIN) == 0
    bad = await client.command("role grant <@U0NEW> boss", MANAGER)
    assert "not a role" in bad.text


# --- every subcommand ------------------------------------------------------------------------


async def test_help_lists_the_commands(client: SlackClient, people: None) -> None:
    for text in ("", "help"):
        reply = await client.command(text, VIEWER)
        assert "Your role: *viewer*" in reply.text
        assert "/pnc status &lt;factory&gt;" in reply.text  # usage shown, escaped


async def test_status_shows_label_assessments_consequences_and_buyers(
    client: SlackClient, people: None
) -> None:
    reply = await client.command("status vn-1001", VIEWER)
    text = reply.text
    assert "*Persistently non-compliant*" in text
    assert "2025-06-17: 6 issues, fails" in text
    assert "`WT-02` Weekly rest day not granted" in text
    assert "No more factory visits for the rest of the current cycle (it ends 2027-06-30)" in text
    assert "Acme Outfitters (`B-ACME`), Nordic Wear AB (`B-NORD`)" in text
    assert reply.payload["response_type"] == "ephemeral"
    assert all(b["type"] == "section" for b in reply.payload["blocks"])
    at_risk = await client.command("status VN-1002", VIEWER)
    assert "*At risk (1 of 3)*: 1 failing assessment in a row" in at_risk.text


async def test_a_command_with_the_word_payload_in_it_is_answered(
    client: SlackClient, people: None
) -> None:
    """Bolt reads any form body containing "payload" as an interaction's payload (and a slash
    command's then as empty); the server reads the form by its fields."""
    refused = await client.command("status payload", VIEWER)
    assert refused.text == ":no_entry_sign: There is no factory `PAYLOAD`."
    reply = await client.command("assess VN-1003 2026-10-01 CO-01 OS-01", ASSESSOR)
    assert "VN-1003" in reply.text
    noted = await client.command("history VN-1003 payload", VIEWER)  # one word too many
    assert "/pnc history" in noted.text


async def test_history_shows_who_submitted_what(client: SlackClient, people: None) -> None:
    await client.command("assess VN-1003 2026-10-01 CO-01 OS-01", ASSESSOR)
    text = (await client.command("history VN-1003", VIEWER)).text
    assert f"— by <@{ASSESSOR}> via slack" in text
    assert "via import:assessments.csv" in text
    assert "process stopped" in text


async def test_assess_records_and_replies_with_the_count_and_new_label(
    client: SlackClient, core: Core, people: None
) -> None:
    reply = await client.command("assess VN-1002 2026-11-02 CO-01, CO-02, OS-01 WT-01", ASSESSOR)
    assert "4 non-compliant public-reporting issues" in reply.text
    assert "Status now: *At risk (2 of 3)*" in reply.text
    assert await rows(core, Assessment, Assessment.submitted_by == ASSESSOR) == 1
    assert await audited(core, ASSESSOR) == [
        ("/pnc assess VN-1002 2026-11-02 CO-01, CO-02, OS-01 WT-01", "ok")
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("assess VN-1010 2026-01-01 none", "There is no factory `VN-1010`. Did you mean `VN-1001`"),
        ("assess VN-1002 2031-01-01 none", "is in the future"),
        ("assess VN-1002 1999-01-01 none", "before 2000"),
        ("assess VN-1002 2026-02-30 none", "is not a valid assessment date"),
        ("assess VN-1002 01/02/2026 none", "is not a date (YYYY-MM-DD)"),
        ("assess VN-1002 2026-01-01 C0-01", "`C0-01` (did you mean `CO-01`"),
        ("assess VN-1002 2025-09-03 none", "already has an assessment on 2025-09-03"),
        ("assess VN-1002 2026-01-01", "needs the factory, the date and the issue codes"),
        ("asess VN-1002", "Did you mean `assess`?"),
        ('factory add VN-1 "Unclosed VN a@b.example', "quotation mark is not closed"),
    ],
)
async def test_refusals_say_what_would_be_right_and_write_nothing(
    client: SlackClient, core: Core, people: None, text: str, expected: str
) -> None:
    before = await rows(core, Assessment)
    reply = await client.command(text, ASSESSOR)
    assert expected in reply.text, reply.text
    assert reply.text.startswith(":no_entry_sign:")
    assert await rows(core, Assessment) == before
    assert (await audited(core, ASSESSOR))[-1][1] == "refused"


async def test_registry_subcommands(client: SlackClient, core: Core, people: None) -> None:
    added = await client.command(
        'factory add VN-2002 "Hue Garments" VN hr@hue.example;gm@hue.example vi 2027-12-31',
        ASSESSOR,
    )
    assert "Registered factory `VN-2002` — Hue Garments (Viet Nam)" in added.text
    buyer = await client.command("buyer add B-ZEN Zen Apparel Group ethics@zen.example", ASSESSOR)
    assert "Registered buyer `B-ZEN` — Zen Apparel Group" in buyer.text
    assert "now subscribes" in (await client.command("subscribe b-zen vn-2002", ASSESSOR)).text
    assert "already subscribes" in (await client.command("subscribe B-ZEN VN-2002", ASSESSOR)).text
    status = await client.command("status VN-2002", VIEWER)
    assert "Zen Apparel Group (`B-ZEN`)" in status.text
    gone = await client.command("unsubscribe B-ZEN VN-2002", ASSESSOR)
    assert "no longer subscribes" in gone.text
    again = await client.command("unsubscribe B-ZEN VN-2002", ASSESSOR)
    assert "does not subscribe" in again.text
    duplicate = await client.command("factory add VN-2002 Other VN a@b.example", ASSESSOR)
    assert "already registered" in duplicate.text
    assert await rows(core, Factory, Factory.id == "VN-2002") == 1
    assert await rows(core, Buyer, Buyer.id == "B-ZEN") == 1
    assert await rows(core, Subscription, Subscription.buyer_id == "B-ZEN") == 0


async def test_emails_sent_as_slack_markup_are_registered(
    client: SlackClient, core: Core, people: None
) -> None:
    """With the manifest's ``should_escape``, Slack sends an address as ``<mailto:…|…>``."""
    added = await client.command(
        "factory add VN-9 Name VN <mailto:hr@x.example|hr@x.example>", ASSESSOR
    )
    assert "Registered factory `VN-9` — Name (Viet Nam)" in added.text, added.text
    buyer = await client.command(
        "buyer add B-MAILTO Buyer "
        "<mailto:a@b.example|a@b.example>;<mailto:c@d.example|c@d.example>",
        ASSESSOR,
    )
    assert "Registered buyer `B-MAILTO` — Buyer" in buyer.text, buyer.text
    async with core.db.transaction() as s:
        factory = await s.get(Factory, "VN-9")
        registered = await s.get(Buyer, "B-MAILTO")
        assert factory is not None and registered is not None
        assert (factory.emails, registered.emails) == (
            ["hr@x.example"],
            ["a@b.example", "c@d.example"],
        )


async def test_evidence_links_are_stored_with_slack_entities_read(
    client: SlackClient, core: Core, people: None
) -> None:
    applied = await client.command(
        "readmission apply VN-1001 <https://drive.example/f?id=1&amp;usp=sharing>", ASSESSOR
    )
    assert "Readmission under review" in applied.text, applied.text
    async with core.db.transaction() as s:
        application = (await s.exec(select(Readmission))).scalars().one()
    assert application.evidence == ["https://drive.example/f?id=1&usp=sharing"]


async def test_at_risk_and_issues(client: SlackClient, people: None) -> None:
    text = (await client.command("at-risk", VIEWER)).text
    assert text.index("VN-1001") < text.index("VN-1002")  # designated before at risk
    assert "*At risk (1 of 3)*" in text and "KH-2001" not in text
    assert "No factory in KH is at risk" in (await client.command("at-risk kh", VIEWER)).text
    assert "There is no country `XX`" in (await client.command("at-risk XX", VIEWER)).text
    issues = (await client.command("issues", VIEWER)).text
    assert "*Public-reporting issues in Viet Nam* (VN)" in issues
    assert "`WT-03` Working hours not accurately recorded" in issues


async def test_managers_amend_and_withdraw(client: SlackClient, people: None) -> None:
    amended = await client.command("amend VN-1002 2025-09-03 OS-01 wrong form", MANAGER)
    assert "Status now: *Not at risk*" in amended.text
    withdrawn = await client.command("withdraw VN-1002 2025-09-03 duplicate visit", MANAGER)
    assert "Withdrew the assessment of `VN-1002` on 2025-09-03" in withdrawn.text
    history = (await client.command("history VN-1002", VIEWER)).text
    assert "withdrawn: duplicate visit" in history


# --- escaping ----------------------------------------------------------------------------------


async def test_user_text_never_becomes_a_ping_or_a_link(client: SlackClient, people: None) -> None:
    hostile = "&lt;!channel&gt; &amp; &lt;@U0ADMIN&gt; &lt;https://evil.example|click&gt;"
    await client.command(f'factory add VN-666 "{hostile}" VN a@b.example', ASSESSOR)
    text = (await client.command("status VN-666", VIEWER)).text
    assert "&lt;!channel&gt; &amp; &lt;@U0ADMIN&gt; &lt;https://evil.example|click&gt;" in text
    assert "<!channel>" not in text and "<@U0ADMIN>" not in text and "<https" not in text
    refusal = (await client.command("status <!here>", VIEWER)).text
    assert "&lt;!here&gt;" in refusal and "<!here>" not in refusal


# --- the assessment form -----------------------------------------------------------------------


def submission(user: str, factory: str, day: str, codes: list[str]) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "team": {"id": "T0TEST"},
        "user": {"id": user, "team_id": "T0TEST"},
        "api_app_id": "A0PNC",
        "trigger_id": "trigger.view",
        "view": {
            "id": "V0FORM",
            "type": "modal",
            "callback_id": "pnc_assess",
            "private_metadata": json.dumps({"channel": "C0STAFF", "country": "VN"}),
            "state": {
                "values": {
                    "factory": {"factory": {"type": "plain_text_input", "value": factory}},
                    "day": {"day": {"type": "datepicker", "selected_date": day}},
                    "issues": {
                        "issues": {
                            "type": "multi_static_select",
                            "selected_options": [{"value": c} for c in codes],
                        }
                    },
                    "kind": {
                        "kind": {"type": "static_select", "selected_option": {"value": "regular"}}
                    },
                }
            },
        },
    }


async def test_assess_alone_opens_the_form_with_the_catalogue(
    client: SlackClient, slack: FakeSlack, people: None
) -> None:
    n, body = client.command_body("assess", ASSESSOR)
    status, answer, _ = await client.post(body, "application/x-www-form-urlencoded")
    assert (status, answer) == (200, "")
    opened = await slack.wait(lambda: slack.calls_to("views.open"))
    assert opened[0].body["trigger_id"] == f"trigger.{n}"
    view = opened[0].body["view"]
    assert view["callback_id"] == "pnc_assess"
    groups = view["blocks"][2]["element"]["option_groups"]
    assert len(groups) == 8 and groups[0]["options"][0]["value"] == "CL-01"
    _, body = client.command_body("assess VN-1003", ASSESSOR)  # the form, factory filled in
    await client.post(body, "application/x-www-form-urlencoded")
    prefilled = await slack.wait(lambda: slack.calls_to("views.open")[1:])
    assert prefilled[0].body["view"]["blocks"][0]["element"]["initial_value"] == "VN-1003"


async def test_the_form_for_an_unknown_factory_is_refused(
    client: SlackClient, slack: FakeSlack, people: None
) -> None:
    reply = await client.command("assess VN-9999", ASSESSOR)
    assert "There is no factory `VN-9999`" in reply.text
    assert slack.calls_to("views.open") == []


async def test_a_failing_slack_call_gets_an_apology_not_a_stack_trace(
    client: SlackClient, slack: FakeSlack, core: Core, people: None
) -> None:
    slack.fail("views.open", status=500)
    reply = await client.command("assess", ASSESSOR)
    assert "Something went wrong on our side" in reply.text
    assert "Traceback" not in reply.text
    assert (await audited(core, ASSESSOR))[-1][1] == "error"


async def test_slack_rate_limiting_the_form_gets_an_apology(
    client: SlackClient, slack: FakeSlack, people: None
) -> None:
    slack.fail("views.open", 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"})
    reply = await client.command("assess", ASSESSOR)
    assert "Something went wrong on our side" in reply.text


async def test_a_submitted_form_is_recorded_and_confirmed(
    client: SlackClient, slack: FakeSlack, core: Core, people: None
) -> None:
    status, answer = await client.interaction(
        submission(ASSESSOR, "vn-1003", "2026-11-03", ["CO-01", "OS-01", "OS-02", "WT-01"])
    )
    assert (status, answer) == (200, {})
    dm = await slack.wait(lambda: slack.calls_to("chat.postMessage"))
    assert dm[0].body["channel"] == ASSESSOR
    assert "Status now: *At risk (1 of 3)*" in dm[0].body["text"]
    assert await rows(core, Assessment, Assessment.submitted_by == ASSESSOR) == 1


@pytest.mark.parametrize(
    ("factory", "day", "codes", "field", "fragment"),
    [
        ("VN-1010", "2026-11-03", [], "factory", "Did you mean `VN-1001`"),
        ("VN-1003", "2031-11-03", [], "day", "in the future"),
        ("VN-1003", "2025-08-21", [], "day", "already has an assessment"),
        ("KH-2001", "2026-11-03", ["ZZ-01"], "issues", "ZZ-01"),
    ],
)
async def test_form_errors_are_shown_in_the_form(
    client: SlackClient,
    core: Core,
    people: None,
    factory: str,
    day: str,
    codes: list[str],
    field: str,
    fragment: str,
) -> None:
    before = await rows(core, Assessment)
    status, answer = await client.interaction(submission(ASSESSOR, factory, day, codes))
    assert status == 200 and answer["response_action"] == "errors"
    assert fragment in answer["errors"][field]
    assert await rows(core, Assessment) == before


async def test_a_viewer_cannot_submit_the_form(
    client: SlackClient, core: Core, people: None
) -> None:
    before = await rows(core, Assessment)
    _, answer = await client.interaction(submission(VIEWER, "VN-1003", "2026-11-03", []))
    assert "needs the assessor role" in answer["errors"]["factory"]
    assert await rows(core, Assessment) == before


# --- App Home ----------------------------------------------------------------------------------


async def test_app_home_shows_the_watch_list_and_own_submissions(
    client: SlackClient, slack: FakeSlack, people: None
) -> None:
    await client.command("assess VN-1004 2026-10-01 none", ASSESSOR)
    assert await client.event({"type": "app_home_opened", "user": ASSESSOR, "tab": "home"}) == 200
    published = await slack.wait(lambda: slack.calls_to("views.publish"))
    assert published[0].body["user_id"] == ASSESSOR
    text = "\n".join(b["text"]["text"] for b in published[0].body["view"]["blocks"])
    assert "*Designated* (1)" in text and "`VN-1001` Saigon Stitch Co." in text
    assert "*At risk* (1)" in text and "At risk (1 of 3)" in text
    assert "2026-10-01 `VN-1004` Da Nang Denim: 0 issues" in text


async def test_app_home_for_someone_without_a_role(
    client: SlackClient, slack: FakeSlack, people: None
) -> None:
    await client.event({"type": "app_home_opened", "user": STRANGER, "tab": "home"})
    published = await slack.wait(lambda: slack.calls_to("views.publish"))
    text = published[0].body["view"]["blocks"][1]["text"]["text"]
    assert "no pnc-bot role" in text and f"<@{ADMIN}>" in text


# --- speed ---------------------------------------------------------------------------------------


async def test_commands_are_acknowledged_well_within_three_seconds(
    client: SlackClient, people: None
) -> None:
    seconds = [(await client.command("status VN-1001", VIEWER)).ack_seconds for _ in range(20)]
    assert max(seconds) < 1.0, seconds


# --- notices ---------------------------------------------------------------------------------


async def test_an_assessment_in_slack_reaches_everyone_within_seconds(
    db: Any, settings: Any, core: Core, slack: FakeSlack, http: Any, people: None
) -> None:
    """SPEC §3's table, through the running server: the factory (in Vietnamese, with English
    below), each subscribing buyer separately, the Inspectorate on a designation, and staff."""
    from bot.bootstrap import Bot, build_background
    from bot.server import Server
    from bot.slack_app import build_slack_app
    from bot.smtp_url import SmtpSettings
    from bot.transports import SmtpTransport
    from tests.e2e.conftest import SIGNING_SECRET
    from tests.fakes import SmtpServer

    smtp = SmtpServer()
    smtp.start()
    app = build_slack_app(
        core,
        token="xoxb-t",
        signing_secret=SIGNING_SECRET,
        api_url=f"{slack.url}/api/",
        http=http,
    )
    bot = Bot(settings, core.config, db, core)
    email = SmtpTransport(SmtpSettings.from_url(smtp.url))
    server = Server(
        bot,
        app,
        signing_secret=SIGNING_SECRET,
        background=build_background(bot, app.client, email=email),
    )
    await server.start("127.0.0.1", 0)
    try:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            client = SlackClient(f"http://127.0.0.1:{server.port}", slack, session)
            started = time.monotonic()
            reply = await client.command(f"assess VN-1002 2026-11-02 {FAIL4}", ASSESSOR)
            assert "At risk (2 of 3)" in reply.text
            await slack.wait(lambda: len(smtp.received) >= 2 and slack.calls_to("chat.postMessage"))
            elapsed = time.monotonic() - started
            reply = await client.command(f"assess VN-1002 2026-11-20 {FAIL4}", ASSESSOR)
            assert "Persistently non-compliant" in reply.text
            await slack.wait(lambda: len(smtp.received) >= 5)
    finally:
        await server.stop()
        smtp.stop()
    assert elapsed < 5
    notices = [(str(m.message["PNC-Notice"]), tuple(m.recipients)) for m in smtp.received]
    assert sorted(notices) == sorted(
        [
            ("at_risk_warning", ("admin@hanoiknit.example",)),
            ("at_risk_warning", ("sourcing@acme.example",)),
            ("pnc_designated", ("admin@hanoiknit.example",)),
            ("pnc_designated", ("sourcing@acme.example",)),
            ("inspectorate_referral", ("inspection@molisa.example",)),
        ]
    )
    factory = next(m.message for m in smtp.received if m.recipients == ["admin@hanoiknit.example"])
    text = factory.get_body(("plain",)).get_content()
    assert text.index("Kính gửi") < text.index("English")  # VN-1002 speaks Vietnamese
    staff = [c.body["text"] for c in slack.calls_to("chat.postMessage")]
    assert any("Urgent" in t and "VN-1002" in t for t in staff)


@pytest.fixture
async def running(db: Any, settings: Any, core: Core, slack: FakeSlack, http: Any) -> Any:
    """The server with its background work (clock, dispatcher, reminders) and an SMTP server."""
    import aiohttp

    from bot.bootstrap import Bot, build_background
    from bot.server import Server
    from bot.slack_app import build_slack_app
    from bot.smtp_url import SmtpSettings
    from bot.transports import SmtpTransport
    from tests.e2e.conftest import SIGNING_SECRET
    from tests.fakes import SmtpServer

    smtp = SmtpServer()
    smtp.start()
    app = build_slack_app(
        core,
        token="xoxb-t",
        signing_secret=SIGNING_SECRET,
        api_url=f"{slack.url}/api/",
        http=http,
    )
    bot = Bot(settings, core.config, db, core)
    email = SmtpTransport(SmtpSettings.from_url(smtp.url))
    server = Server(
        bot,
        app,
        signing_secret=SIGNING_SECRET,
        background=build_background(bot, app.client, email=email),
    )
    await server.start("127.0.0.1", 0)
    async with aiohttp.ClientSession() as session:
        yield SlackClient(f"http://127.0.0.1:{server.port}", slack, session), smtp
    await server.stop()
    smtp.stop()


async def test_a_call_added_in_slack_brings_the_agenda_and_buyer_lists_within_a_minute(
    running: Any, slack: FakeSlack, people: None
) -> None:
    client, smtp = running
    started = time.monotonic()
    reply = await client.command("calls add 2026-11-22 15:00", MANAGER)  # day after tomorrow
    assert "Buyer call added: 2026-11-22 15:00" in reply.text
    agenda = await slack.wait(
        lambda: [
            c for c in slack.calls_to("chat.postMessage") if "2026-11-22 15:00" in c.body["text"]
        ]
    )
    await slack.wait(lambda: len(smtp.received) >= 1)
    assert time.monotonic() - started < 60
    assert "Acme Outfitters" in agenda[0].body["text"] and "VN-1001" in agenda[0].body["text"]
    await slack.wait(lambda: len(smtp.received) >= 2)
    lists = {m.recipients[0]: m.message.get_body(("plain",)).get_content() for m in smtp.received}
    # each buyer gets its own watched factories only; Pacific's factory is fine: no list
    assert set(lists) == {"sourcing@acme.example", "csr@nordicwear.example"}
    assert {str(m.message["PNC-Notice"]) for m in smtp.received} == {"buyer_call_reminder"}
    acme, nordic = lists["sourcing@acme.example"], lists["csr@nordicwear.example"]
    assert "VN-1001" in acme and "VN-1002" in acme and "Nordic" not in acme
    assert "VN-1001" in nordic and "VN-1002" not in nordic and "Acme" not in nordic
    listed = await client.command("calls list", MANAGER)
    assert "2026-11-22 15:00" in listed.text
    assert "Removed 1 buyer call" in (await client.command("calls remove 2026-11-22", MANAGER)).text


async def test_a_readmission_entirely_from_slack(
    running: Any, slack: FakeSlack, people: None
) -> None:
    client, smtp = running
    applied = await client.command(
        "readmission apply VN-1001 <https://drive.example/evidence|evidence> "
        "reports https://moit.example/r1",
        ASSESSOR,
    )
    assert "Readmission under review" in applied.text
    staff = await slack.wait(
        lambda: [
            c for c in slack.calls_to("chat.postMessage") if "readmission" in c.body["text"].lower()
        ]
    )
    assert f"<@{ADMIN}>" in staff[0].body["text"]  # managers are told
    visit = await client.command("readmission unannounced VN-1001 2026-11-25", MANAGER)
    assert "2026-11-25" in visit.text
    status = await client.command("status VN-1001", VIEWER)
    assert "https://drive.example/evidence" in status.text and "2026-11-25" in status.text
    refused = await client.command("readmission reject VN-1001", MANAGER)
    assert "needs the factory and a reason" in refused.text
    approved = await client.command("readmission approve VN-1001 all resolved", MANAGER)
    assert "*Not at risk*" in approved.text
    await slack.wait(
        lambda: (
            sum(str(m.message["PNC-Notice"]) == "readmission_approved" for m in smtp.received) == 3
        )
    )
    kinds = Counter(str(m.message["PNC-Notice"]) for m in smtp.received)
    assert kinds == {"readmission_applied": 1, "readmission_approved": 3}  # factory, 2 buyers
    unannounced = [
        m for m in smtp.received if "2026-11-25" in m.message.get_body(("plain",)).get_content()
    ]
    assert unannounced == []  # the factory never learns the visit date
