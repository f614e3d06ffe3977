"""Reading import files (SPEC §4 CSV columns) with ``bot.csvfile.read_rows``.

Row-level problems come back as ``(line, reason)`` pairs so that every bad row can be reported at
once; problems with the file as a whole (encoding, header) raise ``ImportRejected`` at once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.cli import ImportKind
from bot.csvfile import COLUMNS, KINDS, read_rows
from bot.errors import ImportRejected

# no example database: these are pure unit tests and write nothing
PROPERTY = settings(database=None, deadline=None)

FACTORIES_HEADER = "factory_id,name,country,emails"


def csv_file(tmp_path: Path, content: str | bytes, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def rejected(path: Path, kind: str) -> list[tuple[int, str]]:
    with pytest.raises(ImportRejected) as exc_info:
        read_rows(path, kind)
    return exc_info.value.errors


# --- well-formed files ------------------------------------------------------------------------


def test_rows_carry_their_values_by_column_name_and_their_line(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        "factory_id,name,country,emails,language,cycle_end\n"
        "VN-1,Song Hong,VN,hr@sh.example,vi,2027-06-30\n"
        "VN-2,Red River,VN,a@rr.example;b@rr.example,,\n",
    )
    rows, errors = read_rows(path, "factories")
    assert errors == []
    assert [r.line for r in rows] == [2, 3]
    assert rows[0].values == {
        "factory_id": "VN-1",
        "name": "Song Hong",
        "country": "VN",
        "emails": "hr@sh.example",
        "language": "vi",
        "cycle_end": "2027-06-30",
    }
    assert rows[1].values["emails"] == "a@rr.example;b@rr.example"
    assert rows[1].values["language"] == ""


def test_line_numbers_count_the_lines_of_a_quoted_multi_line_cell(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        f"{FACTORIES_HEADER}\n"
        'VN-1,"Song Hong\nGarment\nNo. 2",VN,hr@sh.example\n'
        "VN-2,Red River,VN,hr@rr.example\n",
    )
    rows, errors = read_rows(path, "factories")
    assert errors == []
    assert [r.line for r in rows] == [2, 5]
    assert rows[0].values["name"] == "Song Hong\nGarment\nNo. 2"


def test_blank_lines_are_skipped_but_still_counted(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        f"{FACTORIES_HEADER}\n\nVN-1,A,VN,a@a.example\n\n\nVN-2,B,VN,b@b.example\n\n",
    )
    rows, errors = read_rows(path, "factories")
    assert errors == []
    assert [r.line for r in rows] == [3, 6]


def test_windows_line_endings_are_read(tmp_path: Path) -> None:
    path = csv_file(tmp_path, f"{FACTORIES_HEADER}\r\nVN-1,A,VN,a@a.example\r\n")
    rows, errors = read_rows(path, "factories")
    assert errors == []
    assert [(r.line, r.values["emails"]) for r in rows] == [(2, "a@a.example")]


def test_a_last_row_without_a_newline_is_read(tmp_path: Path) -> None:
    path = csv_file(tmp_path, f"{FACTORIES_HEADER}\nVN-1,A,VN,a@a.example")
    rows, _ = read_rows(path, "factories")
    assert [r.line for r in rows] == [2]


def test_utf8_bom_and_upper_case_padded_header_names_are_accepted(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        "\ufeff Factory_ID , NAME,Country ,EMAILS\nVN-1,Công ty May,VN,a@a.example\n",
    )
    rows, errors = read_rows(path, "factories")
    assert errors == []
    assert rows[0].values == {
        "factory_id": "VN-1",
        "name": "Công ty May",
        "country": "VN",
        "emails": "a@a.example",
    }


def test_columns_may_come_in_any_order(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "nc_issues,factory_id,assessed_on\nCO-01;CO-02,VN-1,2025-01-05\n")
    rows, _ = read_rows(path, "assessments")
    assert rows[0].values == {
        "factory_id": "VN-1",
        "assessed_on": "2025-01-05",
        "nc_issues": "CO-01;CO-02",
    }


def test_factories_optional_columns_may_be_absent(tmp_path: Path) -> None:
    rows, errors = read_rows(
        csv_file(tmp_path, f"{FACTORIES_HEADER}\nVN-1,A,VN,a@a.example\n"), "factories"
    )
    assert errors == []
    assert "language" not in rows[0].values
    assert "cycle_end" not in rows[0].values


def test_factories_may_give_one_optional_column_only(tmp_path: Path) -> None:
    rows, errors = read_rows(
        csv_file(tmp_path, f"{FACTORIES_HEADER},cycle_end\nVN-1,A,VN,a@a.example,2027-01-01\n"),
        "factories",
    )
    assert errors == []
    assert rows[0].values["cycle_end"] == "2027-01-01"


def test_assessments_kind_column_is_optional(tmp_path: Path) -> None:
    without = csv_file(tmp_path, "factory_id,assessed_on,nc_issues\nVN-1,2025-01-05,none\n", "a")
    with_kind = csv_file(
        tmp_path,
        "factory_id,assessed_on,nc_issues,kind\nVN-1,2025-01-05,none,unannounced\n",
        "b",
    )
    assert "kind" not in read_rows(without, "assessments")[0][0].values
    assert read_rows(with_kind, "assessments")[0][0].values["kind"] == "unannounced"


@pytest.mark.parametrize(
    ("kind", "header", "row"),
    [
        ("buyers", "buyer_id,name,emails", "B-1,Brand,sourcing@brand.example"),
        ("subscriptions", "buyer_id,factory_id", "B-1,VN-1"),
        ("assessments", "factory_id,assessed_on,nc_issues", "VN-1,2025-01-05,CO-01"),
    ],
)
def test_every_kind_reads_its_spec_columns(
    tmp_path: Path, kind: str, header: str, row: str
) -> None:
    rows, errors = read_rows(csv_file(tmp_path, f"{header}\n{row}\n"), kind)
    assert errors == []
    assert list(rows[0].values) == header.split(",")


def test_columns_match_the_spec() -> None:
    assert COLUMNS == {
        "factories": (("factory_id", "name", "country", "emails"), ("language", "cycle_end")),
        "buyers": (("buyer_id", "name", "emails"), ()),
        "subscriptions": (("buyer_id", "factory_id"), ()),
        "assessments": (("factory_id", "assessed_on", "nc_issues"), ("kind", "report_on")),
    }


# --- file-level refusals ----------------------------------------------------------------------


def test_missing_column_is_refused_on_line_1(tmp_path: Path) -> None:
    errors = rejected(csv_file(tmp_path, "factory_id,name,country\nVN-1,A,VN\n"), "factories")
    assert len(errors) == 1
    line, reason = errors[0]
    assert line == 1
    assert "missing column emails" in reason
    assert FACTORIES_HEADER in reason


def test_unknown_column_is_refused_on_line_1(tmp_path: Path) -> None:
    errors = rejected(
        csv_file(tmp_path, f"{FACTORIES_HEADER},province\nVN-1,A,VN,a@a.example,HN\n"),
        "factories",
    )
    assert errors[0][0] == 1
    assert "unknown column province" in errors[0][1]


def test_repeated_column_is_refused_on_line_1(tmp_path: Path) -> None:
    errors = rejected(csv_file(tmp_path, "buyer_id,factory_id,Buyer_ID\n"), "subscriptions")
    assert errors[0][0] == 1
    assert "repeated column buyer_id" in errors[0][1]


def test_a_header_of_another_kind_is_refused(tmp_path: Path) -> None:
    errors = rejected(csv_file(tmp_path, "buyer_id,name,emails\nB-1,X,x@x.example\n"), "factories")
    assert errors[0][0] == 1
    assert "missing columns" in errors[0][1]
    assert "unknown column buyer_id" in errors[0][1]


@pytest.mark.parametrize("content", ["", "\ufeff", "\n", ",,,\n"])
def test_empty_file_is_refused_on_line_1(tmp_path: Path, content: str) -> None:
    errors = rejected(csv_file(tmp_path, content), "buyers")
    assert errors[0][0] == 1
    assert "empty" in errors[0][1]
    assert "buyer_id,name,emails" in errors[0][1]


def test_a_file_with_a_header_only_has_no_rows(tmp_path: Path) -> None:
    assert read_rows(csv_file(tmp_path, "buyer_id,name,emails\n"), "buyers") == ([], [])


def test_refusal_names_the_file(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "", "factories-2025.csv")
    with pytest.raises(ImportRejected) as exc_info:
        read_rows(path, "factories")
    assert str(path) in exc_info.value.render()
    assert "line 1:" in exc_info.value.render()


def test_non_utf8_bytes_are_refused_with_their_line(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        f"{FACTORIES_HEADER}\nVN-1,A,VN,a@a.example\nVN-2,Caf\xe9,VN,b@b.example\n".encode(
            "latin-1"
        ),
    )
    errors = rejected(path, "factories")
    assert len(errors) == 1
    assert errors[0][0] == 3
    assert "UTF-8" in errors[0][1]


def test_non_utf8_bytes_in_the_header_are_refused_on_line_1(tmp_path: Path) -> None:
    errors = rejected(csv_file(tmp_path, b"buyer_id,n\xe4me,emails\n"), "buyers")
    assert errors[0][0] == 1


def test_non_utf8_line_counts_the_lines_of_a_multi_line_cell(tmp_path: Path) -> None:
    content = f'{FACTORIES_HEADER}\nVN-1,"A\nB",VN,a@a.example\nVN-2,\xe9,VN,b@b.example\n'
    errors = rejected(csv_file(tmp_path, content.encode("latin-1")), "factories")
    assert errors[0][0] == 4


def test_non_utf8_line_is_right_with_cr_line_endings(tmp_path: Path) -> None:
    content = f"{FACTORIES_HEADER}\rVN-1,A,VN,a@a.example\rVN-2,Caf\xe9,VN,b@b.example\r"
    errors = rejected(csv_file(tmp_path, content.encode("latin-1")), "factories")
    assert errors[0][0] == 3


def test_cr_line_endings_number_rows_by_line(tmp_path: Path) -> None:
    path = csv_file(tmp_path, f"{FACTORIES_HEADER}\rVN-1,A,VN,a@a.example\rVN-2,B,VN,b@b.example\r")
    rows, errors = read_rows(path, "factories")
    assert errors == []
    assert [r.line for r in rows] == [2, 3]


# --- row-level problems -----------------------------------------------------------------------


def test_rows_with_too_few_or_too_many_cells_are_reported_and_reading_goes_on(
    tmp_path: Path,
) -> None:
    path = csv_file(
        tmp_path,
        f"{FACTORIES_HEADER}\n"
        "VN-1,A,VN\n"
        "VN-2,B,VN,b@b.example\n"
        "VN-3,C,VN,c@c.example,extra\n"
        'VN-4,"D\nE",VN,d@d.example\n'
        "VN-5\n"
        "VN-6,F,VN,f@f.example\n",
    )
    rows, errors = read_rows(path, "factories")
    assert [r.values["factory_id"] for r in rows] == ["VN-2", "VN-4", "VN-6"]
    assert [r.line for r in rows] == [3, 5, 8]
    assert [line for line, _ in errors] == [2, 4, 7]
    assert "found 3" in errors[0][1]
    assert "found 5" in errors[1][1]
    assert "found 1" in errors[2][1]


def test_a_broken_quote_is_reported_with_its_line(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        f'{FACTORIES_HEADER}\nVN-1,A,VN,a@a.example\nVN-2,"B"x,VN,b@b.example\n',
    )
    rows, errors = read_rows(path, "factories")
    assert [r.line for r in rows] == [2]
    assert len(errors) == 1
    assert errors[0][0] == 3
    assert "unreadable CSV" in errors[0][1]


def test_an_unterminated_quote_is_reported_not_raised(tmp_path: Path) -> None:
    path = csv_file(tmp_path, f'{FACTORIES_HEADER}\nVN-1,"A,VN,a@a.example\n')
    rows, errors = read_rows(path, "factories")
    assert rows == []
    assert len(errors) == 1
    assert errors[0][0] == 2


def test_an_unreadable_header_is_refused_on_line_1(tmp_path: Path) -> None:
    errors = rejected(csv_file(tmp_path, '"buyer_id,name,emails\n'), "buyers")
    assert errors[0][0] == 1


# --- any text at all --------------------------------------------------------------------------

_CSV_PIECES = st.sampled_from(
    [
        "factory_id,assessed_on,nc_issues",
        "factory_id,assessed_on,nc_issues,kind",
        "VN-1,2025-01-05,CO-01",
        ",",
        '"',
        '""',
        "\n",
        "\r",
        "\r\n",
        "\ufeff",
        " ",
        "\x00",
        "x",
    ]
)


@PROPERTY
@given(content=st.one_of(st.text(), st.lists(_CSV_PIECES, max_size=30).map("".join)))
def test_any_text_is_read_or_refused_with_import_rejected(
    tmp_path_factory: pytest.TempPathFactory, content: str
) -> None:
    path = tmp_path_factory.getbasetemp() / "arbitrary.csv"
    path.write_text(content, encoding="utf-8", newline="")
    try:
        rows, errors = read_rows(path, "assessments")
    except ImportRejected as exc:
        assert exc.errors
        assert all(line >= 1 for line, _ in exc.errors)
        return
    required, optional = COLUMNS["assessments"]
    for row in rows:
        assert row.line >= 2
        assert set(required) <= set(row.values) <= set(required + optional)
    assert all(line >= 1 for line, _ in errors)


def test_the_command_line_offers_every_kind_of_file() -> None:
    assert tuple(ImportKind) == KINDS
