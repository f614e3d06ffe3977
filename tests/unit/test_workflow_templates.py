"""The templates of the readmission workflow, the buyer-call reminder and the staff reminders
(SPEC §2–§4, reference/pnc-framework-faq.txt): each says what the framework requires, in every
language it exists in; user-supplied text is escaped in HTML and in Slack; managers are pinged
where they must act; a buyer never sees another buyer; an unannounced visit is never announced.
Pure: no database.

Event contexts are built the way the use cases build them, with ``bot.notices.plan``; reminder
contexts the way ``scheduler/reminders.py`` builds them (``ReminderRunner.staff`` and the buyer
call handler); emails are rendered with ``bot.mail.render`` / ``bot.mail.build`` and alerts with
``bot.render.render_slack``.
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

from bot import agenda, mail, notices
from bot.countries import load_config
from bot.notices import Notice, Party
from bot.render import render_slack, slack_environment
from bot.settings import Settings
from bot.vocabulary import CallSubject, Channel
from tests.emails import parsed, row_for

SETTINGS = Settings(
    database_url="sqlite+aiosqlite:///x.db",
    inspectorate_email="insp@molisa.example",
    staff_channel="C0STAFF",
)
VN = load_config(SETTINGS).countries["VN"]
NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
CYCLE_END = date(2027, 6, 30)
HOSTILE = '<script>alert(1)</script> & "Co" <!channel>'
SLACK_HOSTILE = '&lt;script&gt;alert(1)&lt;/script&gt; &amp; "Co" &lt;!channel&gt;'
MANAGER = "U0MGR1"
MENTION = f"<@{MANAGER}>"

FACTORY = Party(
    "VN-1001",
    "Saigon Stitch Co.",
    ("hr@saigonstitch.example", "compliance@saigonstitch.example"),
    "vi",
)
ACME = Party("B-ACME", "Acme Outfitters", ("sourcing@acme.example",))
NORD = Party("B-NORD", "Nordic Wear AB", ("csr@nordicwear.example", "audit@nordicwear.example"))
BUYERS = (ACME, NORD)

EVIDENCE = [
    "https://drive.example/vn-1001/wages-2026.pdf?download=1&v=2",
    "https://drive.example/vn-1001/osh-root-causes",
]
REPORTS = ["https://drive.example/vn-1001/inspectorate-improvement-2026-03.pdf"]
APPLIED_ON, VISIT_ON, DECIDED_ON = "2026-09-01", "2026-10-15", "2026-11-20"
APPROVAL_NOTE = "Wage records and OSH committee minutes verified.\nKeep up the good work."
REJECTION_NOTE = "Overtime still exceeds the legal limit (verification visit of 2026-10-15)."

#: the application, as re-evaluation adds it to the event payload (``_application_facts``)
APPLICATION: dict[str, Any] = {
    "threshold": 4,
    "consecutive": 3,
    "application_id": 7,
    "applied_on": APPLIED_ON,
    "evidence": EVIDENCE,
    "reports": REPORTS,
    "visit_on": None,
    "decided_on": None,
    "note": None,
}
PAYLOADS: dict[str, dict[str, Any]] = {
    "readmission_applied": APPLICATION,
    "unannounced_scheduled": {**APPLICATION, "visit_on": VISIT_ON},
    "readmission_approved": {
        **APPLICATION,
        "visit_on": VISIT_ON,
        "decided_on": DECIDED_ON,
        "note": APPROVAL_NOTE,
    },
    "readmission_rejected": {
        **APPLICATION,
        "visit_on": VISIT_ON,
        "decided_on": DECIDED_ON,
        "note": REJECTION_NOTE,
    },
}
EVENTS = tuple(PAYLOADS)
DECISIONS = ("readmission_approved", "readmission_rejected")
#: (notice kind, recipient type) of every readmission email
EMAILS = [("readmission_applied", "factory")] + [
    (k, r) for k in DECISIONS for r in ("factory", "buyer")
]
#: who reads a decision in which language: factories in theirs, buyers in English
READERS = [("factory", "en"), ("factory", "vi"), ("buyer", "en")]
REMINDERS = (
    "readmission_review_reminder",
    "unannounced_visit_reminder",
    "stakeholder_meeting_reminder",
    "cycle_end_notice",
    "buyer_call_agenda",
)

WORDS: dict[str, dict[str, Any]] = {
    "en": {
        "applied": [
            "acknowledges receipt",
            "readmission to the better work programme",
            "including their underlying root causes",
            "improvement reports in response to visits by the labour inspectorate",
            "programme manager will review this evidence",
            "may conduct an unannounced assessment",
            "inform you of the decision",
        ],
        "no_reports": "no copies of improvement reports",
        "approved": [
            "was approved on",
            "readmitted to the better work programme",
            "a new count starts from the next better work assessment",
            "4 or more public reporting issues",
            "3 consecutive assessments",
        ],
        "note": "note from the programme manager",
        "rejected": [
            "was rejected on",
            "remains designated as persistently non-compliant",
            "not be admitted to a new cycle",
            "no longer visit the factory",
            "seminars and other shared learning events",
            "labour inspectorate",
            "prioritise the factory for inspection",
            "may apply for readmission again",
            "including their underlying root causes",
            "copies of its improvement reports",
        ],
        "cycle_ended": "service cycle ended on",
        "factory": "your factory",
        "buyer": "subscribing buyer",
    },
    "vi": {
        "applied": [
            "xác nhận đã nhận được đơn đề nghị tái gia nhập",
            "bao gồm cả các nguyên nhân gốc rễ",
            "báo cáo cải tiến mà nhà máy đã lập sau các đợt thanh tra của thanh tra lao động",
            "giám đốc chương trình better work sẽ xem xét",
            "đánh giá không báo trước",
            "thông báo quyết định",
        ],
        "no_reports": "chưa kèm theo bản sao báo cáo cải tiến",
        "approved": [
            "đã được chấp thuận vào ngày",
            "tái tiếp nhận vào chương trình better work",
            "bắt đầu lại từ lần đánh giá tiếp theo",
            "từ 4 vấn đề thuộc diện báo cáo công khai trở lên",
            "3 lần đánh giá liên tiếp",
        ],
        "note": "ý kiến của giám đốc chương trình",
        "rejected": [
            "đã bị từ chối vào ngày",
            "tiếp tục bị xác định là nhà máy không tuân thủ kéo dài",
            "không được tiếp nhận vào chu kỳ dịch vụ mới",
            "không đến nhà máy",
            "hội thảo và các hoạt động chia sẻ kinh nghiệm",
            "ưu tiên thanh tra nhà máy",
            "có thể nộp lại đơn đề nghị tái gia nhập",
            "bao gồm cả các nguyên nhân gốc rễ",
            "bản sao các báo cáo cải tiến",
        ],
        "cycle_ended": "đã kết thúc ngày",
        "factory": "quý nhà máy",
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
    managers: tuple[str, ...] = (MANAGER,),
) -> list[Notice]:
    found, _ = notices.plan(
        f"{factory.id}/{kind}/r7",
        kind,
        PAYLOADS[kind] if payload is None else payload,
        factory,
        VN,
        buyers,
        cycle_end,
        managers,
    )
    return found


def email_notice(kind: str, recipient: str, **options: Any) -> Notice:
    """The first email notice of ``kind`` to a ``recipient`` type (the first buyer for buyers)."""
    found = [
        n for n in plan(kind, **options) if n.channel == "email" and n.recipient_type == recipient
    ]
    assert found, f"no {kind} email to a {recipient}"
    return found[0]


def slack_notice(kind: str, **options: Any) -> Notice:
    (found,) = [n for n in plan(kind, **options) if n.channel == "slack"]
    return found


def alert(notice: Notice) -> str:
    """A staff notice as the dispatcher renders it."""
    return render_slack(f"slack/alerts/{notice.kind}.txt", **notice.payload)


def reminder_alert(
    kind: str,
    context: dict[str, Any],
    factory: dict[str, str] | None = None,
    managers: tuple[str, ...] = (MANAGER,),
) -> str:
    """A reminder alert with the context ``ReminderRunner.staff`` gives it."""
    if factory is None and kind != "buyer_call_agenda":
        factory = {"id": FACTORY.id, "name": FACTORY.name}
    notice = notices.staff_alert(
        f"reminder/{kind}",
        kind,
        VN,
        SETTINGS.staff_channel,
        {"factory": factory, "managers": list(managers), **context},
        factory_id=factory["id"] if factory else None,
    )
    assert notice is not None
    return alert(notice)


def visible(markup: str) -> str:
    """The words of an HTML part, as a reader sees them."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def flat(text: str) -> str:
    return " ".join(text.split())


def shown_date(iso: str, language: str) -> str:
    return f"{iso[8:10]}/{iso[5:7]}/{iso[:4]}" if language == "vi" else iso


def unmentioned(out: str) -> str:
    """A Slack message without the mentions the bot made itself."""
    return out.replace(MENTION, "")


def all_emails() -> Iterator[Any]:
    """(kind, recipient, languages) of every readmission email the templates can produce."""
    for kind, recipient in EMAILS:
        yield pytest.param(kind, recipient, ("en",), id=f"{kind}-{recipient}-en")
        if recipient == "factory":
            yield pytest.param(kind, recipient, ("vi",), id=f"{kind}-{recipient}-vi")
            yield pytest.param(kind, recipient, ("vi", "en"), id=f"{kind}-{recipient}-vi+en")


ALL_EMAILS = list(all_emails())


# --- the buyer call, planned as the reminder runner plans it ---------------------------------


@dataclasses.dataclass(frozen=True)
class AgendaRow:
    """A row of ``store.reminders.agenda``: a watched factory with one subscribing buyer."""

    id: str
    name: str
    country: str
    state: str
    streak: int
    last_on: date | None
    buyer_id: str | None
    buyer_name: str | None
    buyer_emails: tuple[str, ...] | None


HELD_AT = "2026-12-03 09:00"
ZERO = Party("B-ZERO", "Zero Apparel Ltd", ("buying@zero.example",))
HANOI = ("VN-2002", "Hanoi Knitwear JSC")
HUE = ("VN-3003", "Hue Garment 10")
DANANG = ("VN-4004", "Da Nang Denim")


def agenda_rows(
    saigon: str = FACTORY.name, acme: str = ACME.name, nord: str = NORD.name
) -> list[AgendaRow]:
    """Four watched factories, three with two subscribing buyers each, one with none."""

    def row(f: tuple[str, str], state: str, streak: int, on: date | None, b: Party | None) -> Any:
        return AgendaRow(
            f[0], f[1], "VN", state, streak, on, *((b.id, b.name, b.emails) if b else (None,) * 3)
        )

    saigon_f = (FACTORY.id, saigon)
    acme_p = dataclasses.replace(ACME, name=acme)
    nord_p = dataclasses.replace(NORD, name=nord)
    return [
        row(saigon_f, "at_risk", 2, date(2026, 5, 8), acme_p),
        row(saigon_f, "at_risk", 2, date(2026, 5, 8), nord_p),
        row(HANOI, "pnc", 3, date(2026, 6, 17), acme_p),
        row(HANOI, "pnc", 3, date(2026, 6, 17), ZERO),
        row(HUE, "readmission_review", 3, None, nord_p),
        row(HUE, "readmission_review", 3, None, ZERO),
        row(DANANG, "at_risk", 1, date(2026, 10, 2), None),
    ]


ISSUES = {FACTORY.id: ["CL-01", "OSH-02", "WT-01", "COMP-03", "FL-01"], HANOI[0]: ["WT-01"] * 6}
ISSUES[DANANG[0]] = ["OSH-01", "OSH-02", "OSH-03", "OSH-04"]


def buyer_call(rows: list[AgendaRow]) -> tuple[list[Notice], dict[str, Any]]:
    """The buyer notices and the staff agenda of a call, planned by ``bot.agenda.buyer_call``
    as the reminder runner plans them."""
    planned, _ = agenda.buyer_call(
        CallSubject(1), HELD_AT, rows, ISSUES, load_config(SETTINGS).countries, "C0STAFF"
    )
    emails = [n for n in planned if n.channel == Channel.EMAIL]
    (staff,) = [n for n in planned if n.channel == Channel.SLACK]
    return emails, staff.payload


def to_buyer(planned: list[Notice], buyer_id: str) -> Notice:
    (found,) = [n for n in planned if n.recipient_id == buyer_id]
    return found


# --- who is told --------------------------------------------------------------------------------


def test_an_unannounced_visit_is_told_to_staff_only() -> None:
    planned, warnings = notices.plan(
        f"{FACTORY.id}/unannounced_scheduled/r7",
        "unannounced_scheduled",
        PAYLOADS["unannounced_scheduled"],
        FACTORY,
        VN,
        BUYERS,
        CYCLE_END,
        (MANAGER,),
    )
    assert [(n.channel, n.recipient_type, n.addresses) for n in planned] == [
        ("slack", "staff", (VN.staff_channel,))
    ]
    assert warnings == []
    # not even a factory with no email address is worth a warning: it is never told
    silent = dataclasses.replace(FACTORY, emails=())
    assert notices.plan("k", "unannounced_scheduled", APPLICATION, silent, VN, BUYERS)[1] == []


def test_an_application_is_acknowledged_to_the_factory_only_and_announced_to_managers() -> None:
    planned = plan("readmission_applied")
    assert {(n.channel, n.recipient_type) for n in planned} == {
        ("email", "factory"),
        ("slack", "staff"),
    }
    assert slack_notice("readmission_applied").payload["managers"] == [MANAGER]


@pytest.mark.parametrize("kind", DECISIONS)
def test_a_decision_goes_to_the_factory_each_buyer_and_staff(kind: str) -> None:
    planned = plan(kind)
    assert sorted((n.channel, n.recipient_type, n.recipient_id) for n in planned) == [
        ("email", "buyer", ACME.id),
        ("email", "buyer", NORD.id),
        ("email", "factory", FACTORY.id),
        ("slack", "staff", VN.code),
    ]


# --- readmission emails -------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "recipient", "languages"), ALL_EMAILS)
@pytest.mark.parametrize("cycle_end", [CYCLE_END, None], ids=["cycle-end", "no-cycle-end"])
def test_readmission_email_renders_with_no_none_or_template_syntax(
    kind: str, recipient: str, languages: tuple[str, ...], cycle_end: date | None
) -> None:
    notice = email_notice(kind, recipient, cycle_end=cycle_end)
    subject, text, markup = mail.render(kind, list(languages), notice.payload)
    for part in (subject, text, markup):
        assert "None" not in part
        assert "{{" not in part and "{%" not in part and "}}" not in part and "{#" not in part
    assert "\n" not in subject and "\r" not in subject
    assert FACTORY.name in subject and FACTORY.id in subject
    for part in (flat(text), visible(markup)):
        assert FACTORY.name in part and FACTORY.id in part
        for language in languages:
            assert shown_date(APPLIED_ON, language) in part
            if kind in DECISIONS:
                assert shown_date(DECIDED_ON, language) in part


@pytest.mark.parametrize("language", ["en", "vi"])
def test_applied_acknowledges_the_date_lists_every_link_and_says_what_happens_next(
    language: str,
) -> None:
    notice = email_notice("readmission_applied", "factory")
    _, text, markup = mail.render("readmission_applied", [language], notice.payload)
    for part in (flat(text), visible(markup)):
        assert shown_date(APPLIED_ON, language) in part
        for url in EVIDENCE + REPORTS:
            assert url in part
        for phrase in WORDS[language]["applied"]:
            assert phrase in part.lower()
        assert WORDS[language]["no_reports"] not in part.lower()
    for url in EVIDENCE + REPORTS:  # each link can be followed, its & escaped in the attribute
        assert f'<a href="{escape(url)}"' in markup
    assert f"- {EVIDENCE[0]}" in text.splitlines()


@pytest.mark.parametrize("language", ["en", "vi"])
def test_applied_without_reports_asks_for_them_and_shows_no_empty_list(language: str) -> None:
    notice = email_notice("readmission_applied", "factory", payload={**APPLICATION, "reports": []})
    _, text, markup = mail.render("readmission_applied", [language], notice.payload)
    for part in (flat(text), visible(markup)):
        assert WORDS[language]["no_reports"] in part.lower()
        assert all(url in part for url in EVIDENCE)
    assert markup.count("<ul") == 2  # the evidence and what happens next: no empty list


def test_applied_never_reveals_an_unannounced_visit_date() -> None:
    payload = {**APPLICATION, "visit_on": VISIT_ON}  # a visit already in the application
    notice = email_notice("readmission_applied", "factory", payload=payload)
    assert mail.languages_for(row_for(notice)) == ["vi", "en"]
    subject, text, markup = mail.render("readmission_applied", ["vi", "en"], notice.payload)
    for part in (subject, text, markup):
        assert VISIT_ON not in part and shown_date(VISIT_ON, "vi") not in part
        assert "2026-10" not in part and "/10/2026" not in part


@pytest.mark.parametrize(("recipient", "language"), READERS)
def test_approved_says_readmitted_a_new_count_starts_and_gives_the_note(
    recipient: str, language: str
) -> None:
    notice = email_notice("readmission_approved", recipient)
    _, text, markup = mail.render("readmission_approved", [language], notice.payload)
    words = WORDS[language]
    for part in (flat(text), visible(markup)):
        for phrase in words["approved"] + [words["note"]]:
            assert phrase in part.lower()
        assert flat(APPROVAL_NOTE) in flat(part)
    assert APPROVAL_NOTE in text  # the manager's lines as written
    assert "white-space:pre-line" in markup


@pytest.mark.parametrize(("recipient", "language"), READERS)
@pytest.mark.parametrize("note", [None, ""], ids=["none", "empty"])
def test_approved_without_a_note_has_no_note_section(
    recipient: str, language: str, note: str | None
) -> None:
    payload = {**PAYLOADS["readmission_approved"], "note": note}
    notice = email_notice("readmission_approved", recipient, payload=payload)
    _, text, markup = mail.render("readmission_approved", [language], notice.payload)
    for part in (flat(text), visible(markup)):
        assert WORDS[language]["note"] not in part.lower()
    assert "None" not in text and "None" not in markup


@pytest.mark.parametrize(("recipient", "language"), READERS)
def test_rejected_gives_the_reason_the_consequences_and_how_to_apply_again(
    recipient: str, language: str
) -> None:
    notice = email_notice("readmission_rejected", recipient)
    _, text, markup = mail.render("readmission_rejected", [language], notice.payload)
    for part in (flat(text), visible(markup)):
        for phrase in WORDS[language]["rejected"]:
            assert phrase in part.lower()
        assert REJECTION_NOTE in part
        assert shown_date(CYCLE_END.isoformat(), language) in part
        assert WORDS[language]["cycle_ended"] not in part.lower()
    if recipient == "buyer":
        for phrase in ("use their relationship with the factory", "not terminate business"):
            assert phrase in flat(text).lower()


@pytest.mark.parametrize("language", ["en", "vi"])
def test_rejected_after_the_cycle_ended_says_it_ended(language: str) -> None:
    ended = date(2026, 10, 31)  # before the decision of 2026-11-20
    notice = email_notice("readmission_rejected", "factory", cycle_end=ended)
    _, text, markup = mail.render("readmission_rejected", [language], notice.payload)
    for part in (flat(text), visible(markup)):
        assert WORDS[language]["cycle_ended"] in part.lower()
        assert shown_date(ended.isoformat(), language) in part
        assert "until the end of the current cycle" not in part
        assert "cho đến khi kết thúc chu kỳ hiện tại" not in part


@pytest.mark.parametrize("language", ["en", "vi"])
def test_rejected_without_a_known_cycle_end_still_states_the_consequences(language: str) -> None:
    notice = email_notice("readmission_rejected", "factory", cycle_end=None)
    _, text, markup = mail.render("readmission_rejected", [language], notice.payload)
    for part in (flat(text), visible(markup)):
        for phrase in WORDS[language]["rejected"]:
            assert phrase in part.lower()
        assert "none" not in part.lower().split()
        assert "()" not in part


@pytest.mark.parametrize("kind", DECISIONS)
def test_decision_wording_differs_by_recipient(kind: str) -> None:
    _, to_factory, _ = mail.render(kind, ["en"], email_notice(kind, "factory").payload)
    _, to_buyer, _ = mail.render(kind, ["en"], email_notice(kind, "buyer").payload)
    assert "your factory" in to_factory.lower() and "your factory" not in to_buyer.lower()
    assert "subscribing buyer of" in to_buyer.lower()
    assert ACME.name in to_buyer and ACME.name not in to_factory


@pytest.mark.parametrize("kind", DECISIONS)
def test_a_buyer_decision_notice_never_names_another_buyer(kind: str) -> None:
    for notice in (n for n in plan(kind) if n.recipient_type == "buyer"):
        me = next(b for b in BUYERS if b.id == notice.recipient_id)
        assert notice.language == "en" and notice.addresses == me.emails
        subject, text, markup = mail.render(kind, ["en"], notice.payload)
        assert me.name in text
        for other in (b for b in BUYERS if b is not me):
            for part in (subject, text, markup):
                assert other.name not in part and other.id not in part
                assert not any(a in part for a in other.emails)


@pytest.mark.parametrize(("kind", "recipient", "languages"), ALL_EMAILS)
def test_hostile_text_is_escaped_in_html_and_verbatim_in_text(
    kind: str, recipient: str, languages: tuple[str, ...]
) -> None:
    factory = dataclasses.replace(FACTORY, name=HOSTILE)
    buyer = dataclasses.replace(ACME, name=HOSTILE.replace("Co", "Buyer"))
    link = "https://drive.example/x?a=1&b=<script>alert(2)</script>"
    payload = {**PAYLOADS[kind], "note": HOSTILE, "evidence": [link], "reports": [link]}
    notice = email_notice(kind, recipient, factory=factory, buyers=(buyer,), payload=payload)
    subject, text, markup = mail.render(kind, list(languages), notice.payload)
    assert "<script" not in markup and "<!channel>" not in markup
    assert str(escape(HOSTILE)) in markup
    assert HOSTILE in text and HOSTILE in subject
    if kind == "readmission_applied":
        assert str(escape(link)) in markup and link in text
    else:
        assert text.count(HOSTILE) >= 2 * len(languages)  # the factory's name and the note


def test_a_link_that_is_not_http_is_shown_but_not_linked() -> None:
    payload = {**APPLICATION, "evidence": ["javascript:alert(1)"], "reports": []}
    notice = email_notice("readmission_applied", "factory", payload=payload)
    _, _, markup = mail.render("readmission_applied", ["en"], notice.payload)
    assert "javascript:alert(1)" in markup and 'href="javascript' not in markup


@pytest.mark.parametrize(("kind", "recipient"), EMAILS)
def test_build_makes_a_readmission_message_with_the_spec_headers(kind: str, recipient: str) -> None:
    notice = email_notice(kind, recipient)
    row = row_for(notice)
    message = parsed(mail.build(row, SETTINGS))
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["PNC-Notice"] == kind and message["PNC-Factory"] == FACTORY.id
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"] == notice.message_id("betterwork.example")
    assert [a.addr_spec for a in message["To"].addresses] == list(notice.addresses)
    text = message.get_body(("plain",)).get_content()
    if recipient == "factory":  # Vietnamese first, English below
        assert text.index("Kính gửi") < text.index("Dear management")
    else:
        assert "Kính gửi" not in text


# --- the buyer call reminder --------------------------------------------------------------------


def test_buyer_call_reminder_lists_each_of_the_buyers_factories_with_label_date_and_count() -> None:
    planned, _ = buyer_call(agenda_rows())
    notice = to_buyer(planned, ACME.id)
    assert notice.addresses == ACME.emails and notice.factory_id is None
    subject, text, markup = mail.render("buyer_call_reminder", ["en"], notice.payload)
    assert subject == f"Quarterly buyer call {HELD_AT}: 2 factories at risk or designated"
    assert "Dear Acme Outfitters," in text
    assert f"- {FACTORY.id} {FACTORY.name}: At risk (2 of 3)" in text.splitlines()
    assert "Last assessment: 2026-05-08, 5 public reporting issues out of compliance" in text
    assert f"- {HANOI[0]} {HANOI[1]}: Persistently non-compliant" in text.splitlines()
    assert "Last assessment: 2026-06-17, 6 public reporting issues out of compliance" in text
    rows = re.findall(r"<tr>(.*?)</tr>", markup, re.S)
    cells = [[visible(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows]
    assert [FACTORY.id, FACTORY.name, "At risk (2 of 3)", "2026-05-08", "5"] in cells
    assert [HANOI[0], HANOI[1], "Persistently non-compliant", "2026-06-17", "6"] in cells
    assert HUE[0] not in text and DANANG[0] not in text  # not Acme's factories
    for part in (flat(text).lower(), visible(markup).lower()):
        assert f"quarterly call with buyer partners on {HELD_AT}" in part
        assert "use your relationship with these factories" in part
        assert "prioritise the publicly reported issues and report progress" in part
        assert "bw portal" in part and "not terminate business" in part


def test_buyer_call_reminder_shows_a_factory_never_assessed_and_a_single_factory() -> None:
    planned, _ = buyer_call(agenda_rows())
    notice = to_buyer(planned, NORD.id)
    subject, text, markup = mail.render("buyer_call_reminder", ["en"], notice.payload)
    assert "2 factories" in subject
    assert f"- {HUE[0]} {HUE[1]}: Readmission under review" in text.splitlines()
    assert "Last assessment: none recorded" in text
    assert "None" not in text and "None" not in markup
    only = dataclasses.replace(
        notice, payload={**notice.payload, "factories": [notice.payload["factories"][0]]}
    )
    subject, _, _ = mail.render("buyer_call_reminder", ["en"], only.payload)
    assert subject == f"Quarterly buyer call {HELD_AT}: 1 factory at risk or designated"


@pytest.mark.parametrize("buyer", [ACME, NORD, ZERO], ids=lambda b: b.id)
def test_buyer_call_reminder_never_names_another_buyer(buyer: Party) -> None:
    rows = agenda_rows()
    planned, _ = buyer_call(rows)
    assert {n.recipient_id for n in planned} == {ACME.id, NORD.id, ZERO.id}
    notice = to_buyer(planned, buyer.id)
    # every factory listed has two subscribing buyers; the payload carries neither's name
    listed = {f["id"] for f in notice.payload["factories"]}
    assert listed and all(
        sum(r.id == f and r.buyer_id is not None for r in rows) == 2 for f in listed
    )
    assert all("buyers" not in f for f in notice.payload["factories"])
    subject, text, markup = mail.render("buyer_call_reminder", ["en"], notice.payload)
    assert buyer.name in text
    for other in (b for b in (ACME, NORD, ZERO) if b is not buyer):
        for part in (subject, text, markup):
            assert other.name not in part and other.id not in part
            assert not any(a in part for a in other.emails)


def test_buyer_call_reminder_escapes_hostile_names() -> None:
    planned, _ = buyer_call(agenda_rows(saigon=HOSTILE, acme=HOSTILE.replace("Co", "Buyer")))
    notice = to_buyer(planned, ACME.id)
    _, text, markup = mail.render("buyer_call_reminder", ["en"], notice.payload)
    assert "<script" not in markup and "<!channel>" not in markup
    assert str(escape(HOSTILE)) in markup and HOSTILE in text
    assert str(escape(HOSTILE.replace("Co", "Buyer"))) in markup


def test_build_makes_a_buyer_call_message_without_a_factory_header() -> None:
    planned, _ = buyer_call(agenda_rows())
    notice = to_buyer(planned, ACME.id)
    message = parsed(mail.build(row_for(notice), SETTINGS))
    assert message["PNC-Notice"] == "buyer_call_reminder"
    assert message["PNC-Factory"] is None
    assert message["Subject"].strip().startswith(f"Quarterly buyer call {HELD_AT}")
    text = message.get_body(("plain",)).get_content()
    assert "pnc-bot for Better Work." in text  # no country: the layout leaves it out
    assert "Better Work ." not in text and "Better Work  " not in text


# --- Slack: event alerts ------------------------------------------------------------------------


def test_application_alert_mentions_managers_lists_the_links_and_says_how_to_proceed() -> None:
    out = alert(slack_notice("readmission_applied", managers=(MANAGER, "U0MGR2")))
    assert f"*{FACTORY.name}* (`{FACTORY.id}`)" in out.splitlines()[0]
    assert f"Applied on {APPLIED_ON}" in out
    assert "2 evidence links and 1 Inspectorate improvement report" in out
    assert EVIDENCE[0].replace("&", "&amp;") in out and EVIDENCE[1] in out and REPORTS[0] in out
    assert f"{MENTION}, <@U0MGR2>:" in out
    assert f"`/pnc readmission unannounced {FACTORY.id} YYYY-MM-DD`" in out
    assert f"`/pnc readmission approve {FACTORY.id} [note]`" in out
    assert f"`/pnc readmission reject {FACTORY.id} &lt;reason&gt;`" in out
    assert "must not be told" in out
    assert not out.startswith(":rotating_light:")


def test_application_alert_without_managers_says_no_one_can_decide() -> None:
    out = alert(slack_notice("readmission_applied", managers=()))
    assert "<@" not in out and "No one has the manager role" in out
    assert "<" not in out


@pytest.mark.parametrize("kind", DECISIONS)
def test_decision_alert_gives_dates_note_and_who_is_told(kind: str) -> None:
    out = alert(slack_notice(kind))
    assert f"*{FACTORY.name}* (`{FACTORY.id}`)" in out
    assert f"Application of {APPLIED_ON}" in out and DECIDED_ON in out
    assert f"Notices go to the factory and 2 subscribing buyers ({ACME.name}, {NORD.name})" in out
    if kind == "readmission_approved":
        assert flat(APPROVAL_NOTE) in out and "*Not at risk*" in out
        assert "4 or more non-compliant public-reporting issues in 3 consecutive" in out
    else:
        assert REJECTION_NOTE in out and "*Persistently non-compliant*" in out
        assert f"(ends {CYCLE_END.isoformat()})" in out and "apply again" in out
    assert "<" not in out  # nobody is pinged


def test_approval_alert_without_a_note_and_rejection_without_cycle_end() -> None:
    payload = {**PAYLOADS["readmission_approved"], "note": None}
    out = alert(slack_notice("readmission_approved", payload=payload, buyers=()))
    assert "note" not in out and "None" not in out and "no subscribing buyers" in out
    out = alert(slack_notice("readmission_rejected", cycle_end=None))
    assert "cycle end not recorded" in out and "None" not in out


def test_unannounced_alert_gives_the_date_and_forbids_telling_the_factory() -> None:
    out = alert(slack_notice("unannounced_scheduled"))
    assert f"Visit on {VISIT_ON}" in out and APPLIED_ON in out
    assert "Do not tell the factory in advance" in out
    assert "No notice goes to the factory" in out
    assert f"`/pnc assess {FACTORY.id} {VISIT_ON} code,code,…|none unannounced`" in out
    assert "<" not in out


@pytest.mark.parametrize("kind", EVENTS)
def test_event_alert_escapes_hostile_names_notes_and_links(kind: str) -> None:
    factory = dataclasses.replace(FACTORY, name=HOSTILE)
    buyer = dataclasses.replace(ACME, name="<@U123> & <!here>")
    link = "https://drive.example/x?a=1&b=<!channel>"
    payload = {**PAYLOADS[kind], "note": HOSTILE, "evidence": [link], "reports": [link]}
    out = alert(slack_notice(kind, factory=factory, buyers=(buyer,), payload=payload))
    assert "<" not in unmentioned(out) and ">" not in unmentioned(out)
    assert SLACK_HOSTILE in out
    if kind in DECISIONS:
        assert out.count(SLACK_HOSTILE) == 2  # the name and the note
        assert "&lt;@U123&gt; &amp; &lt;!here&gt;" in out
    if kind == "readmission_applied":
        assert "https://drive.example/x?a=1&amp;b=&lt;!channel&gt;" in out


@pytest.mark.parametrize("kind", EVENTS)
def test_only_the_application_alert_pings_the_managers(kind: str) -> None:
    out = alert(slack_notice(kind))
    assert (MENTION in out) == (kind == "readmission_applied")
    assert len(out.splitlines()) <= 8


# --- Slack: reminder alerts ---------------------------------------------------------------------

REVIEW = {
    "applied_on": APPLIED_ON,
    "days_open": 14,
    "evidence": EVIDENCE,
    "reports": REPORTS,
    "visit_on": None,
}
MEETING = {"designated_on": "2026-06-17", "buyers": [ACME.name, NORD.name]}
CONTEXTS: dict[str, dict[str, Any]] = {
    "readmission_review_reminder": REVIEW,
    "unannounced_visit_reminder": {"visit_on": VISIT_ON},
    "stakeholder_meeting_reminder": MEETING,
    "cycle_end_notice": {"cycle_end": CYCLE_END.isoformat()},
    "buyer_call_agenda": buyer_call(agenda_rows())[1],
}


def test_review_reminder_says_how_long_it_is_open_pings_managers_and_gives_the_commands() -> None:
    out = reminder_alert("readmission_review_reminder", REVIEW)
    first = out.splitlines()[0]
    assert "still open after 14 days" in first and f"*{FACTORY.name}* (`{FACTORY.id}`)" in first
    assert f"Applied on {APPLIED_ON}" in out
    assert "2 evidence links and 1 Inspectorate improvement report" in out
    assert EVIDENCE[1] in out and REPORTS[0] in out
    assert f"{MENTION}: please decide" in out
    assert f"`/pnc readmission approve {FACTORY.id} [note]`" in out
    assert f"`/pnc readmission reject {FACTORY.id} &lt;reason&gt;`" in out
    assert "no unannounced verification visit scheduled" in out
    assert f"`/pnc readmission unannounced {FACTORY.id} YYYY-MM-DD`" in out


def test_review_reminder_with_a_visit_shows_its_date_and_one_day_reads_right() -> None:
    out = reminder_alert(
        "readmission_review_reminder", {**REVIEW, "visit_on": VISIT_ON, "days_open": 1}
    )
    assert "still open after 1 day*" in out
    assert f"visit scheduled for {VISIT_ON}" in out
    assert "readmission unannounced" not in out
    out = reminder_alert("readmission_review_reminder", REVIEW, managers=())
    assert "<@" not in out and "No one has the manager role" in out


def test_visit_reminder_says_the_visit_is_tomorrow_and_not_to_tell_the_factory() -> None:
    out = reminder_alert("unannounced_visit_reminder", {"visit_on": VISIT_ON})
    assert "visit tomorrow" in out and VISIT_ON in out
    assert f"*{FACTORY.name}* (`{FACTORY.id}`)" in out
    assert "Do not tell the factory in advance" in out
    assert f"`/pnc assess {FACTORY.id} {VISIT_ON} code,code,…|none unannounced`" in out


def test_meeting_reminder_names_the_buyers_and_how_to_close_it() -> None:
    out = reminder_alert("stakeholder_meeting_reminder", MEETING)
    assert "Stakeholder meeting still to hold" in out
    assert "Designated persistently non-compliant on 2026-06-17" in out
    assert f"subscribing buyers ({ACME.name}, {NORD.name}) and national stakeholders" in out
    assert f"`/pnc meeting held {FACTORY.id} YYYY-MM-DD`" in out
    out = reminder_alert("stakeholder_meeting_reminder", {"designated_on": None, "buyers": []})
    assert "None" not in out and "has no subscribing buyers" in out
    assert "Designated persistently" not in out


def test_cycle_end_notice_says_access_ends_and_no_new_cycle() -> None:
    out = reminder_alert("cycle_end_notice", {"cycle_end": CYCLE_END.isoformat()})
    assert f"*{FACTORY.name}* (`{FACTORY.id}`)" in out and CYCLE_END.isoformat() in out
    assert "ends today" in out
    assert "seminars and shared learning events ends" in out
    assert "not admitted to a new service cycle" in out


def test_call_agenda_groups_the_factories_by_buyer() -> None:
    out = reminder_alert("buyer_call_agenda", CONTEXTS["buyer_call_agenda"])
    lines = out.splitlines()
    assert lines[0].startswith(f":telephone_receiver: *Quarterly buyer call {HELD_AT}*")
    assert "4 factories at risk or designated" in lines[0]
    headings = [n for n, line in enumerate(lines) if line.startswith("*") and line.endswith("*")]
    assert [lines[n] for n in headings] == [
        "*(no subscribing buyer)*",
        f"*{ACME.name}*",
        f"*{NORD.name}*",
        f"*{ZERO.name}*",
    ]
    acme = lines[headings[1] + 1 : headings[2]]
    assert acme == [
        f"• `{FACTORY.id}` {FACTORY.name} — *At risk (2 of 3)* — last assessment 2026-05-08: "
        "5 non-compliant public-reporting issues",
        f"• `{HANOI[0]}` {HANOI[1]} — *Persistently non-compliant* — last assessment "
        "2026-06-17: 6 non-compliant public-reporting issues",
    ]
    nord = lines[headings[2] + 1 : headings[3]]
    assert (
        f"• `{HUE[0]}` {HUE[1]} — *Readmission under review* — last assessment none recorded"
        in nord
    )
    assert f"`{DANANG[0]}`" in lines[headings[0] + 1]
    assert "None" not in out and "prioritise the publicly reported issues" in out


def test_call_agenda_with_no_factory_says_so() -> None:
    _, agenda = buyer_call([])
    out = reminder_alert("buyer_call_agenda", agenda)
    assert out.startswith(f":telephone_receiver: *Quarterly buyer call {HELD_AT}*")
    assert "no factory is at risk of, or designated as, persistently non-compliant" in out
    assert len(out.splitlines()) == 1


@pytest.mark.parametrize("kind", REMINDERS)
def test_reminder_alert_for_a_factory_no_longer_registered_still_renders(kind: str) -> None:
    notice = notices.staff_alert(
        "k", kind, None, "C0STAFF", {"factory": None, "managers": [MANAGER], **CONTEXTS[kind]}
    )
    assert notice is not None
    out = alert(notice)
    assert "None" not in out and "``" not in out
    if kind != "buyer_call_agenda":
        assert "a factory no longer registered" in out


@pytest.mark.parametrize("kind", REMINDERS)
def test_reminder_alert_escapes_hostile_text(kind: str) -> None:
    factory = {"id": FACTORY.id, "name": HOSTILE}
    link = "https://drive.example/x?a=1&b=<!channel>"
    context = {
        "readmission_review_reminder": {**REVIEW, "evidence": [link]},
        "stakeholder_meeting_reminder": {**MEETING, "buyers": ["<@U123> & <!here>"]},
        "buyer_call_agenda": buyer_call(agenda_rows(saigon=HOSTILE, acme="<@U123> & <!here>"))[1],
    }.get(kind, CONTEXTS[kind])
    out = reminder_alert(kind, context, factory=factory if kind != "buyer_call_agenda" else None)
    assert "<" not in unmentioned(out) and ">" not in unmentioned(out)
    assert SLACK_HOSTILE in out
    if kind in ("stakeholder_meeting_reminder", "buyer_call_agenda"):
        assert "&lt;@U123&gt; &amp; &lt;!here&gt;" in out
    if kind == "readmission_review_reminder":
        assert "https://drive.example/x?a=1&amp;b=&lt;!channel&gt;" in out


@pytest.mark.parametrize("kind", REMINDERS)
def test_only_the_review_reminder_pings_the_managers(kind: str) -> None:
    out = reminder_alert(kind, CONTEXTS[kind])
    assert (MENTION in out) == (kind == "readmission_review_reminder")
    assert not out.startswith(":rotating_light:")


def test_every_new_template_exists() -> None:
    env = mail.environment()
    for language, kinds in (
        ("en", (*EVENTS[:1], *DECISIONS, "buyer_call_reminder")),
        ("vi", (*EVENTS[:1], *DECISIONS)),
    ):
        for kind in kinds:
            for suffix in ("subject.txt", "txt", "html"):
                env.get_template(f"email/{language}/{kind}.{suffix}")
    slack = slack_environment()
    for kind in (*EVENTS, *REMINDERS):
        slack.get_template(f"slack/alerts/{kind}.txt")
