"""The installed ``pnc-bot`` and the issue catalogue: a country's list loaded from a CSV file
named in the config file; the built-in catalogue said to be unofficial, after ``pnc-bot issues``
(on stderr with ``--json``, so the JSON stays valid) and once in the log at start-up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from store.db import Database
from tests.e2e.test_cli import run

OFFICIAL = (
    "code,name,name_vi,cluster\n"
    "CL-01,Child labour,Lao động trẻ em,Child Labour\n"
    "WT-01,Excessive overtime,,Working Time\n"
)
BUILT_IN = "Viet Nam (VN) uses the built-in public-reporting issue catalogue"


@pytest.fixture
def official(tmp_path: Path) -> dict[str, str]:
    """A config file in its own folder naming a CSV file beside it; the command runs elsewhere."""
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "vn-issues.csv").write_text(OFFICIAL, encoding="utf-8")
    config = folder / "pnc.toml"
    config.write_text('[countries.VN]\nissues_file = "vn-issues.csv"\n', encoding="utf-8")
    (tmp_path / "work").mkdir()
    return {"PNC_CONFIG": str(config)}


def test_issues_says_after_the_list_that_the_built_in_catalogue_is_not_the_official_list(
    tmp_path: Path,
) -> None:
    result = run("issues", cwd=tmp_path)
    listing, _, after = result.stdout.rpartition("\n\n")
    assert "WT-01" in listing and BUILT_IN not in listing
    assert after.startswith(f"Note: {BUILT_IN}")
    assert 'issues_file = "vn-issues.csv" in [countries.VN]' in after
    assert "PNC_CONFIG" in after and after.count("\n") == 1  # one line
    assert result.stderr == ""


def test_issues_json_stays_valid_and_says_it_on_stderr(tmp_path: Path) -> None:
    result = run("issues", "--json", cwd=tmp_path)
    rows = json.loads(result.stdout)
    assert {"code", "name", "name_vi", "cluster"} <= set(rows[0])
    assert BUILT_IN not in result.stdout
    assert result.stderr.startswith(f"note: {BUILT_IN}") and result.stderr.count("\n") == 1


def test_issues_lists_the_csv_catalogue_and_no_notice(
    tmp_path: Path, official: dict[str, str]
) -> None:
    text = run("issues", cwd=tmp_path / "work", env=official)
    assert "CL-01   Child labour" in text.stdout and "WT-01   Excessive overtime" in text.stdout
    assert "CL-02" not in text.stdout
    assert "built-in" not in text.stdout + text.stderr
    rows = json.loads(run("issues", "vn", "--json", cwd=tmp_path / "work", env=official).stdout)
    assert rows == [
        {
            "code": "CL-01",
            "name": "Child labour",
            "name_vi": "Lao động trẻ em",
            "cluster": "Child Labour",
        },
        {"code": "WT-01", "name": "Excessive overtime", "name_vi": None, "cluster": "Working Time"},
    ]


def test_a_bad_csv_catalogue_is_refused_with_each_line(
    tmp_path: Path, official: dict[str, str]
) -> None:
    csv = Path(official["PNC_CONFIG"]).with_name("vn-issues.csv")
    csv.write_text(OFFICIAL + "cl-9,x,,y\nWT-01,Again,,Working Time\n", encoding="utf-8")
    result = run("issues", cwd=tmp_path / "work", env=official, ok=False)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"error: Country VN: The issue catalogue {csv} has 2 bad rows")
    assert "\n  line 4: cl-9 is not an issue code." in result.stderr
    assert "\n  line 5: code WT-01 already appears on line 3." in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def env(db: Database) -> dict[str, str]:
    return {"PNC_DATABASE_URL": db.url.render_as_string(hide_password=False)}


def test_start_up_logs_the_built_in_catalogue_once_as_a_warning(
    tmp_path: Path, env: dict[str, str]
) -> None:
    result = run("db", "upgrade", cwd=tmp_path, env=env)
    said = [line for line in result.stderr.splitlines() if "built-in" in line]
    assert len(said) == 1
    assert said[0].startswith(f"WARNING bot.countries: {BUILT_IN}")
    assert 'issues_file = "vn-issues.csv"' in said[0]


def test_start_up_with_the_official_list_logs_no_warning(
    tmp_path: Path, env: dict[str, str], official: dict[str, str]
) -> None:
    result = run("db", "upgrade", cwd=tmp_path / "work", env={**env, **official})
    assert "WARNING" not in result.stderr and "built-in" not in result.stderr
