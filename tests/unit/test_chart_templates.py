"""The history chart in the words people read: the bars of every charted email (HTML built from
a table, and text), in English and Vietnamese, for the factory, each buyer and the Inspectorate;
the one-line sparkline of Slack and the console with its words beside it; and old notices,
written before the chart, rendered as they were. Pure: payloads are made by the use cases' own
``reevaluation.payload`` from a history the policy evaluates."""

from __future__ import annotations

from datetime import date
from html.parser import HTMLParser
from typing import Any

import pytest

from bot import chart, mail, notices, policy
from bot.countries import load_config
from bot.notices import Party
from bot.policy import AssessmentRecord, EventKind
from bot.render import slack_environment, text_environment
from bot.settings import Settings
from bot.usecases.reevaluation import payload

SETTINGS = Settings(
    database_url="sqlite+aiosqlite:///x.db",
    inspectorate_email="insp@molisa.example",
    staff_channel="C0STAFF",
)
VN = load_config(SETTINGS).countries["VN"]
CODES = sorted(i.code for i in VN.catalogue)
FACTORY = Party("VN-1001", "Saigon Stitch Co.", ("hr@saigonstitch.example",), "vi")
BUYERS = (Party("B-ACME", "Acme Outfitters", ("sourcing@acme.example",)),)
#: (day, count, kind): an advisory visit among them, and two assessments before public reporting
HISTORY = [
    (date(2016, 3, 1), 7, "regular"),
    (date(2017, 3, 1), 2, "regular"),
    (date(2019, 3, 1), 1, "regular"),
    (date(2020, 3, 1), 5, "regular"),
    (date(2020, 9, 1), 6, "advisory"),
    (date(2021, 3, 1), 3, "regular"),
    (date(2022, 3, 1), 4, "regular"),
    (date(2023, 3, 1), 6, "regular"),
    (date(2024, 3, 1), 8, "regular"),
]
RECORDS = [
    AssessmentRecord(i + 1, on, frozenset(CODES[:n]), kind)
    for i, (on, n, kind) in enumerate(HISTORY)
]
EVALUATION = policy.evaluate(VN.rules, FACTORY.id, RECORDS)
BY_ID = {a.id: a for a in RECORDS}
#: the latest event of each kind the history gives rise to
EVENTS = {e.kind: e for e in EVALUATION.events}


class Balanced(HTMLParser):
    """Every element closed in order (void elements aside), and the document's text."""

    VOID = frozenset({"br", "img", "meta", "hr", "input", "link"})

    def __init__(self, document: str) -> None:
        super().__init__()
        self.open: list[str] = []
        #: the widths of the cells of each bar (cells 14 pixels high), in order
        self.bars: list[list[int]] = []
        self.text: list[str] = []
        self.feed(document)
        self.close()
        assert self.open == [], f"not closed: {self.open}"
        self.bars = [b for b in self.bars if b]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.open.append(tag)
        found = dict(attrs)
        if tag == "tr":
            self.bars.append([])
        elif tag == "td" and found.get("height") == "14":
            self.bars[-1].append(int(found["width"] or 0))

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def emails(kind: EventKind, facts: dict[str, Any]) -> list[tuple[str, list[str], str, str]]:
    """(recipient, languages, text, html) of each email of an event."""
    planned, _ = notices.plan(f"VN-1001/{kind}", kind.value, facts, FACTORY, VN, BUYERS)
    found = []
    for n in planned:
        if n.channel != "email":
            continue
        languages = ["vi", "en"] if n.recipient_type in mail.OWN_LANGUAGE else ["en"]
        _, text, html = mail.render(n.kind, languages, n.payload)
        found.append((str(n.recipient_type), languages, text, html))
    return found


def test_the_history_gives_rise_to_every_charted_event_but_the_decisions() -> None:
    assert {EventKind.AT_RISK_WARNING, EventKind.PROCESS_STOPPED, EventKind.PNC_DESIGNATED} <= set(
        EVENTS
    )


@pytest.mark.parametrize(
    "kind", [EventKind.AT_RISK_WARNING, EventKind.PROCESS_STOPPED, EventKind.PNC_DESIGNATED]
)
def test_every_charted_email_shows_every_bar_in_html_and_text(kind: EventKind) -> None:
    event = EVENTS[kind]
    facts = payload(event, BY_ID, EVALUATION)
    c = chart.thawed(facts["chart"])
    assert c.bars[-1].assessed_on == BY_ID[event.assessment_id or 0].assessed_on
    found = emails(kind, facts)
    assert {r for r, *_ in found} >= {"factory", "buyer"}
    for recipient, languages, text, html in found:
        parsed = Balanced(html)
        words = " ".join(" ".join(parsed.text).split())
        for language in languages:
            heading = "Lịch sử đánh giá" if language == "vi" else "Assessment history"
            assert heading in html, (recipient, language)
            assert heading.upper() in text
        for bar in c.bars:
            iso = bar.assessed_on.isoformat()
            assert iso in words and iso in text  # the English part, at least
            assert bar.text in text
        # a row of cells per bar, in each language, hidden from screen readers (words beside)
        assert parsed.bars == [[s.width for s in b.segments] for b in c.bars] * len(languages)
        assert html.count('aria-hidden="true" cellspacing') == len(c.bars) * len(languages)


def test_the_words_beside_each_bar_say_what_it_shows() -> None:
    facts = payload(EVENTS[EventKind.PNC_DESIGNATED], BY_ID, EVALUATION)
    (_, _, text, html), *_ = [e for e in emails(EventKind.PNC_DESIGNATED, facts) if e[0] == "buyer"]
    words = " ".join(" ".join(Balanced(html).text).split())
    assert "2017-03-01" in words
    assert "2 issues: not counted (before public reporting began)" in words
    assert "6 issues: not counted (advisory visit)" in words
    assert "1 issue: passes" in words and "8 issues: fails" in words
    assert "4 or more: fails" in words and "the threshold: 4" in words
    # eight shown, the first of the nine left out
    assert "1 earlier assessment not shown." in words and "2016-03-01" not in words
    assert "(1 earlier assessment not shown.)" in text


def test_the_referral_shows_the_chart_in_vietnamese_with_english_below() -> None:
    facts = payload(EVENTS[EventKind.PNC_DESIGNATED], BY_ID, EVALUATION)
    ((_, languages, text, html),) = [
        e for e in emails(EventKind.PNC_DESIGNATED, facts) if e[0] == "inspectorate"
    ]
    assert languages == ["vi", "en"]
    assert html.index("Lịch sử đánh giá") < html.index("Assessment history")
    assert text.index("LỊCH SỬ ĐÁNH GIÁ") < text.index("ASSESSMENT HISTORY")
    vi = text[: text.index("ASSESSMENT HISTORY")]
    assert "01/03/2024" in vi and "8 vấn đề: từ ngưỡng trở lên" in vi
    assert "6 vấn đề: không được tính (chuyến thăm tư vấn)" in vi
    assert "1 vấn đề: dưới ngưỡng" in vi and "Ngưỡng: 4 vấn đề" in vi
    assert "1 đợt đánh giá trước đó không được thể hiện" in html
    Balanced(html)


def test_the_decisions_are_charted_up_to_their_day() -> None:
    app = policy.ReadmissionRecord(1, date(2024, 6, 1), None, date(2024, 9, 1), False)
    evaluation = policy.evaluate(VN.rules, FACTORY.id, RECORDS, [app])
    (event,) = [e for e in evaluation.events if e.kind is EventKind.READMISSION_REJECTED]
    facts = payload(event, BY_ID, evaluation) | {
        "note": "Overtime records incomplete.",
        "applied_on": "2024-06-01",
        "decided_on": "2024-09-01",
    }
    for _, _, text, html in emails(EventKind.READMISSION_REJECTED, facts):
        assert "2024-03-01" in text and "Assessment history" in html
        Balanced(html)


@pytest.mark.parametrize("kind", sorted(chart.CHARTED))
def test_a_notice_written_before_the_chart_renders_as_it_did(kind: str) -> None:
    facts: dict[str, Any] = {
        "threshold": 4,
        "consecutive": 3,
        "k": 1,
        "assessed_on": "2024-03-01",
        "kind": "regular",
        "nc_issues": CODES[:4],
        "basis": [{"assessment_id": 1, "assessed_on": "2024-03-01", "nc_issues": CODES[:4]}],
        "application_id": 1,
        "applied_on": "2024-06-01",
        "decided_on": "2024-09-01",
        "note": "n",
    }
    for _, _, text, html in emails(EventKind(kind), facts):
        assert "Assessment history" not in html and "ASSESSMENT HISTORY" not in text
        assert "Lịch sử đánh giá" not in html
        Balanced(html)


SPARK = '{% from "text/chart.txt" import sparkline %}{{ sparkline(c) }}'


@pytest.mark.parametrize("env", [text_environment, slack_environment])
def test_the_sparkline_has_its_words_beside_it(env: Any) -> None:
    c = chart.chart(
        [
            chart.Point(date(2024, 1, 1), 2),
            chart.Point(date(2025, 1, 1), 5),
            chart.Point(date(2025, 6, 1), 1, "advisory"),
            chart.Point(date(2026, 1, 1), 7),
        ],
        4,
    )
    line = env().from_string(SPARK).render(c=c)
    assert "\n" not in line
    assert line == (
        f"{c.sparkline}  2 → 5 → 1 → 7 issues — threshold 4; 4 assessments, oldest first: "
        "passes, fails, not counted (advisory visit), fails"
    )


def test_the_sparkline_says_how_many_assessments_it_leaves_out() -> None:
    points = [chart.Point(date(2010 + i, 1, 1), i % 6) for i in range(11)]
    line = text_environment().from_string(SPARK).render(c=chart.chart(points, 4))
    assert "last 8 of 11 assessments" in line
    single = chart.chart([chart.Point(date(2024, 1, 1), 1)], 4)
    line = text_environment().from_string(SPARK).render(c=single)
    assert line.endswith("  1 issue — threshold 4; 1 assessment: passes")
