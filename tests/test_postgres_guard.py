"""The guard in ``tests/conftest.py`` (issue #16): a run meant to cover PostgreSQL fails unless a
test that ran on the PostgreSQL database passed. It goes by the ``database`` fixture's parameter,
not by test ids: a unit test whose id says "postgresql" proves nothing.

Shown by running pytest on a small folder of tests with the project's ``tests/conftest.py``
loaded as a plugin (its real ``database`` fixture, its hooks) and ``pyproject.toml``'s settings.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BACKENDS

ROOT = Path(__file__).resolve().parent.parent
TESTS = """
import os

import pytest


@pytest.mark.parametrize("engine", ["postgresql", "sqlite"])
def test_a_unit_test_parametrised_by_name(engine: str) -> None:
    assert engine


def test_postgresql_in_the_name_of_a_unit_test() -> None:
    pass


async def test_on_each_database(db) -> None:  # through ``db``: the parameter is indirect
    if db.is_postgresql and os.environ.get("SKIP_POSTGRESQL"):
        pytest.skip("left out on PostgreSQL")
    assert db.url
"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        "postgresql" not in BACKENDS, reason="PostgreSQL is not in PNC_TEST_BACKENDS"
    ),
]


def _run(folder: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (folder / "test_sample.py").write_text(TESTS)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(ROOT / "pyproject.toml"),
        "--rootdir",
        str(folder),
        "-p",
        "tests.conftest",
        "-p",
        "no:cacheprovider",
        "-q",
        str(folder),
    ]
    environment = {k: v for k, v in os.environ.items() if k != "SKIP_POSTGRESQL"}
    environment.update(PYTHONPATH=str(ROOT), PNC_TEST_BACKENDS="sqlite,postgresql", **env)
    return subprocess.run(
        command, cwd=folder, env=environment, capture_output=True, text=True, timeout=300
    )


def test_a_run_whose_database_tests_all_skip_on_postgresql_fails(tmp_path: Path) -> None:
    run = _run(tmp_path, SKIP_POSTGRESQL="1")
    assert "4 passed, 1 skipped" in run.stdout, run.stdout + run.stderr
    assert "no PostgreSQL test passed" in run.stdout, run.stdout
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.stdout


def test_a_run_with_a_database_test_passing_on_postgresql_passes(tmp_path: Path) -> None:
    run = _run(tmp_path)
    assert "5 passed" in run.stdout, run.stdout + run.stderr
    assert "no PostgreSQL test passed" not in run.stdout
    assert run.returncode == pytest.ExitCode.OK, run.stdout
