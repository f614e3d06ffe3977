"""Benchmark: `pnc-bot import` of factories + assessments into SQLite, against its baseline in
the same run — a plain ``sqlite3.executemany`` of the same CSV rows into equivalent tables
(same columns, keys and indexes, WAL, synchronous=NORMAL, one transaction).

    python -m bench.import_sqlite [--factories 10000] [--assessments 100000] [--runs 5]

Goal (issue #7): pnc-bot's time ≤ 3× the baseline's. Prints each run and the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from bench.generate import generate
from bot.countries import load_config
from bot.roles import operator
from bot.settings import Settings
from bot.usecases import imports
from bot.usecases.core import Core
from store import migrate
from store.db import Database

BASELINE_SCHEMA = """
CREATE TABLE factory (id VARCHAR(64) PRIMARY KEY, name VARCHAR(200) NOT NULL,
    country VARCHAR(2) NOT NULL, emails JSON NOT NULL, language VARCHAR(2), cycle_end DATE);
CREATE INDEX ix_factory_country ON factory (country);
CREATE TABLE assessment (id INTEGER PRIMARY KEY, factory_id VARCHAR(64) NOT NULL
    REFERENCES factory (id), assessed_on DATE NOT NULL, nc_issues JSON NOT NULL,
    kind VARCHAR(16) NOT NULL);
CREATE INDEX ix_assessment_factory_id ON assessment (factory_id);
CREATE UNIQUE INDEX uq_assessment_factory_day ON assessment (factory_id, assessed_on);
"""


def baseline(paths: dict[str, Path], db_file: Path) -> float:
    con = sqlite3.connect(db_file, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("PRAGMA foreign_keys=ON")
    con.executescript(BASELINE_SCHEMA)
    start = time.perf_counter()
    con.execute("BEGIN")
    with paths["factories"].open(newline="", encoding="utf-8") as f:
        rows = csv.reader(f)
        next(rows)
        con.executemany("INSERT INTO factory VALUES (?, ?, ?, ?, ?, ?)", rows)
    with paths["assessments"].open(newline="", encoding="utf-8") as f:
        rows = csv.reader(f)
        next(rows)
        con.executemany(
            "INSERT INTO assessment (factory_id, assessed_on, nc_issues, kind) "
            "VALUES (?, ?, ?, 'regular')",
            rows,
        )
    con.execute("COMMIT")
    elapsed = time.perf_counter() - start
    con.close()
    return elapsed


async def pnc_bot(paths: dict[str, Path], db_file: Path) -> float:
    url = f"sqlite+aiosqlite:///{db_file}"
    db = Database(url)
    await migrate.upgrade(db)  # schema creation is not timed, as for the baseline
    settings = Settings(database_url=url)
    core = Core(db, load_config(settings), settings)
    actor = operator()
    start = time.perf_counter()
    await imports.run(core, "factories", paths["factories"], actor)
    await imports.run(core, "assessments", paths["assessments"], actor)
    elapsed = time.perf_counter() - start
    await db.dispose()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factories", type=int, default=10_000)
    parser.add_argument("--assessments", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pnc-bench-"))
    try:
        paths = generate(work / "csv", args.factories, args.assessments)
        base, ours = [], []
        for run in range(1, args.runs + 1):
            b = baseline(paths, work / f"baseline-{run}.db")
            o = asyncio.run(pnc_bot(paths, work / f"pnc-{run}.db"))
            base.append(b)
            ours.append(o)
            print(f"run {run}: baseline {b:.3f}s  pnc-bot {o:.3f}s  ratio {o / b:.2f}")
        mb, mo = statistics.median(base), statistics.median(ours)
        print(
            f"median of {args.runs}: baseline {mb:.3f}s  pnc-bot {mo:.3f}s  "
            f"ratio {mo / mb:.2f} (goal ≤ 3.00)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
