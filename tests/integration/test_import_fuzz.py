"""Fuzzing the CSV importer (``bot.usecases.imports.run``) with files of every kind.

Whatever the file holds — valid and invalid cells, a wrong header, quoted commas and newlines,
bytes that are not UTF-8 — the import either succeeds with an ``ImportReport`` or is refused
with a ``PncError`` that names the line of every bad row, and a refused import writes nothing.
"""

from __future__ import annotations

import asyncio
import csv
import io
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.csvfile import COLUMNS, KINDS
from bot.errors import ImportRejected, PncError
from bot.usecases import imports
from bot.usecases.core import Core
from bot.usecases.imports import ImportReport
from store.db import Database
from store.models import (
    Assessment,
    AuditEntry,
    Buyer,
    Factory,
    OutboxMessage,
    PncEvent,
    Subscription,
)
from tests.conftest import EXAMPLES, MANAGER
from tests.unit.test_parse_fuzz import ASSESSED_ON, BUYER_IDS, CODES, FACTORY_IDS

FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
    max_examples=40,
)
TABLES = (Factory, Buyer, Subscription, Assessment, PncEvent, OutboxMessage)

# --- cells --------------------------------------------------------------------------------------

JUNK = st.one_of(
    st.just(""),
    st.just(" "),
    st.text(max_size=15),
    st.text(st.characters(codec="ascii"), max_size=15),
    st.sampled_from(
        [
            "x" * 300,
            '"',
            'a "quoted" word',
            "a,b",
            "line\nbreak",
            "cr\rlf\r\n",
            "tab\there",
            "\x00",
            "nul\x00inside",
            "\x1b[31mred",
            "\x85",
            "\u2028",
            "\ufeff",
            "=cmd|' /C calc'!A0",
            "NULL",
            "None",
            "-",
        ]
    ),
)


Cell = tuple[st.SearchStrategy[str], st.SearchStrategy[str]]


def _cell(valid: st.SearchStrategy[str], *invalid: str) -> Cell:
    """A column's valid values, and its known-bad ones mixed with junk."""
    return valid, st.one_of(st.sampled_from(invalid), JUNK) if invalid else JUNK


def _ids(known: tuple[str, ...], prefix: str, new: bool) -> Cell:
    """Ids already stored (any case), and new ones where the kind may add them."""
    stored = st.sampled_from(known)
    valid = [stored, stored.map(str.lower)]
    if new:
        valid.append(st.integers(1, 99_999).map(lambda n: f"{prefix}-{n}"))
    return _cell(
        st.one_of(*valid),
        f"{prefix}-{'9' * 6}",
        f"{prefix}-",
        f"{prefix} 1",
        "é-1",
        "A" * 65,
        f"{known[0]};{known[-1]}",
    )


DAYS = st.one_of(
    st.sampled_from(ASSESSED_ON),
    st.builds(
        lambda y, m, d: f"{y:04d}-{m:02d}-{d:02d}",
        st.integers(2015, 2031),
        st.integers(1, 12),
        st.integers(1, 28),
    ),
)
DATES = _cell(
    DAYS,
    "1999-12-31",
    "2099-01-01",
    "2025-02-30",
    "2025-13-01",
    "25-1-1",
    "2025/01/05",
    "２０２５-０１-０５",
    " 2025-01-05 ",
)
_CODE = st.one_of(st.sampled_from(CODES), st.sampled_from(["XX-99", "co-01", "", " none "]))
CODE_LISTS = _cell(
    st.one_of(
        st.just("none"),
        st.tuples(
            st.lists(_CODE, min_size=1, max_size=5), st.sampled_from([";", ",", "; ", " "])
        ).map(lambda t: t[1].join(t[0])),
    ),
    "CO-01;;junk;",
    "none;CO-01",
    ";",
)
EMAILS = _cell(
    st.lists(
        st.sampled_from(["hr@x.example", "A@X.EXAMPLE", "a.b+c@y.example", "<z@z.example>"]),
        min_size=1,
        max_size=3,
    ).map(";".join),
    "not-an-email",
    "a@",
    "@b.example",
    "a@x.example;junk",
    ";;",
    "a@" + "x" * 300 + ".example",
)
NAMES = _cell(
    st.sampled_from(["Saigon Stitch Co.", "Công ty May 10", "Acme, Inc.", 'The "Best" Ltd']),
    "",
    "   ",
    "x" * 201,
    "two\nlines",
)
#: each kind's cells; ids may be new only where the kind adds them
CELLS: dict[str, Cell] = {
    "factory_id": _ids(FACTORY_IDS, "VN", new=False),
    "buyer_id": _ids(BUYER_IDS, "B", new=False),
    "name": NAMES,
    "country": _cell(st.sampled_from(["VN", "KH", "vn", " kh "]), "XX", "Viet Nam", ""),
    "emails": EMAILS,
    "language": _cell(st.sampled_from(["", "vi", "en", "EN"]), "fr", "vietnamese"),
    "cycle_end": _cell(st.one_of(st.just(""), DATES[0]), "2027-02-29", "31/12/2027"),
    "assessed_on": DATES,
    "nc_issues": CODE_LISTS,
    "kind": _cell(st.sampled_from(["", "regular", "unannounced", "Unannounced"]), "surprise"),
}


#: the kinds that add factories and buyers may name new ones
NEW_IDS: dict[tuple[str, str], Cell] = {
    ("factories", "factory_id"): _ids(FACTORY_IDS, "VN", new=True),
    ("buyers", "buyer_id"): _ids(BUYER_IDS, "B", new=True),
}

# --- files --------------------------------------------------------------------------------------


@st.composite
def headers(draw: st.DrawFn, kind: str, dirty: bool) -> list[str]:
    """Usually the kind's columns in any order and case; sometimes a wrong header."""
    required, optional = COLUMNS[kind]
    extra = st.lists(st.sampled_from(optional), unique=True) if optional else st.just([])
    columns = [*required, *draw(extra)]
    columns = draw(st.permutations(columns))
    if dirty and draw(st.integers(0, 6)) == 0:
        wrong = draw(
            st.sampled_from(
                [
                    "drop",
                    "extra",
                    "repeat",
                    "other kind",
                    "junk",
                ]
            )
        )
        if wrong == "drop":
            columns = columns[1:]
        elif wrong == "extra":
            columns = [*columns, draw(st.sampled_from(["province", "", "notes"]))]
        elif wrong == "repeat":
            columns = [*columns, columns[0].upper()]
        elif wrong == "other kind":
            other = draw(st.sampled_from([k for k in KINDS if k != kind]))
            columns = list(COLUMNS[other][0])
        else:
            columns = draw(st.lists(JUNK, max_size=4))
    spelled = st.sampled_from([str.lower, str.upper, lambda c: f" {c.title()} "])
    return [draw(spelled)(c) for c in columns]


@st.composite
def csv_files(draw: st.DrawFn, kind: str) -> bytes:
    # a third of the files are clean: valid values only, so that imports also succeed
    dirty = draw(st.integers(0, 2)) > 0
    header = draw(headers(kind, dirty))
    cells = []
    for column in header:
        name = column.strip().lower()
        valid, bad = NEW_IDS.get((kind, name)) or CELLS.get(name, (JUNK, JUNK))
        cells.append(st.one_of(valid, valid, valid, bad) if dirty else valid)
    rows = []
    for _ in range(draw(st.integers(0, 8))):
        row = [draw(cell) for cell in cells]
        shape = draw(st.integers(0, 14 if dirty else 40))
        if shape == 0:
            row = row[:-1]  # a cell missing
        elif shape == 1:
            row = [*row, "extra"]
        elif shape == 2:
            row = []  # a blank line
        rows.append(row)
    out = io.StringIO()
    writer = csv.writer(
        out,
        quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
        lineterminator=draw(st.sampled_from(["\r\n", "\n"])),
    )
    writer.writerow(header)
    for row in rows:
        if dirty and draw(st.integers(0, 19)) == 0:
            out.write(",".join(row) + "\n")  # not quoted: stray quotes, commas, line breaks
        else:
            writer.writerow(row)
    text = out.getvalue()
    if draw(st.booleans()) and text.endswith("\n"):
        text = text.rstrip("\r\n")  # no newline at the end
    data = (draw(st.sampled_from(["", "", "\ufeff"])) + text).encode("utf-8")
    if dirty and draw(st.integers(0, 9)) == 0:  # bytes that are not UTF-8 somewhere in the file
        at = draw(st.integers(0, len(data)))
        data = (
            data[:at]
            + draw(st.sampled_from([b"\xff", b"\xe9", b"\xc3", b"\xed\xa0\x80"]))
            + data[at:]
        )
    return data


# --- the property -------------------------------------------------------------------------------


async def row_counts(db: Database) -> dict[str, int]:
    found = {}
    async with db.transaction() as s:
        for model in (*TABLES, AuditEntry):
            query = select(func.count()).select_from(model)
            found[model.__tablename__] = (await s.exec(query)).scalar_one()
    return found


def lines_in(data: bytes) -> int:
    """The file's lines as the csv module counts them (\\r\\n, \\n or a lone \\r ends one)."""
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").count(b"\n") + 1


def _controls(text: str) -> list[str]:
    """Control characters (C0 and C1) and line or paragraph separators in ``text``."""
    return [c for c in text if unicodedata.category(c) == "Cc" or c in "\u2028\u2029"]


@pytest.fixture
async def loaded(core: Core) -> Core:
    """The sample factories, buyers, subscriptions and assessments: ids to refer to."""
    for kind in KINDS:
        await imports.run(core, kind, EXAMPLES / f"{kind}.csv", MANAGER)
    return core


async def check_import(core: Core, db: Database, kind: str, path: Path, data: bytes) -> Any:
    await asyncio.to_thread(path.write_bytes, data)
    before = await row_counts(db)
    try:
        report = await imports.run(core, kind, path, MANAGER)
    except PncError as exc:
        after = await row_counts(db)
        assert after == before, f"a refused import wrote: {before} → {after}"
        shown = exc.render()
        assert shown.strip()
        if isinstance(exc, ImportRejected):
            assert exc.errors, shown
            lines = [line for line, _ in exc.errors]
            assert lines == sorted(set(lines)), exc.errors
            assert all(1 <= line <= lines_in(data) for line in lines), (exc.errors, data)
            for line, reason in exc.errors:
                assert f"line {line}: " in shown
                assert reason.strip(), exc.errors
                assert not _controls(reason), f"line {line}: {reason!r} is not one plain line"
            event(f"{kind}: rejected")
        else:
            event(f"{kind}: {exc.code}")
        return exc
    assert isinstance(report, ImportReport)
    assert report.kind == kind
    assert report.added + report.updated + report.unchanged <= report.rows
    event(f"{kind}: imported")
    return report


@FUZZ
@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
async def test_an_import_succeeds_or_names_every_bad_line_and_writes_nothing(
    loaded: Core, db: Database, tmp_path: Path, kind: str, data: st.DataObject
) -> None:
    await check_import(loaded, db, kind, tmp_path / f"{kind}.csv", data.draw(csv_files(kind)))


# --- bugs found ---------------------------------------------------------------------------------


async def _refusal(core: Core, path: Path, kind: str, content: str) -> ImportRejected:
    await asyncio.to_thread(path.write_bytes, content.encode("utf-8"))
    with pytest.raises(ImportRejected) as exc_info:
        await imports.run(core, kind, path, MANAGER)
    return exc_info.value


async def test_an_unknown_country_is_quoted_on_one_plain_line(core: Core, tmp_path: Path) -> None:
    exc = await _refusal(
        core,
        tmp_path / "factories.csv",
        "factories",
        'factory_id,name,country,emails\nVN-1,A,"X\nline 9: forged\x1b[2J",a@b.example\n',
    )
    assert exc.errors[0][0] == 2
    assert not _controls(exc.errors[0][1]), exc.errors
    assert exc.render().count("\n") == 1, exc.render()


async def test_a_header_problem_is_quoted_on_one_plain_line(core: Core, tmp_path: Path) -> None:
    exc = await _refusal(
        core, tmp_path / "buyers.csv", "buyers", 'buyer_id,name,emails,"a\nb\x1b[2J"\n'
    )
    assert exc.errors[0][0] == 1
    assert not _controls(exc.errors[0][1]), exc.errors


@pytest.mark.parametrize(
    ("kind", "content"),
    [
        ("buyers", "buyer_id,name,emails\n\x85,A,a@b.example\n"),
        ("subscriptions", "buyer_id,factory_id\nB-ACME,VN\x9b31m\n"),
        ("assessments", "factory_id,assessed_on,nc_issues\nVN-1001,2025-01-0\x85,none\n"),
    ],
)
async def test_a_bad_value_is_quoted_without_c1_controls(
    core: Core, tmp_path: Path, kind: str, content: str
) -> None:
    exc = await _refusal(core, tmp_path / f"{kind}.csv", kind, content)
    assert exc.errors[0][0] == 2
    assert not _controls(exc.errors[0][1]), exc.errors
