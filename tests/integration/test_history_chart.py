"""The history chart in the notices (#13), on SQLite and PostgreSQL, over a real SMTP server: a
designation's buyer emails, the factory's and the Inspectorate's referral (Vietnamese, English
below) show the factory's assessments as bars built from a table, with their words; the chart's
data is kept in the event's payload when it is recorded, so the emails show what was true then;
a historic import, notifying nobody, keeps none; and a notice written before the chart existed
is still delivered, without one."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from sqlmodel import col, select

from bot.usecases import assessments, imports, review
from bot.usecases.core import Core
from store.models import OutboxMessage, PncEvent
from tests.conftest import ASSESSOR, MANAGER, FrozenClock
from tests.fakes import SmtpServer
from tests.integration.helpers import FAIL4, PASS, dispatcher, drain, smtp_transport

#: (day, issues, kind): a passing assessment, an advisory visit, then three failing ones
HISTORY = (
    ("2023-01-10", PASS, None),
    ("2023-06-10", FAIL4 + ",WT-02", "advisory"),
    ("2024-01-10", FAIL4, None),
    ("2025-01-10", FAIL4 + ",WT-02", None),
    ("2026-01-10", FAIL4, None),
)


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


async def designate(core: Core) -> None:
    for day, issues, kind in HISTORY:
        await assessments.record(core, ASSESSOR, "VN-1", day, issues, kind)


async def events(core: Core) -> list[PncEvent]:
    async with core.db.transaction() as s:
        return list((await s.exec(select(PncEvent).order_by(col(PncEvent.id)))).all())


async def test_a_designations_emails_show_the_history_as_bars(
    core: Core, clock: FrozenClock, registered: None, smtp: SmtpServer
) -> None:
    await designate(core)
    (designation,) = [e for e in await events(core) if e.kind == "pnc_designated"]
    assert designation.payload["chart"] == {
        "threshold": 4,
        "points": [
            ["2023-01-10", 1],
            ["2023-06-10", 5, "advisory"],
            ["2024-01-10", 4],
            ["2025-01-10", 5],
            ["2026-01-10", 4],
        ],
        "left_out": 0,
    }
    await drain(dispatcher(core, smtp_transport(smtp)))
    sent = [m.message for m in smtp.received if m.message["PNC-Notice"] == "pnc_designated"]
    buyers = [m for m in sent if "acme" in str(m["To"]) or "nordic" in str(m["To"])]
    assert len(buyers) == 2
    for message in buyers:
        text, html = parts(message)
        assert "Assessment history" in html and "Lịch sử đánh giá" not in html
        assert html.count('role="presentation" aria-hidden="true"') == len(HISTORY)
        for day, *_ in HISTORY:
            assert day in html and day in text
        assert "1 issue: passes" in html and "5 issues: not counted (advisory visit)" in html
        assert html.count("4 issues: fails") == 2 and "5 issues: fails" in html
        assert "ASSESSMENT HISTORY" in text and "the threshold: 4" in html
    (factory,) = [m for m in sent if "stitch" in str(m["To"])]
    text, html = parts(factory)
    assert html.index("Lịch sử đánh giá") < html.index("Assessment history")
    assert "10/01/2026" in text and "4 vấn đề: từ ngưỡng trở lên" in text


async def test_the_referral_shows_the_chart_in_vietnamese_with_english_below(
    core: Core, clock: FrozenClock, registered: None, smtp: SmtpServer
) -> None:
    await designate(core)
    await drain(dispatcher(core, smtp_transport(smtp)))
    (referral,) = [
        m.message for m in smtp.received if m.message["PNC-Notice"] == "inspectorate_referral"
    ]
    text, html = parts(referral)
    assert html.index("Lịch sử đánh giá") < html.index("Assessment history")
    assert html.count('role="presentation" aria-hidden="true"') == 2 * len(HISTORY)
    assert "5 vấn đề: không được tính (chuyến thăm tư vấn)" in text
    assert text.index("LỊCH SỬ ĐÁNH GIÁ") < text.index("ASSESSMENT HISTORY")


async def test_a_historic_import_keeps_no_chart_and_one_that_notifies_does(
    core: Core, registered: None, tmp_path: Path
) -> None:
    rows = "".join(f"VN-1,{day},{issues.replace(',', ';')}\n" for day, issues, _ in HISTORY[2:])
    csv = tmp_path / "assessments.csv"
    csv.write_text("factory_id,assessed_on,nc_issues\n" + rows, encoding="utf-8")
    await imports.run(core, "assessments", csv, MANAGER)
    found = await events(core)
    assert [e.kind for e in found][-1] == "pnc_designated"
    assert all("chart" not in e.payload for e in found)
    # an import that notifies: its events keep their chart
    other = tmp_path / "more.csv"
    other.write_text(
        "factory_id,name,country,emails,language,cycle_end\n"
        "VN-2,Hanoi Knit,VN,hr@knit.example,vi,\n",
        encoding="utf-8",
    )
    await imports.run(core, "factories", other, MANAGER)
    csv.write_text(
        "factory_id,assessed_on,nc_issues\nVN-2,2025-03-01,CO-01;CO-02;OS-01;WT-01\n",
        encoding="utf-8",
    )
    await imports.run(core, "assessments", csv, MANAGER, notify=True)
    (warning,) = [e for e in await events(core) if e.factory_id == "VN-2"]
    assert warning.payload["chart"]["points"] == [["2025-03-01", 4]]


async def test_a_notice_written_before_the_chart_is_delivered_without_one(
    core: Core, clock: FrozenClock, registered: None, smtp: SmtpServer
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    async with core.db.transaction(write=True) as s:
        rows = list((await s.exec(select(OutboxMessage))).all())
        for row in rows:
            row.payload = {k: v for k, v in row.payload.items() if k != "chart"}
            s.add(row)
    assert all("chart" not in r.payload for r in rows)
    await drain(dispatcher(core, smtp_transport(smtp)))
    assert len(smtp.received) == 3
    for received in smtp.received:
        text, html = parts(received.message)
        assert "2026-01-10" in text or "10/01/2026" in text
        assert "Assessment history" not in html and "ASSESSMENT HISTORY" not in text


async def test_a_released_event_is_charted_from_the_history_as_it_is_then(
    core: Core, clock: FrozenClock, registered: None
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    async with core.db.transaction(write=True) as s:  # the warning "1 of 3" reached everyone
        for row in (await s.exec(select(OutboxMessage))).all():
            row.status = "sent"
            s.add(row)
    # an earlier failing assessment comes in late: the new warnings wait for review
    await assessments.record(core, ASSESSOR, "VN-1", "2025-12-10", FAIL4)
    (held,) = [e for e in await events(core) if e.notice == "held" and e.key.endswith("/k2")]
    await review.release(core, MANAGER, held.id or 0)
    async with core.db.transaction() as s:
        stmt = select(OutboxMessage).where(OutboxMessage.event_id == held.id)
        notices = list((await s.exec(stmt)).all())
    assert {n.recipient_type for n in notices} >= {"factory", "buyer"}
    for notice in notices:
        assert notice.payload["chart"] == {
            "threshold": 4,
            "points": [["2025-12-10", 4], ["2026-01-10", 4]],
            "left_out": 0,
        }
