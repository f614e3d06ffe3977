"""Benchmark: the wall time of ``pnc-bot status VN-1001`` on the sample data (SQLite, a
database already at head) against ``python -c "import sqlmodel, aiosqlite"``, the two run
alternately in the same run (issue #15: goal ≤ 1.5×).

    python -m bench.cli_startup [--runs 15]

Each run is a fresh process, as a person typing the command starts one. The sample data
(``bot/data/examples``) is imported once, beforehand, into a database in a scratch folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "bot" / "data" / "examples"


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{command} failed: {done.stderr.decode()[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    pnc = shutil.which("pnc-bot", path=str(Path(sys.executable).parent))
    assert pnc, "install the project first"
    work = Path(tempfile.mkdtemp(prefix="pnc-cli-bench-"))
    try:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PNC_", "SLACK_"))},
            "PNC_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'pnc.db'}",
            "PNC_OUTBOX_DIR": str(work / "outbox"),
        }
        for kind in ("factories", "buyers", "subscriptions", "assessments"):
            timed([pnc, "import", kind, str(EXAMPLES / f"{kind}.csv")], env)
        status = [pnc, "status", "VN-1001"]
        baseline = [sys.executable, "-c", "import sqlmodel, aiosqlite"]
        timed(status, env), timed(baseline, env)  # warm the file cache
        ours, base = [], []
        for _ in range(args.runs):
            base.append(timed(baseline, env))
            ours.append(timed(status, env))
        b, o = statistics.median(base), statistics.median(ours)
        print(f"import sqlmodel, aiosqlite  median {b * 1000:.0f} ms  (runs: {len(base)})")
        print(f"pnc-bot status VN-1001      median {o * 1000:.0f} ms")
        print(f"ratio {o / b:.2f}× (goal ≤ 1.5)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
