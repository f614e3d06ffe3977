"""The words of the notices, checked against the framework's (reference/pnc-framework-faq.txt)
and against each other: a designation is "bị xác định" in Vietnamese, as the sanction it is;
the programme is "Better Work Việt Nam" in Vietnamese and "Better Work Viet Nam" in English,
in the signature and in the footer alike; the Vietnamese counts name public-reporting issues as
the English ones do; improvement reports answer the Inspectorate's visits. Pure: no database.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from bot import mail
from bot.render import render_text, slack_environment
from tests.unit.test_notice_templates import (
    EVENTS,
    PAYLOADS,
    email_notice,
    flat,
    visible,
)

TEMPLATES = Path(str(resources.files("templates")))
ENGLISH_RULE = "——————— English ———————"


def template_files(*folders: str) -> list[Path]:
    return sorted(
        p
        for folder in folders
        for p in (TEMPLATES / folder).rglob("*")
        if p.suffix in (".txt", ".html")
    )


# --- "bị xác định": a designation is a sanction -------------------------------------------------


def test_the_vietnamese_designation_says_bi_xac_dinh_as_the_other_notices_do() -> None:
    notice = email_notice("pnc_designated", "factory")
    _, text, markup = mail.render("pnc_designated", ["vi"], notice.payload)
    for part in (flat(text), visible(markup)):
        assert "(mã nhà máy VN-1001) đã bị xác định là nhà máy không tuân thủ kéo dài" in part
        assert "được xác định" not in part


@pytest.mark.parametrize("path", template_files("email/vi"), ids=lambda p: p.name)
def test_no_vietnamese_template_says_duoc_xac_dinh_la(path: Path) -> None:
    """ "được" is the passive of a benefit (được chấp thuận, được tái tiếp nhận); "bị" the passive
    of a sanction: designation as persistently non-compliant is "bị xác định là"."""
    assert "được xác định là" not in path.read_text(encoding="utf-8")


# --- the programme's name: the same in the signature and the footer -----------------------------


def parts_of(text: str) -> tuple[str, str, list[str]]:
    """The Vietnamese part, the English part and the footer lines of a vi+en email's text."""
    body, footer = text.rsplit("\n--\n", 1)
    vietnamese, english = body.split(ENGLISH_RULE)
    return vietnamese, english, [line for line in footer.splitlines() if line.strip()]


@pytest.mark.parametrize("kind", EVENTS)
def test_vietnamese_says_viet_nam_with_its_accents_and_english_without(kind: str) -> None:
    notice = email_notice(kind, "factory")
    _, text, markup = mail.render(kind, ["vi", "en"], notice.payload)
    vietnamese, english, footer = parts_of(text)
    assert "Better Work Việt Nam" in vietnamese and "Viet Nam" not in vietnamese
    assert "Better Work Viet Nam" in english and "Việt Nam" not in english
    assert footer == [
        "Thư này được pnc-bot gửi tự động thay mặt Better Work Việt Nam.",
        "This message was sent automatically by pnc-bot for Better Work Viet Nam.",
    ]
    shown = visible(markup)
    assert shown.startswith("Better Work Better Work Việt Nam ")  # <title>, then the banner
    assert shown.endswith(
        "Thư này được pnc-bot gửi tự động thay mặt Better Work Việt Nam. "
        "This message was sent automatically by pnc-bot for Better Work Viet Nam."
    )


@pytest.mark.parametrize("recipient", ["factory", "buyer"])
def test_an_english_email_says_better_work_viet_nam_throughout(recipient: str) -> None:
    notice = email_notice("pnc_designated", recipient)
    _, text, markup = mail.render("pnc_designated", ["en"], notice.payload)
    for part in (flat(text), visible(markup)):
        assert "Việt Nam" not in part and "Thư này" not in part
        assert "Kind regards, Better Work Viet Nam" in part
        assert part.endswith(
            "This message was sent automatically by pnc-bot for Better Work Viet Nam."
        )
    assert visible(markup).startswith("Better Work Better Work Viet Nam ")


# --- the Vietnamese counts name public-reporting issues -----------------------------------------


def threshold_phrases(text: str) -> list[str]:
    """Each "từ 4 vấn đề … trở lên" (4 or more issues …) of a Vietnamese text."""
    return re.findall(r"từ 4 vấn đề(.*?)trở lên", text)


@pytest.mark.parametrize("k", [1, 2])
def test_the_vietnamese_warning_counts_public_reporting_issues_as_the_english_does(k: int) -> None:
    notice = email_notice(
        "at_risk_warning", "factory", payload={**PAYLOADS["at_risk_warning"], "k": k}
    )
    _, text, markup = mail.render("at_risk_warning", ["vi"], notice.payload)
    _, english, _ = mail.render("at_risk_warning", ["en"], notice.payload)
    ahead = "lần đánh giá tiếp theo tiếp tục" if k == 2 else "2 lần đánh giá tiếp theo đều tiếp tục"
    for part in (flat(text), visible(markup)):
        assert (
            f"{ahead} ghi nhận từ 4 vấn đề không tuân thủ thuộc diện báo cáo công khai trở lên, "
            "Quý Nhà máy sẽ bị xác định là nhà máy không tuân thủ kéo dài"
        ) in part
        phrases = threshold_phrases(part)
        assert len(phrases) == flat(english).count("4 or more") == 3
        assert all("thuộc diện báo cáo công khai" in p for p in phrases), phrases


@pytest.mark.parametrize("kind", EVENTS)
@pytest.mark.parametrize("recipient", ["factory", "buyer"])
def test_every_vietnamese_threshold_names_public_reporting_issues(
    kind: str, recipient: str
) -> None:
    notice = email_notice(kind, recipient)
    _, text, markup = mail.render(kind, ["vi"], notice.payload)
    for part in (flat(text), visible(markup)):
        phrases = threshold_phrases(part)
        assert phrases
        assert all("thuộc diện báo cáo công khai" in p for p in phrases), phrases


# --- improvement reports answer the Inspectorate's visits ---------------------------------------


@pytest.mark.parametrize("cycle_end", [None, "2027-06-30"])
def test_the_consequences_ask_for_improvement_reports_in_response_to_inspectorate_visits(
    cycle_end: str | None,
) -> None:
    for shown in (
        render_text("text/consequences.txt", cycle_end=cycle_end),
        slack_environment().get_template("text/consequences.txt").render(cycle_end=cycle_end),
    ):
        assert (
            "copies of its improvement reports in response to visits by the Labour Inspectorate."
            in flat(shown)
        )
        assert "to the Inspectorate" not in shown


@pytest.mark.parametrize(
    "path",
    template_files("email", "text", "slack", "cli"),
    ids=lambda p: str(p.relative_to(TEMPLATES)),
)
def test_no_template_sends_improvement_reports_to_the_inspectorate(path: Path) -> None:
    """The FAQ: the factory submits "its improvement reports in response to visits by the
    Inspectorate" — reports that answer the Inspectorate's visits, not reports sent to it."""
    text = " ".join(path.read_text(encoding="utf-8").split())
    assert not re.search(r"reports? to the (Labour )?Inspectorate", text, re.IGNORECASE), path
