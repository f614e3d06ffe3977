"""The Labour Inspectorate's referral (#12): planned even while no Inspectorate address is
configured (then written held, and staff told how to send it), in the country's
``inspectorate_language`` — for Viet Nam in Vietnamese with English below, as factories read
theirs — and the alerts and replies about the Inspectorate's visits. Pure: no database.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from bot import mail, notices
from bot.countries import load_config
from bot.errors import ConfigError
from bot.render import render_slack, slack_environment
from bot.settings import Settings
from bot.usecases.inspectorate import VisitRecorded
from bot.usecases.readmission import ReportAdded
from bot.usecases.referrals import ReferralSent
from bot.vocabulary import OutboxStatus
from handlers import commands
from tests.emails import parsed, row_for
from tests.unit.test_notice_templates import (
    BASIS,
    FACTORY,
    HOSTILE,
    NOW,
    PAYLOADS,
    SETTINGS,
    VN,
    flat,
    issue_name,
    plan,
    slack_notice,
    visible,
)

ENGLISH_RULE = "——————— English ———————"
NOWHERE = dataclasses.replace(VN, inspectorate_emails=())


def referral(country: Any = VN, **options: Any) -> notices.Notice:
    (found,) = [
        n
        for n in plan("pnc_designated", country=country, **options)
        if n.recipient_type == "inspectorate"
    ]
    return found


# --- planning ------------------------------------------------------------------------------------


def test_a_referral_with_an_address_is_due_in_the_countrys_inspectorate_language() -> None:
    notice = referral()
    assert notice.addresses == ("insp@molisa.example",)
    assert notice.language == "vi" and notice.recipient_name == "Labour Inspectorate (Viet Nam)"
    assert notices.outbox_row(notice, NOW, "betterwork.example")["status"] == OutboxStatus.PENDING


def test_without_an_address_the_referral_is_planned_held_and_staff_are_told_why() -> None:
    planned, warnings = notices.plan(
        "VN-1001/pnc_designated/a9",
        "pnc_designated",
        PAYLOADS["pnc_designated"],
        FACTORY,
        NOWHERE,
        (),
    )
    (held,) = [n for n in planned if n.recipient_type == "inspectorate"]
    assert held.addresses == () and held.kind == "inspectorate_referral"
    assert held.key == "VN-1001/pnc_designated/a9/email/inspectorate"
    row = notices.outbox_row(held, NOW, "betterwork.example", event_id=7)
    assert row["status"] == OutboxStatus.HELD and row["addresses"] == [] and row["event_id"] == 7
    assert any("no Labour Inspectorate address is configured for Viet Nam" in w for w in warnings)
    (staff,) = [n for n in planned if n.channel == "slack"]
    assert staff.payload["referral_held"] is True
    out = render_slack("slack/alerts/pnc_designated.txt", **staff.payload)
    assert "the Labour Inspectorate (referral, waiting), except as noted below" in out
    assert ":warning: no Labour Inspectorate address is configured for Viet Nam" in out
    assert "`inspectorate_emails` under `[countries.VN]`" in out and "PNC_INSPECTORATE_EMAIL" in out
    assert "restart pnc-bot" in out and f"`/pnc referral send {FACTORY.id}`" in out
    assert "<" not in out  # nobody is pinged, nothing read as a link


def test_a_designation_alert_with_an_address_says_nothing_of_a_waiting_referral() -> None:
    out = render_slack("slack/alerts/pnc_designated.txt", **slack_notice("pnc_designated").payload)
    assert "(referral)" in out and "referral send" not in out and "waits" not in out


def test_an_alert_written_before_referrals_could_wait_still_renders() -> None:
    payload = dict(slack_notice("pnc_designated").payload)
    del payload["referral_held"]
    out = render_slack("slack/alerts/pnc_designated.txt", **payload)
    assert "(referral)" in out


def test_a_country_outside_viet_nam_refers_in_english_unless_configured(tmp_path: Path) -> None:
    countries = load_config(SETTINGS).countries
    assert countries["VN"].inspectorate_language == "vi"
    assert countries["KH"].inspectorate_language == "en"
    path = tmp_path / "pnc.toml"
    path.write_text(
        '[countries.VN]\ninspectorate_language = "en"\n'
        '[countries.KH]\ninspectorate_language = "vi"\n'
        'inspectorate_emails = ["inspection@mlvt.example"]\n',
        encoding="utf-8",
    )
    configured = load_config(Settings(config_path=str(path))).countries
    assert configured["VN"].inspectorate_language == "en"
    assert configured["KH"].inspectorate_language == "vi"
    assert referral(configured["VN"]).language == "en"


def test_an_unknown_inspectorate_language_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "pnc.toml"
    path.write_text('[countries.VN]\ninspectorate_language = "fr"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_config(Settings(config_path=str(path)))
    assert "inspectorate_language" in str(refused.value)


# --- languages ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recipient", "language", "expected"),
    [
        ("factory", "vi", ["vi", "en"]),
        ("inspectorate", "vi", ["vi", "en"]),
        ("factory", "en", ["en"]),
        ("inspectorate", "en", ["en"]),
        ("buyer", "vi", ["en"]),
        ("staff", "vi", ["en"]),
    ],
)
def test_languages_for_puts_the_first_language_first_for_factories_and_the_inspectorate(
    recipient: str, language: str, expected: list[str]
) -> None:
    notice = dataclasses.replace(referral(), recipient_type=recipient, language=language)
    assert mail.languages_for(row_for(notice)) == expected


# --- the Vietnamese referral ----------------------------------------------------------------------


@pytest.mark.parametrize("cycle_end", [date(2027, 6, 30), None], ids=["cycle-end", "no-cycle-end"])
def test_the_vietnamese_referral_renders_with_no_template_syntax_and_english_below(
    cycle_end: date | None,
) -> None:
    notice = referral(cycle_end=cycle_end)
    languages = mail.languages_for(row_for(notice))
    subject, text, markup = mail.render("inspectorate_referral", languages, notice.payload)
    for part in (subject, text, markup):
        assert "None" not in part
        assert "{{" not in part and "{%" not in part and "}}" not in part
    assert subject.startswith("Đề nghị ưu tiên thanh tra") and FACTORY.name in subject
    vietnamese, english = text.split(ENGLISH_RULE)
    assert vietnamese.strip().startswith("Kính gửi: Thanh tra Lao động (Việt Nam)")
    assert english.strip().startswith("To the Labour Inspectorate (Viet Nam),")
    assert "Better Work Việt Nam" in vietnamese and "Viet Nam" not in vietnamese
    for phrase in (
        "đã bị xác định là nhà máy không tuân thủ kéo dài (PNC)",
        "ưu tiên thanh tra nhà máy này theo quy định của pháp luật",
        "đưa các vấn đề không tuân thủ nêu trên vào phạm vi thanh tra",
        "bao gồm cả các nguyên nhân gốc rễ",
        "báo cáo cải tiến mà nhà máy đã lập sau các đợt thanh tra của Thanh tra Lao động",
    ):
        assert phrase in flat(vietnamese)
    assert "prioritise this factory for inspection" in flat(english)
    if cycle_end:
        assert "(kết thúc ngày 30/06/2027)" in vietnamese and "2027-06-30" in english
    # each part lists the whole basis, in its own language and date format
    for on, codes in BASIS:
        assert f"Đợt đánh giá ngày {on[8:10]}/{on[5:7]}/{on[:4]}" in vietnamese
        assert f"Assessment of {on}" in english
        for code in codes:
            assert f"- {code} {issue_name(code, 'vi')}" in vietnamese
            assert f"- {code} {issue_name(code, 'en')}" in english
    assert markup.index("Kính gửi") < markup.index(">English<") < markup.index("To the Labour")
    shown = visible(markup)
    for on, _ in BASIS:
        assert f"{on[8:10]}/{on[5:7]}/{on[:4]}" in shown and on in shown


def test_the_referral_escapes_a_hostile_factory_name_in_both_languages() -> None:
    notice = referral(factory=dataclasses.replace(FACTORY, name=HOSTILE))
    subject, text, markup = mail.render("inspectorate_referral", ["vi", "en"], notice.payload)
    assert "<script" not in markup and str(escape(HOSTILE)) in markup
    assert text.count(HOSTILE) >= 2 and HOSTILE in subject


def test_the_referral_message_is_vietnamese_first_with_the_spec_headers() -> None:
    notice = referral()
    message = parsed(mail.build(row_for(notice), SETTINGS))
    assert message["PNC-Notice"] == "inspectorate_referral"
    assert message["PNC-Factory"] == FACTORY.id
    assert message["Subject"].strip().startswith("Đề nghị ưu tiên thanh tra")
    assert [a.addr_spec for a in message["To"].addresses] == ["insp@molisa.example"]
    text = message.get_body(("plain",)).get_content()
    assert text.index("Kính gửi") < text.index("English") < text.index("To the Labour")
    assert "Thư này được pnc-bot gửi tự động thay mặt Better Work Việt Nam." in text


def test_an_english_speaking_inspectorate_gets_the_english_referral_only() -> None:
    notice = dataclasses.replace(referral(), language="en")
    message = parsed(mail.build(row_for(notice), SETTINGS))
    text = message.get_body(("plain",)).get_content()
    assert "Kính gửi" not in text and "English" not in text
    assert message["Subject"].strip().startswith("PNC referral for inspection")


# --- staff: the review reminder and the replies ---------------------------------------------------


def review_reminder(**context: Any) -> str:
    notice = notices.staff_alert(
        "reminder/review",
        "readmission_review_reminder",
        VN,
        "C0STAFF",
        {
            "factory": {"id": FACTORY.id, "name": FACTORY.name},
            "managers": ["U0MANAGER"],
            "applied_on": "2026-11-01",
            "days_open": 7,
            "evidence": ["https://drive.example/e.pdf"],
            "reports": [],
            "visit_on": None,
            **context,
        },
        factory_id=FACTORY.id,
    )
    assert notice is not None
    return render_slack("slack/alerts/readmission_review_reminder.txt", **notice.payload)


def test_the_review_reminder_lists_the_inspectorates_visits_and_their_reports() -> None:
    out = review_reminder(
        visits=[
            {"visited_on": "2026-09-10", "report": "https://drive.example/r1.pdf"},
            {"visited_on": "2026-10-02", "report": None},
        ]
    )
    assert (
        "Labour Inspectorate visits since the designation: 2026-09-10 (report added); "
        "2026-10-02 (no report yet)."
    ) in out
    assert f"`/pnc readmission report {FACTORY.id} &lt;link&gt;`" in out
    assert "Approval waits for a report" in out


def test_the_review_reminder_without_visits_or_with_all_reports_asks_nothing() -> None:
    assert "Labour Inspectorate visits" not in review_reminder()  # written before visits existed
    assert "Labour Inspectorate visits" not in review_reminder(visits=[])
    done = review_reminder(visits=[{"visited_on": "2026-09-10", "report": "https://x.example/r"}])
    assert "2026-09-10 (report added)" in done and "Approval waits" not in done


def phrase(macro: str, *args: Any) -> str:
    module = slack_environment().get_template("slack/replies.txt").module
    return str(getattr(module, macro)(*args)).strip()


def test_the_replies_say_what_was_recorded_and_what_it_asks() -> None:
    visit = VisitRecorded(
        "VN-1", "Saigon Stitch", date(2026, 11, 10), date(2026, 1, 10), True, True
    )
    out = phrase("visit_recorded", visit)
    assert "Labour Inspectorate's visit to `VN-1` (Saigon Stitch) on 2026-11-10" in out
    assert "`/pnc readmission report VN-1 &lt;link&gt;`" in out
    before = dataclasses.replace(visit, visited_on=date(2025, 12, 1), asks_report=False)
    assert "before the current designation (2026-01-10)" in phrase("visit_recorded", before)
    free = dataclasses.replace(before, designated_on=None)
    assert "`VN-1` is not designated" in phrase("visit_recorded", free)
    applying = dataclasses.replace(visit, applying=False)
    assert "reports &lt;link&gt;" in phrase("visit_recorded", applying)

    added = ReportAdded(
        "VN-1", "https://x.example/r.pdf", date(2026, 11, 10), (date(2026, 11, 12),)
    )
    out = phrase("report_added", added)
    assert "answers the Labour Inspectorate's visit of 2026-11-10" in out
    assert "Still without a report: the visit of 2026-11-12." in out
    done = ReportAdded("VN-1", "https://x.example/r.pdf", None, ())
    assert "no recorded visit of the Labour Inspectorate was waiting" in phrase(
        "report_added", done
    )

    sent = ReferralSent("VN-1", "Saigon Stitch", ("a@molisa.example", "b@molisa.example"), 1)
    out = phrase("referral_sent", sent)
    assert "goes out now, to a@molisa.example, b@molisa.example" in out
    assert "`/pnc status VN-1`" in out


# --- the grammar ---------------------------------------------------------------------------------


def test_the_new_subcommands_read_their_words() -> None:
    assert commands.parse("referral send vn-1").args == {"factory": "vn-1"}
    assert commands.parse("inspectorate visit VN-1 2026-11-10").args == {
        "factory": "VN-1",
        "date": "2026-11-10",
    }
    report = commands.parse("readmission report VN-1 <https://drive.example/r.pdf|the report>")
    assert report.action == "readmission report"
    assert report.args == {"factory": "VN-1", "link": "https://drive.example/r.pdf"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("referral", "`referral` needs `send`."),
        ("inspectorate", "`inspectorate` needs `visit`."),
        ("inspectorate visit VN-1 10/11/2026", "is not a date (YYYY-MM-DD)"),
        ("readmission report VN-1", "Something is missing."),
        ("readmission report VN-1 https://a.example https://b.example", "Unexpected"),
        ("referral send", "Something is missing."),
    ],
)
def test_the_new_subcommands_refuse_malformed_words_with_their_usage(
    text: str, problem: str
) -> None:
    from bot.errors import MalformedCommand

    with pytest.raises(MalformedCommand) as refused:
        commands.parse(text)
    assert problem in refused.value.render()
    assert "Usage: `/pnc " in refused.value.render()


def test_who_may_run_them() -> None:
    assert commands.PERMISSIONS["referral send"].role.label == "manager"
    assert commands.PERMISSIONS["inspectorate visit"].role.label == "assessor"
    assert commands.PERMISSIONS["readmission report"].role.label == "assessor"
