"""What people type and read about Progress Report One (#13), pure: the report date in
``/pnc assess`` and the form, ``/pnc progress``'s grammar, the reminder email (its language
with English below, names escaped) and the overdue alert."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from markupsafe import escape

from bot import mail, notices
from bot.countries import Config, load_config
from bot.errors import ConfigError, InvalidReportDate, MalformedCommand
from bot.render import render_slack
from bot.settings import Settings
from bot.vocabulary import Channel, NoticeKind, Recipient
from handlers import blocks
from handlers.parse import assess
from handlers.progress_commands import USAGE, read_progress
from tests.emails import parsed, row_for

SETTINGS = Settings(database_url="sqlite+aiosqlite:///x.db", staff_channel="C0STAFF")
VN = load_config(SETTINGS).countries["VN"]
NAME = 'Tín <b>"Stitch"</b> & Co'


def test_the_report_date_ends_an_assessment_line() -> None:
    usage = "/pnc assess …"
    line = ["VN-1", "2026-01-10", "CO-01,OS-01", "unannounced", "report", "2026-01-20"]
    assert assess(line, usage) == {
        "factory": "VN-1",
        "date": "2026-01-10",
        "codes": "CO-01,OS-01",
        "kind": "unannounced",
        "report_on": "2026-01-20",
    }
    plain = assess(["VN-1", "2026-01-10", "none"], usage)
    assert "report_on" not in plain and plain["codes"] == "none"
    assert assess(["VN-1", "2026-01-10", "none", "REPORT", "2026-01-11"], usage)["report_on"] == (
        "2026-01-11"
    )
    with pytest.raises(MalformedCommand) as bad:
        assess(["VN-1", "2026-01-10", "none", "report", "20/01"], usage)
    assert "`20/01` is not a date" in bad.value.message


def test_a_progress_line_names_the_factory_the_day_and_what_is_fixed() -> None:
    assert read_progress(["VN-1", "2026-02-05", "fixed", "CO-01,", "OS-01"], USAGE) == {
        "factory": "VN-1",
        "date": "2026-02-05",
        "codes": "CO-01, OS-01",
    }
    assert read_progress(["VN-1", "2026-02-05", "FIXED", "none"], USAGE)["codes"] == "none"
    for words in ("VN-1 2026-02-05 CO-01", "VN-1 2026-02-05 fixed", "VN-1", ""):
        with pytest.raises(MalformedCommand) as bad:
            read_progress(words.split(), USAGE)
        assert USAGE in str(bad.value.hint)
    with pytest.raises(MalformedCommand):
        read_progress(["VN-1", "05/02", "fixed", "CO-01"], USAGE)


def test_the_form_asks_for_the_report_date_and_shows_its_refusal_under_it() -> None:
    view = blocks.assess_modal(VN, date(2026, 1, 20), None)
    (report,) = [b for b in view["blocks"] if b["block_id"] == blocks.REPORT]
    assert report["optional"] and report["element"]["type"] == "datepicker"
    state = {
        "values": {
            blocks.FACTORY: {blocks.FACTORY: {"value": "VN-1"}},
            blocks.DAY: {blocks.DAY: {"selected_date": "2026-01-10"}},
            blocks.KIND: {blocks.KIND: {"selected_option": {"value": "regular"}}},
            blocks.REPORT: {blocks.REPORT: {"selected_date": "2026-01-15"}},
        }
    }
    assert blocks.assess_values({"state": state})["report_on"] == "2026-01-15"
    del state["values"][blocks.REPORT]  # a form opened before the field existed
    assert blocks.assess_values({"state": state})["report_on"] is None
    assert blocks.field_for(InvalidReportDate("x")) == blocks.REPORT


def reminder(language: str) -> notices.Notice:
    return notices.Notice(
        key="assessment:7/progress/reminder/1",
        kind=NoticeKind.PROGRESS_REPORT_REMINDER,
        channel=Channel.EMAIL,
        recipient_type=Recipient.FACTORY,
        recipient_id="VN-1",
        recipient_name=NAME,
        addresses=("hr@stitch.example",),
        language=language,
        factory_id="VN-1",
        payload={
            "factory": {"id": "VN-1", "name": NAME},
            "country": {"code": "VN", "name": "Viet Nam"},
            "assessed_on": "2026-01-10",
            "report_on": "2026-01-15",
            "due_on": "2026-02-14",
            "days_left": 7,
            "issues": notices.issues(["CO-01", "OS-01"], VN.catalogue),
            "recipient": "factory",
        },
    )


def test_the_reminder_is_in_the_factorys_language_with_english_below() -> None:
    message = parsed(mail.build(row_for(reminder("vi")), SETTINGS))
    assert message["PNC-Notice"] == "progress_report_reminder"
    assert str(message["Subject"]) == (
        f"Hạn nộp Báo cáo tiến độ lần một ngày 14/02/2026: {NAME} (VN-1)"
    )
    text = message.get_body(("plain",)).get_content()
    assert text.index("Kính gửi: Ban Giám đốc") < text.index("Dear management of")
    assert "trước ngày 14/02/2026, tức là còn 7 ngày" in text
    assert "is due on 2026-02-14, in 7 days" in text
    assert f"- CO-01 {VN.catalogue.name('CO-01', 'vi')}" in text
    assert f"- CO-01 {VN.catalogue.name('CO-01', 'en')}" in text
    assert "Better Work verifies only the publicly reported non-compliance issues" in text
    page = message.get_body(("html",)).get_content()
    assert str(escape(NAME)) in page and "<b>" not in page
    english = parsed(mail.build(row_for(reminder("en")), SETTINGS))
    assert "Kính gửi" not in english.get_body(("plain",)).get_content()
    assert str(english["Subject"]).startswith("Progress Report One due on 2026-02-14")


def test_the_overdue_alert_names_the_issues_and_the_command() -> None:
    out = render_slack(
        "slack/alerts/progress_report_overdue.txt",
        factory={"id": "VN-1", "name": "<!channel> Stitch"},
        managers=[],
        assessed_on="2026-01-10",
        report_on="2026-01-15",
        due_on="2026-02-14",
        days_left=-1,
        issues=notices.issues(["CO-01"], VN.catalogue),
        emails=False,
    )
    assert out.startswith(":alarm_clock: *Progress Report One overdue* since 2026-02-14")
    assert "&lt;!channel&gt; Stitch" in out and "<!channel>" not in out
    assert "`CO-01`" in out and "so it was not reminded" in out
    assert "`/pnc progress VN-1 YYYY-MM-DD fixed code,code,…|none`" in out


def test_the_reminder_days_are_configured_per_country(tmp_path: Path) -> None:
    def loaded(text: str) -> Config:
        path = tmp_path / "pnc.toml"
        path.write_text(text, encoding="utf-8")
        return load_config(SETTINGS.model_copy(update={"config_path": path}))

    assert VN.progress_reminder_days == 7
    config = loaded("[countries.VN]\nprogress_reminder_days = 3\n")
    assert config.countries["VN"].progress_reminder_days == 3
    assert config.countries["KH"].progress_reminder_days == 7
    for bad in (0, 30):
        with pytest.raises(ConfigError) as refused:
            loaded(f"[countries.VN]\nprogress_reminder_days = {bad}\n")
        assert "progress_reminder_days" in refused.value.render()
