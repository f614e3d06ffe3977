"""A country's catalogue from a CSV file named in the config (``issues_file``), checked as the
config file's ``[[countries.XX.issues]]`` entries are; and the notice that a covered country
still uses the built-in catalogue, logged once at start-up. Pure apart from files and logs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot import catalogue_csv
from bot.bootstrap import bootstrap
from bot.countries import (
    builtin_catalogue,
    builtin_catalogue_notice,
    issue_entry,
    load_config,
    warn_builtin_catalogues,
)
from bot.errors import ConfigError
from bot.settings import Settings

GOOD = (
    "code,name,name_vi,cluster\n"
    "CL-01,Child labour,Lao động trẻ em,Child Labour\n"
    "WT-01,Excessive overtime,,Working Time\n"
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees only the settings it gives."""
    for name in ("PNC_CONFIG", "PNC_INSPECTORATE_EMAIL", "PNC_STAFF_CHANNEL", "PNC_ADMINS"):
        monkeypatch.delenv(name, raising=False)


def settings(config: Path, **values: object) -> Settings:
    return Settings(database_url="sqlite+aiosqlite:///unused.db", config_path=config, **values)


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def config_with(tmp_path: Path, csv: str | bytes, toml: str = "") -> Path:
    write(tmp_path / "vn-issues.csv", csv)
    return write(tmp_path / "pnc.toml", f'[countries.VN]\nissues_file = "vn-issues.csv"\n{toml}')


def refusal(tmp_path: Path, csv: str | bytes) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(settings(config_with(tmp_path, csv)))
    return caught.value.render()


# --- a good file ---------------------------------------------------------------------------------


def test_a_csv_file_replaces_the_catalogue_of_its_country_in_file_order(tmp_path: Path) -> None:
    countries = load_config(settings(config_with(tmp_path, GOOD))).countries
    vn = countries["VN"].catalogue
    assert [(i.code, i.name, i.name_vi, i.cluster) for i in vn] == [
        ("CL-01", "Child labour", "Lao động trẻ em", "Child Labour"),
        ("WT-01", "Excessive overtime", None, "Working Time"),
    ]
    assert vn.name("WT-01", "vi") == "Excessive overtime"  # no Vietnamese name: the English one
    assert not vn.builtin and countries.on_builtin_catalogue == []
    assert countries["KH"].catalogue.builtin  # the other countries keep the built-in one
    assert countries["KH"].catalogue.codes == builtin_catalogue().codes


def test_the_file_may_have_a_bom_crlf_blank_lines_another_column_order_and_no_name_vi(
    tmp_path: Path,
) -> None:
    text = "\ufeffCluster , CODE,name\r\n\r\nChild Labour,CL-01,  Child   labour \r\n\r\n"
    vn = load_config(settings(config_with(tmp_path, text.encode("utf-8")))).countries["VN"]
    assert [(i.code, i.name, i.name_vi, i.cluster) for i in vn.catalogue] == [
        ("CL-01", "Child labour", None, "Child Labour")
    ]


def test_a_relative_path_is_read_from_the_config_files_folder_not_the_working_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "etc" / "lists" / "vn.csv", GOOD)
    write(tmp_path / "lists" / "vn.csv", "code,name,cluster\nZZ-01,Wrong file,Nowhere\n")
    config = write(tmp_path / "etc" / "pnc.toml", '[countries.VN]\nissues_file = "lists/vn.csv"\n')
    monkeypatch.chdir(tmp_path)
    vn = load_config(settings(config)).countries["VN"].catalogue
    assert vn.codes == {"CL-01", "WT-01"}


def test_an_absolute_path_is_taken_as_it_is(tmp_path: Path) -> None:
    csv = write(tmp_path / "elsewhere" / "vn.csv", GOOD)
    config = write(tmp_path / "etc" / "pnc.toml", f'[countries.VN]\nissues_file = "{csv}"\n')
    assert load_config(settings(config)).countries["VN"].catalogue.codes == {"CL-01", "WT-01"}


# --- refusals ------------------------------------------------------------------------------------


def test_every_bad_row_is_reported_with_its_line_in_one_error_naming_the_file(
    tmp_path: Path,
) -> None:
    rows = [
        "code,name,name_vi,cluster",  # 1
        "CL-01,Child labour,,Child Labour",  # 2: good
        "cl 01,Lower case,,Child Labour",  # 3: the code's form
        "CL-01,Child labour again,,Child Labour",  # 4: a repeated code
        'CL-02,"Two\nlines",,Child Labour',  # 5–6: a control character
        "CL-03,Over\u202etime,,Child Labour",  # 7: an invisible character in the name
        "CL-04,Hidden,Ẩn\u200b,Child Labour",  # 8: … and in the Vietnamese name
        "CL-05,,,Child Labour",  # 9: no name
        "CL-06,No cluster,,",  # 10: no cluster
        "CL-07,Three cells,Child Labour",  # 11: a cell missing
        "CL-08," + "x" * 301 + ",,Child Labour",  # 12: too long
        "WT-01,Overtime,,Working Time",  # 13: good
    ]
    shown = refusal(tmp_path, "\n".join(rows) + "\n")
    first, *lines = shown.splitlines()
    assert first.startswith(
        f"Country VN: The issue catalogue {tmp_path / 'vn-issues.csv'} has 9 bad rows"
    )
    assert "code,name,name_vi,cluster" in first
    said = dict(line.strip().split(": ", 1) for line in lines)
    assert list(said) == [f"line {n}" for n in (3, 4, 5, 7, 8, 9, 10, 11, 12)]
    assert "cl 01 is not an issue code" in said["line 3"] and "CL-01" in said["line 3"]
    assert said["line 4"] == "code CL-01 already appears on line 2."
    assert "control characters" in said["line 5"]
    assert "U+202E (RIGHT-TO-LEFT OVERRIDE)" in said["line 7"] and "name" in said["line 7"]
    assert "U+200B (ZERO WIDTH SPACE)" in said["line 8"] and "Vietnamese name" in said["line 8"]
    assert said["line 9"].startswith("The name is empty.")
    assert said["line 10"].startswith("The cluster is empty.")
    assert said["line 11"] == "expected 4 cells (code,name,name_vi,cluster), found 3"
    assert "301 characters long" in said["line 12"]


def test_a_header_that_is_missing_or_wrong_is_refused_on_its_line(tmp_path: Path) -> None:
    assert "line 1: the file is empty: expected the header code,name,name_vi,cluster" in refusal(
        tmp_path, "\n\n"
    )
    wrong = refusal(tmp_path, "\ncode,title,cluster,severity\nCL-01,x,y,1\n")
    assert "line 2: missing column name; unknown columns title, severity" in wrong
    assert "repeated column code" in refusal(tmp_path, "code,name,cluster,code\n")
    assert "no issues: give one row per issue" in refusal(tmp_path, "code,name,name_vi,cluster\n")


def test_a_file_that_is_not_utf8_is_refused_with_the_line(tmp_path: Path) -> None:
    shown = refusal(tmp_path, "code,name,cluster\nCL-01,ok,x\nCL-02,caf\xe9,x\n".encode("latin-1"))
    assert "line 3: not UTF-8 text" in shown


def test_a_missing_file_is_refused_naming_where_it_was_looked_for(tmp_path: Path) -> None:
    config = write(tmp_path / "pnc.toml", '[countries.VN]\nissues_file = "nowhere.csv"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(settings(config))
    assert f"Cannot read the issue catalogue {tmp_path / 'nowhere.csv'}" in caught.value.render()
    assert "relative to the config file" in caught.value.render()


def test_giving_both_a_file_and_entries_is_refused(tmp_path: Path) -> None:
    entry = '[[countries.VN.issues]]\ncode = "CL-01"\nname = "x"\ncluster = "y"\n'
    with pytest.raises(ConfigError) as caught:
        load_config(settings(config_with(tmp_path, GOOD, entry)))
    shown = caught.value.render()
    assert "[countries.VN] gives both issues_file and [[countries.VN.issues]]" in shown
    assert "Give the catalogue one way" in shown


def test_toml_entries_get_the_same_checks_as_csv_rows(tmp_path: Path) -> None:
    config = write(
        tmp_path / "pnc.toml",
        '[[countries.VN.issues]]\ncode = "CL-01"\nname = "Child\u202elabour"\ncluster = "y"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_config(settings(config))
    shown = caught.value.render()
    assert "[[countries.VN.issues]] entry 1 (CL-01)" in shown and "U+202E" in shown


def test_the_reader_is_a_pure_function_of_the_bytes() -> None:
    assert catalogue_csv.parse(GOOD.encode(), "given.csv", issue_entry)[1] == {
        "code": "WT-01",
        "name": "Excessive overtime",
        "name_vi": None,
        "cluster": "Working Time",
    }
    with pytest.raises(ConfigError, match=r"The issue catalogue given\.csv has 1 bad row"):
        catalogue_csv.parse(b"code,name,cluster\nCL-01,,x\n", "given.csv", issue_entry)


# --- the built-in catalogue: said once at start-up -----------------------------------------------


def test_the_notice_names_the_countries_and_how_to_load_the_official_list(tmp_path: Path) -> None:
    config = write(tmp_path / "pnc.toml", "[countries.KH]\npnc_enabled = true\n")
    countries = load_config(settings(config)).countries
    assert [c.code for c in countries.on_builtin_catalogue] == ["KH", "VN"]
    notice = builtin_catalogue_notice(countries.on_builtin_catalogue)
    assert "\n" not in notice
    assert notice.startswith("Cambodia (KH), Viet Nam (VN) use the built-in public-reporting")
    assert "not the official list" in notice
    assert 'issues_file = "kh-issues.csv" in [countries.KH]' in notice
    assert "code,name,name_vi,cluster" in notice and "[[countries.KH.issues]]" in notice


def test_a_covered_country_on_the_built_in_catalogue_is_logged_as_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    countries = load_config(Settings(database_url="sqlite+aiosqlite:///unused.db")).countries
    with caplog.at_level(logging.WARNING, logger="bot.countries"):
        warn_builtin_catalogues(countries)
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("Viet Nam (VN) uses the built-in")
    assert "Cambodia" not in record.getMessage()  # not covered: its catalogue is not used


def test_official_catalogues_are_not_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    countries = load_config(settings(config_with(tmp_path, GOOD))).countries
    with caplog.at_level(logging.WARNING, logger="bot.countries"):
        warn_builtin_catalogues(countries)
    assert caplog.records == []


async def test_the_composition_root_says_it_once_at_start_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    start = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'pnc.db'}")
    with caplog.at_level(logging.WARNING, logger="bot.countries"):
        bot = await bootstrap(start, upgrade=False)
        await bot.aclose()
    said = [r for r in caplog.records if "built-in public-reporting issue catalogue" in r.message]
    assert len(said) == 1 and said[0].levelno == logging.WARNING
