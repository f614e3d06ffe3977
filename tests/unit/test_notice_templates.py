"""The notice templates (SPEC §3, reference/pnc-framework-faq.txt): every email kind, recipient and
language says what the framework requires, user-supplied names are escaped where they must be, a
buyer never sees another buyer, and the Slack staff alerts ping nobody. Pure: no database.

Contexts are built the way the use cases build them, with ``bot.notices.plan``; emails are rendered
with ``bot.mail.render`` / ``bot.mail.build`` and alerts with ``bot.render.render_slack``.
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from markupsafe import escape

from bot import mail, notices
from bot.countries import load_config
from bot.notices import Notice, Party
from bot.render import render_slack, slack_environment
from bot.settings import Settings
from tests.emails import parsed, row_for

SETTINGS = Settings(
    database_url="sqlite+aiosqlite:///x.db",
    inspectorate_email="insp@molisa.example",
    staff_channel="C0STAFF",
)
VN = load_config(SETTINGS).countries["VN"]
CATALOGUE = {i.code: i for i in VN.catalogue}
CODES = sorted(CATALOGUE)
NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
CYCLE_END = date(2027, 6, 30)
HOSTILE = '<script>alert(1)</script> & "Co" <!channel>'

FACTORY = Party(
    "VN-1001",
    "Saigon Stitch Co.",
    ("hr@saigonstitch.example", "compliance@saigonstitch.example"),
    "vi",
)
ACME = Party("B-ACME", "Acme Outfitters", ("sourcing@acme.example",))
NORD = Party("B-NORD", "Nordic Wear AB", ("csr@nordicwear.example", "audit@nordicwear.example"))
BUYERS = (ACME, NORD)

#: the basis of the designation, oldest first: (date, codes)
BASIS = (
    ("2023-04-12", CODES[0:4]),
    ("2024-05-08", CODES[5:10]),
    ("2025-06-17", CODES[10:16]),
)
PAYLOADS: dict[str, dict[str, Any]] = {
    "at_risk_warning": {
        "threshold": 4,
        "consecutive": 3,
        "k": 2,
        "assessed_on": "2024-05-08",
        "nc_issues": CODES[5:10],
        "kind": "regular",
    },
    "process_stopped": {
        "threshold": 4,
        "consecutive": 3,
        "k": 2,
        "assessed_on": "2025-06-17",
        "nc_issues": CODES[20:22],
        "kind": "unannounced",
    },
    "pnc_designated": {
        "threshold": 4,
        "consecutive": 3,
        "assessed_on": BASIS[-1][0],
        "nc_issues": BASIS[-1][1],
        "kind": "regular",
        "basis": [
            {"assessment_id": n + 1, "assessed_on": on, "nc_issues": codes}
            for n, (on, codes) in enumerate(BASIS)
        ],
    },
}
EVENTS = tuple(PAYLOADS)
EMAIL_KINDS = (*EVENTS, "inspectorate_referral")
#: (notice kind, recipient type) of every email an event sends
EMAILS = [(k, r) for k in EVENTS for r in ("factory", "buyer")] + [
    ("inspectorate_referral", "inspectorate")
]

#: what each language calls things, for the assertions
WORDS: dict[str, dict[str, Any]] = {
    "en": {
        "factory": "your factory",
        "buyer": "subscribing buyer",
        "k_of_n": "{k} of {n}",
        "warning": ["what happens next", "prevent designation", "fewer than 4", "bw portal"],
        "stopped": ["has stopped", "below the threshold of 4", "no longer at risk"],
        "buyer_asks": [
            "use your relationship with the factory",
            "prioritise these issues and report progress",
            "bw portal",
            "not terminate business",
        ],
        "factory_prevention": ["root causes", "bipartite committee", "advisory and training"],
        "consequences": [
            "not be admitted to a new cycle",
            "no longer visit the factory",
            "seminars and other shared learning events",
            "labour inspectorate",
            "prioritise the factory for inspection",
            "meeting with subscribing buyers and national stakeholders",
        ],
        "readmission": [
            "readmission",
            "including their underlying root causes",
            "copies of its improvement reports",
            "programme manager",
            "unannounced assessment",
        ],
    },
    "vi": {
        "factory": "quý nhà máy",
        "buyer": "nhãn hàng đăng ký",
        "k_of_n": "{k}/{n}",
        "warning": ["các bước tiếp theo", "tránh bị xác định", "ít hơn 4", "bw portal"],
        "stopped": ["đã dừng lại", "thấp hơn ngưỡng 4", "không còn nguy cơ"],
        "buyer_asks": [
            "sử dụng mối quan hệ với nhà máy",
            "ưu tiên khắc phục và báo cáo tiến độ",
            "bw portal",
            "không chấm dứt quan hệ kinh doanh",
        ],
        "factory_prevention": ["nguyên nhân gốc rễ", "ủy ban hai bên", "tư vấn và đào tạo"],
        "consequences": [
            "không được tiếp nhận vào chu kỳ dịch vụ mới",
            "không đến nhà máy",
            "hội thảo và các hoạt động chia sẻ kinh nghiệm",
            "thanh tra lao động",
            "ưu tiên thanh tra nhà máy",
            "các nhãn hàng đăng ký và các bên liên quan cấp quốc gia",
        ],
        "readmission": [
            "tái gia nhập",
            "bao gồm cả các nguyên nhân gốc rễ",
            "bản sao các báo cáo cải tiến",
            "giám đốc chương trình",
            "đánh giá không báo trước",
        ],
    },
}


# --- helpers ------------------------------------------------------------------------------------


def plan(
    kind: str,
    *,
    factory: Party = FACTORY,
    buyers: tuple[Party, ...] = BUYERS,
    cycle_end: date | None = CYCLE_END,
    payload: dict[str, Any] | None = None,
    country: Any = VN,
) -> list[Notice]:
    found, _ = notices.plan(
        f"{factory.id}/{kind}/a9",
        kind,
        PAYLOADS[kind] if payload is None else payload,
        factory,
        country,
        buyers,
        cycle_end,
    )
    return found


def email_notice(kind: str, recipient: str, **options: Any) -> Notice:
    """The first email notice of ``kind`` to a ``recipient`` type (the first buyer for buyers)."""
    event = "pnc_designated" if kind == "inspectorate_referral" else kind
    found = [
        n
        for n in plan(event, **options)
        if n.channel == "email" and n.kind == kind and n.recipient_type == recipient
    ]
    assert found, f"no {kind} email to a {recipient}"
    return found[0]


def slack_notice(kind: str, **options: Any) -> Notice:
    (found,) = [n for n in plan(kind, **options) if n.channel == "slack"]
    return found


def visible(markup: str) -> str:
    """The words of an HTML part, as a reader sees them."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def flat(text: str) -> str:
    return " ".join(text.split())


def shown_date(iso: str, language: str) -> str:
    return f"{iso[8:10]}/{iso[5:7]}/{iso[:4]}" if language == "vi" else iso


def count(n: int, language: str) -> str:
    if language == "vi":
        return f"{n} vấn đề"
    return f"{n} issue" if n == 1 else f"{n} issues"


def issue_name(code: str, language: str) -> str:
    issue = CATALOGUE[code]
    return issue.name_vi if language == "vi" and issue.name_vi else issue.name


def assessments_of(kind: str) -> list[tuple[str, list[str]]]:
    """The assessments a notice must list: the basis for designations, else the one assessed."""
    if kind in ("pnc_designated", "inspectorate_referral"):
        return [(on, list(codes)) for on, codes in BASIS]
    payload = PAYLOADS[kind]
    return [(payload["assessed_on"], list(payload["nc_issues"]))]


def all_emails() -> Iterator[tuple[str, str, str, tuple[str, ...]]]:
    """(kind, recipient, language id, languages) of every email the templates can produce."""
    for kind, recipient in EMAILS:
        yield kind, recipient, "en", ("en",)
        if recipient == "factory":
            yield kind, recipient, "vi", ("vi",)
            yield kind, recipient, "vi+en", ("vi", "en")


ALL_EMAILS = [pytest.param(k, r, v, id=f"{k}-{r}-{name}") for k, r, name, v in all_emails()]


# --- the content of each email ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "recipient", "language"),
    [(k, r, lang) for k, r in EMAILS for lang in ("en", "vi") if lang == "en" or r == "factory"],
)
def test_email_names_the_factory_the_assessments_and_every_issue(
    kind: str, recipient: str, language: str
) -> None:
    notice = email_notice(kind, recipient)
    subject, text, markup = mail.render(kind, [language], notice.payload)
    for part in (flat(text), visible(markup)):
        assert FACTORY.name in part and FACTORY.id in part
        for on, codes in assessments_of(kind):
            assert shown_date(on, language) in part
            assert count(len(codes), language) in part
            for code in codes:
                assert f"{code} {issue_name(code, language)}" in part
    assert "\n" not in subject and "\r" not in subject
    assert FACTORY.name in subject and FACTORY.id in subject


@pytest.mark.parametrize("language", ["en", "vi"])
@pytest.mark.parametrize("recipient", ["factory", "buyer"])
def test_warning_says_k_of_n_what_happens_next_and_how_to_prevent_designation(
    recipient: str, language: str
) -> None:
    notice = email_notice("at_risk_warning", recipient)
    words = WORDS[language]
    subject, text, markup = mail.render("at_risk_warning", [language], notice.payload)
    k_of_n = words["k_of_n"].format(k=2, n=3)
    assert k_of_n in subject
    for part in (flat(text).lower(), visible(markup).lower()):
        assert k_of_n in part
        for phrase in words["warning"]:
            assert phrase in part
        who = words["buyer_asks"] if recipient == "buyer" else words["factory_prevention"]
        for phrase in who:
            assert phrase in part


@pytest.mark.parametrize("language", ["en", "vi"])
@pytest.mark.parametrize("k", [1, 2])
def test_warning_counts_the_streak_it_was_given(k: int, language: str) -> None:
    payload = {**PAYLOADS["at_risk_warning"], "k": k}
    notice = email_notice("at_risk_warning", "factory", payload=payload)
    subject, text, markup = mail.render("at_risk_warning", [language], notice.payload)
    k_of_n = WORDS[language]["k_of_n"].format(k=k, n=3)
    assert k_of_n in subject and k_of_n in text and k_of_n in visible(markup)
    other = WORDS[language]["k_of_n"].format(k=3 - k, n=3)
    assert other not in subject


@pytest.mark.parametrize("language", ["en", "vi"])
@pytest.mark.parametrize("recipient", ["factory", "buyer"])
def test_process_stopped_says_it_stopped_because_the_count_is_below_the_threshold(
    recipient: str, language: str
) -> None:
    notice = email_notice("process_stopped", recipient)
    _, text, markup = mail.render("process_stopped", [language], notice.payload)
    words = WORDS[language]
    for part in (flat(text).lower(), visible(markup).lower()):
        for phrase in words["stopped"]:
            assert phrase in part
        assert words["k_of_n"].format(k=2, n=3) in part  # the streak that was stopped


@pytest.mark.parametrize("language", ["en", "vi"])
def test_process_stopped_with_no_issue_found_lists_none(language: str) -> None:
    payload = {**PAYLOADS["process_stopped"], "nc_issues": [], "k": 1}
    notice = email_notice("process_stopped", "factory", payload=payload)
    _, text, markup = mail.render("process_stopped", [language], notice.payload)
    assert count(0, language) in flat(text) and count(0, language) in visible(markup)
    assert "<ul" not in markup.split("<h3")[0]  # no empty list of issues


@pytest.mark.parametrize("language", ["en", "vi"])
@pytest.mark.parametrize("recipient", ["factory", "buyer"])
def test_designation_lists_consequences_and_the_readmission_path(
    recipient: str, language: str
) -> None:
    notice = email_notice("pnc_designated", recipient)
    _, text, markup = mail.render("pnc_designated", [language], notice.payload)
    words = WORDS[language]
    for part in (flat(text).lower(), visible(markup).lower()):
        for phrase in words["consequences"] + words["readmission"]:
            assert phrase in part
        assert shown_date(CYCLE_END.isoformat(), language) in part
        if recipient == "buyer":
            for phrase in words["buyer_asks"]:
                assert phrase in part


@pytest.mark.parametrize("language", ["en", "vi"])
def test_designation_without_a_known_cycle_end_still_states_the_consequences(
    language: str,
) -> None:
    notice = email_notice("pnc_designated", "factory", cycle_end=None)
    _, text, markup = mail.render("pnc_designated", [language], notice.payload)
    for part in (flat(text).lower(), visible(markup).lower()):
        for phrase in WORDS[language]["consequences"]:
            assert phrase in part
        assert "none" not in part.split()


@pytest.mark.parametrize("language", ["en", "vi"])
@pytest.mark.parametrize("kind", EVENTS)
def test_wording_differs_by_recipient(kind: str, language: str) -> None:
    words = WORDS[language]
    factory = email_notice(kind, "factory")
    buyer = email_notice(kind, "buyer")
    _, to_factory, _ = mail.render(kind, [language], factory.payload)
    _, to_buyer, _ = mail.render(kind, [language], buyer.payload)
    assert words["factory"] in to_factory.lower()
    assert words["factory"] not in to_buyer.lower()
    assert words["buyer"] in to_buyer.lower()
    assert ACME.name in to_buyer
    assert ACME.name not in to_factory


def test_referral_lists_each_assessment_of_the_basis_and_asks_for_priority_and_scope() -> None:
    notice = email_notice("inspectorate_referral", "inspectorate")
    assert notice.language == "vi"  # Viet Nam's inspectorate_language; the English part below
    subject, text, markup = mail.render("inspectorate_referral", ["en"], notice.payload)
    assert FACTORY.name in subject and FACTORY.id in subject
    lines = text.splitlines()
    for on, codes in BASIS:
        (heading,) = [n for n, line in enumerate(lines) if line.startswith(f"Assessment of {on}")]
        listed = lines[heading + 1 : heading + 1 + len(codes)]
        assert listed == [f"- {c} {issue_name(c, 'en')}" for c in codes]
    rows = re.findall(r"<tr>(.*?)</tr>", markup, re.S)
    for on, codes in BASIS:
        (row,) = [r for r in rows if f"<strong>{on}</strong>" in r]
        assert all(c in row for c in codes)
        assert not any(c in row for c in set(CODES) - set(codes))
    for part in (flat(text).lower(), visible(markup).lower()):
        assert "prioritise this factory for inspection" in part
        assert "include the non-compliance issues listed above in the scope of its visit" in part
        assert "as regulated by national law" in part


# --- languages ----------------------------------------------------------------------------------


def test_a_vietnamese_factory_reads_vietnamese_first_then_english() -> None:
    notice = email_notice("pnc_designated", "factory")
    row = row_for(notice)
    languages = mail.languages_for(row)
    assert languages == ["vi", "en"]
    subject, text, markup = mail.render(notice.kind, languages, notice.payload)
    assert "Thông báo" in subject and "Designated" not in subject  # the first language's subject
    assert text.index("Kính gửi") < text.index("English") < text.index("Dear management")
    assert markup.index("Kính gửi") < markup.index(">English<") < markup.index("Dear management")
    # each language is complete on its own: both parts list the whole basis
    vietnamese, english = text.split("English", 1)
    for on, codes in BASIS:
        assert shown_date(on, "vi") in vietnamese and on in english
        for code in codes:
            assert issue_name(code, "vi") in vietnamese
            assert issue_name(code, "en") in english


def test_buyers_get_english_only_and_viet_nams_inspectorate_vietnamese_with_english_below() -> None:
    for notice in plan("pnc_designated"):
        if notice.channel == "email" and notice.recipient_type == "buyer":
            assert mail.languages_for(row_for(notice)) == ["en"]
        if notice.channel == "email" and notice.recipient_type == "inspectorate":
            # issue #12: each country sets inspectorate_language; Viet Nam's is Vietnamese
            assert mail.languages_for(row_for(notice)) == ["vi", "en"]


# --- escaping and leftovers ---------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "recipient", "languages"), ALL_EMAILS)
def test_a_hostile_factory_name_is_escaped_in_html_and_verbatim_in_text(
    kind: str, recipient: str, languages: tuple[str, ...]
) -> None:
    factory = dataclasses.replace(FACTORY, name=HOSTILE)
    buyer = dataclasses.replace(ACME, name=HOSTILE.replace("Co", "Buyer"))
    notice = email_notice(kind, recipient, factory=factory, buyers=(buyer,))
    subject, text, markup = mail.render(kind, list(languages), notice.payload)
    assert "<script" not in markup and "<!channel>" not in markup
    assert str(escape(HOSTILE)) in markup
    assert HOSTILE in text
    assert HOSTILE in subject


@pytest.mark.parametrize(("kind", "recipient", "languages"), ALL_EMAILS)
@pytest.mark.parametrize("cycle_end", [CYCLE_END, None], ids=["cycle-end", "no-cycle-end"])
@pytest.mark.parametrize("assessment", ["regular", "unannounced"])
def test_no_template_leaves_none_or_template_syntax(
    kind: str,
    recipient: str,
    languages: tuple[str, ...],
    cycle_end: date | None,
    assessment: str,
) -> None:
    event = "pnc_designated" if kind == "inspectorate_referral" else kind
    payload = {**PAYLOADS[event], "kind": assessment}
    notice = email_notice(kind, recipient, cycle_end=cycle_end, payload=payload)
    subject, text, markup = mail.render(kind, list(languages), notice.payload)
    for part in (subject, text, markup):
        assert "None" not in part
        assert "{{" not in part and "{%" not in part and "}}" not in part
    assert "\n" not in subject


@pytest.mark.parametrize("kind", EVENTS)
def test_a_buyer_notice_never_names_another_buyer(kind: str) -> None:
    to_buyers = [n for n in plan(kind) if n.recipient_type == "buyer"]
    assert {n.recipient_id for n in to_buyers} == {b.id for b in BUYERS}
    for notice in to_buyers:
        me = next(b for b in BUYERS if b.id == notice.recipient_id)
        assert notice.addresses == me.emails
        subject, text, markup = mail.render(kind, ["en"], notice.payload)
        for other in BUYERS:
            if other is me:
                continue
            for part in (subject, text, markup):
                assert other.name not in part and other.id not in part
                assert not any(a in part for a in other.emails)


# --- a whole message ----------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "recipient"), EMAILS)
def test_build_makes_a_multipart_message_with_the_spec_headers(kind: str, recipient: str) -> None:
    notice = email_notice(kind, recipient)
    row = row_for(notice)
    message = parsed(mail.build(row, SETTINGS))
    assert message.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert message["Message-ID"] == notice.message_id("betterwork.example")
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["PNC-Notice"] == kind
    assert message["PNC-Factory"] == FACTORY.id
    assert [a.addr_spec for a in message["To"].addresses] == list(notice.addresses)
    subject = mail.render(kind, mail.languages_for(row), notice.payload)[0]
    assert message["Subject"].strip() == subject  # folding may leave a leading space
    text = message.get_body(("plain",)).get_content()
    body = message.get_body(("html",)).get_content()
    assert FACTORY.name in text and FACTORY.name in body
    # the same notice built again (a retry) keeps its Message-ID
    assert parsed(mail.build(row, SETTINGS))["Message-ID"] == message["Message-ID"]


def test_build_addresses_only_the_organisation_even_with_a_hostile_name() -> None:
    factory = dataclasses.replace(FACTORY, name=HOSTILE)
    for notice in plan("pnc_designated", factory=factory):
        if notice.channel != "email":
            continue
        message = parsed(mail.build(row_for(notice), SETTINGS))
        assert [a.addr_spec for a in message["To"].addresses] == list(notice.addresses)
        assert message["Cc"] is None and message["Bcc"] is None
        assert HOSTILE in message["Subject"]
        assert "<script" not in message.get_body(("html",)).get_content()
        assert HOSTILE in message.get_body(("plain",)).get_content()
        if notice.recipient_type == "factory":
            text = message.get_body(("plain",)).get_content()
            assert text.index("Kính gửi") < text.index("Dear management")


# --- Slack staff alerts -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", EVENTS)
def test_staff_alert_of_an_event_names_the_factory_date_issues_and_buyers(kind: str) -> None:
    notice = slack_notice(kind)
    out = render_slack(f"slack/alerts/{kind}.txt", **notice.payload)
    assert f"`{FACTORY.id}`" in out and FACTORY.name in out
    payload = PAYLOADS[kind]
    assert payload["assessed_on"] in out or kind == "pnc_designated"
    for b in BUYERS:
        assert b.name in out
    if kind == "pnc_designated":
        assert out.startswith(":rotating_light: *Urgent*")
        for on, codes in BASIS:
            assert f"{on} ({len(codes)})" in out
        assert CYCLE_END.isoformat() in out
        assert "Labour Inspectorate" in out
        assert f"`/pnc meeting held {FACTORY.id} YYYY-MM-DD`" in out
    else:
        assert not out.startswith(":rotating_light:")
        for code in payload["nc_issues"]:
            assert f"`{code}`" in out
        assert f"{len(payload['nc_issues'])} non-compliant public-reporting issue" in out
    if kind == "at_risk_warning":
        assert "At risk (2 of 3)" in out
    if kind == "process_stopped":
        assert "below the threshold of 4" in out and "(unannounced)" in out
    assert len(out.splitlines()) <= 6


def test_staff_alert_shows_the_warnings_of_the_plan() -> None:
    nowhere = dataclasses.replace(VN, inspectorate_emails=())
    silent = dataclasses.replace(FACTORY, emails=())
    notice = slack_notice("pnc_designated", country=nowhere, factory=silent, buyers=())
    out = render_slack("slack/alerts/pnc_designated.txt", **notice.payload)
    assert notice.payload["warnings"]
    for warning in notice.payload["warnings"]:
        assert f":warning: {warning}" in out
    assert "except as noted below" in out
    assert "no subscribing buyers" in out


@pytest.mark.parametrize("kind", EVENTS)
def test_staff_alert_of_an_event_escapes_a_hostile_name(kind: str) -> None:
    factory = dataclasses.replace(FACTORY, name=HOSTILE)
    buyer = dataclasses.replace(ACME, name="<@U123> & <!here>")
    notice = slack_notice(kind, factory=factory, buyers=(buyer,))
    out = render_slack(f"slack/alerts/{kind}.txt", **notice.payload)
    assert "<" not in out and ">" not in out
    assert '&lt;script&gt;alert(1)&lt;/script&gt; &amp; "Co" &lt;!channel&gt;' in out
    assert "&lt;@U123&gt; &amp; &lt;!here&gt;" in out


def test_history_changed_alert_lists_the_keys_and_points_to_the_history() -> None:
    alert = notices.staff_alert(
        "VN-1001/history_changed/abc",
        "history_changed",
        VN,
        None,
        {
            "factory": {"id": FACTORY.id, "name": HOSTILE},
            "unsupported": ["VN-1001/at_risk_warning/a3/k2"],
            "held": ["VN-1001/pnc_designated/a4"],
        },
        factory_id=FACTORY.id,
    )
    assert alert is not None
    out = render_slack("slack/alerts/history_changed.txt", **alert.payload)
    assert f"`/pnc history {FACTORY.id}`" in out and f"(`{FACTORY.id}`)" in out
    assert "`VN-1001/at_risk_warning/a3/k2`" in out and "`VN-1001/pnc_designated/a4`" in out
    assert "no notice was sent" in out
    assert "<" not in out and "&lt;!channel&gt;" in out
    assert not out.startswith(":rotating_light:")


@pytest.mark.parametrize(
    ("unsupported", "held"), [(["F/x/a1"], []), ([], ["F/y/a2"])], ids=["unsupported", "held"]
)
def test_history_changed_alert_omits_an_empty_list(unsupported: list[str], held: list[str]) -> None:
    out = render_slack(
        "slack/alerts/history_changed.txt",
        factory={"id": "F", "name": "F Co"},
        unsupported=unsupported,
        held=held,
        urgent=False,
    )
    assert ("no longer supported" in out) == bool(unsupported)
    assert ("held for review" in out) == bool(held)
    assert "None" not in out and "``" not in out


@pytest.mark.parametrize("factory", [{"id": FACTORY.id, "name": HOSTILE}, None], ids=["f", "none"])
def test_delivery_failed_alert_says_what_failed_to_whom_and_why(
    factory: dict[str, str] | None,
) -> None:
    out = render_slack(
        "slack/alerts/delivery_failed.txt",
        notice="pnc_designated",
        recipient="Nordic Wear AB <!channel>",
        factory=factory,
        error="550 5.1.1 <csr@nordicwear.example>:\nRecipient address rejected",
        attempts=3,
        urgent=True,
        event="delivery_failed",
    )
    assert out.startswith(":rotating_light: *Urgent*")
    assert "pnc designated" in out and "Nordic Wear AB &lt;!channel&gt;" in out
    assert "3 attempts" in out and "Recipient address rejected" in out
    assert (f"(`{FACTORY.id}`)" in out) == (factory is not None)
    assert "<" not in out and "None" not in out
    assert len(out.splitlines()) == 3


def test_delivery_failed_alert_built_like_the_dispatcher_names_the_recipient() -> None:
    alert = notices.staff_alert(
        "delivery_failed/7",
        "delivery_failed",
        VN,
        None,
        {
            "notice": "at_risk_warning",
            "recipient": NORD.name,
            "factory": {"id": FACTORY.id, "name": FACTORY.name},
            "error": "550 5.1.1 no such user",
            "attempts": 1,
        },
        factory_id=FACTORY.id,
    )
    assert alert is not None
    out = render_slack("slack/alerts/delivery_failed.txt", **alert.payload)
    assert f"to {NORD.name}" in out


def test_channel_paused_alert_says_which_channel_why_and_until_when() -> None:
    out = render_slack(
        "slack/alerts/channel_paused.txt",
        channel="email",
        reason="SMTP server refused the credentials <535>",
        until="2026-11-20T03:15:00+00:00",
        urgent=True,
    )
    assert out.startswith(":rotating_light: *Urgent*")
    assert "Email delivery paused" in out and "2026-11-20 03:15:00+00:00" in out
    assert "refused the credentials &lt;535&gt;" in out and "<" not in out
    assert "nothing is lost" in out


def test_every_email_and_alert_template_exists() -> None:
    env = mail.environment()
    for language, kinds in (("en", EMAIL_KINDS), ("vi", EVENTS)):
        for kind in kinds:
            for suffix in ("subject.txt", "txt", "html"):
                env.get_template(f"email/{language}/{kind}.{suffix}")
    slack = slack_environment()
    for kind in (*EVENTS, "history_changed", "delivery_failed", "channel_paused"):
        slack.get_template(f"slack/alerts/{kind}.txt")
