"""Benchmark: `pnc-bot import` of factories + assessments into PostgreSQL, against its baseline
in the same run — a ``COPY`` of the same CSV rows through asyncpg into equivalent tables (same
columns, keys and indexes), in one transaction.

    python -m bench.import_postgres [--factories 10000] [--assessments 100000] [--runs 5]
    (PNC_BENCH_POSTGRES_URL, default postgresql+asyncpg://postgres@127.0.0.1:5432/postgres)

Goal (issue #7): pnc-bot's time ≤ 3× the baseline's. A fresh database is created for every
run of each side, and dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from bench.generate import generate
from bot.countries import load_config
from bot.roles import operator
from bot.settings import Settings
from bot.usecases import imports
from bot.usecases.core import Core
from store import migrate
from store.db import Database

ADMIN_URL = os.environ.get(
    "PNC_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
BASELINE_SCHEMA = """
CREATE TABLE factory (id VARCHAR(64) PRIMARY KEY, name VARCHAR(200) NOT NULL,
    country VARCHAR(2) NOT NULL, emails JSON NOT NULL, language VARCHAR(2), cycle_end DATE);
CREATE INDEX ix_factory_country ON factory (country);
CREATE TABLE assessment (id SERIAL PRIMARY KEY, factory_id VARCHAR(64) NOT NULL
    REFERENCES factory (id), assessed_on DATE NOT NULL, nc_issues JSON NOT NULL,
    kind VARCHAR(16) NOT NULL DEFAULT 'regular');
CREATE INDEX ix_assessment_factory_id ON assessment (factory_id);
CREATE UNIQUE INDEX uq_assessment_factory_day ON assessment (factory_id, assessed_on);
"""


def dsn(database: str | None = None) -> str:
    url = make_url(ADMIN_URL).set(drivername="postgresql")
    if database:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


class Scratch:
    """A database created for one side of one run, dropped after."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def __aenter__(self) -> str:
        admin = await asyncpg.connect(dsn())
        await admin.execute(f'DROP DATABASE IF EXISTS "{self.name}"')
        await admin.execute(f'CREATE DATABASE "{self.name}"')
        await admin.close()
        return self.name

    async def __aexit__(self, *exc: object) -> None:
        admin = await asyncpg.connect(dsn())
        await admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        await admin.close()


def rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)
        return list(reader)


async def baseline(paths: dict[str, Path], database: str) -> float:
    conn = await asyncpg.connect(dsn(database))
    await conn.execute(BASELINE_SCHEMA)
    started = time.perf_counter()
    async with conn.transaction():
        factories = [
            (r[0], r[1], r[2], f'["{r[3]}"]', r[4] or None, None) for r in rows(paths["factories"])
        ]
        await conn.copy_records_to_table(
            "factory",
            records=factories,
            columns=["id", "name", "country", "emails", "language", "cycle_end"],
        )
        assessments = [(r[0], _date(r[1]), f'["{r[2]}"]') for r in rows(paths["assessments"])]
        await conn.copy_records_to_table(
            "assessment", records=assessments, columns=["factory_id", "assessed_on", "nc_issues"]
        )
    elapsed = time.perf_counter() - started
    await conn.close()
    return elapsed


def _date(text: str) -> object:
    from datetime import date

    return date.fromisoformat(text)


async def pnc_bot(paths: dict[str, Path], database: str) -> float:
    url = make_url(ADMIN_URL).set(database=database)
    db = Database(url)
    await migrate.upgrade(db)  # schema creation is not timed, as for the baseline
    settings = Settings(database_url=url.render_as_string(hide_password=False), config_path=None)
    core = Core(db, load_config(settings), settings)
    started = time.perf_counter()
    await imports.run(core, "factories", paths["factories"], operator())
    await imports.run(core, "assessments", paths["assessments"], operator())
    elapsed = time.perf_counter() - started
    await db.dispose()
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factories", type=int, default=10_000)
    parser.add_argument("--assessments", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pnc-bench-pg-"))
    try:
        paths = generate(work / "csv", args.factories, args.assessments)
        base, ours = [], []
        for run in range(1, args.runs + 1):
            async with Scratch(f"pnc_bench_copy_{run}") as database:
                b = await baseline(paths, database)
            async with Scratch(f"pnc_bench_import_{run}") as database:
                o = await pnc_bot(paths, database)
            base.append(b)
            ours.append(o)
            print(f"run {run}: COPY {b:.3f}s  pnc-bot {o:.3f}s  ratio {o / b:.2f}")
        mb, mo = statistics.median(base), statistics.median(ours)
        print(
            f"median of {args.runs}: COPY {mb:.3f}s  pnc-bot {mo:.3f}s  "
            f"ratio {mo / mb:.2f} (goal ≤ 3.00)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
