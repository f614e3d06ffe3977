"""Deterministic sample data for benchmarks: N factories and M assessments as pnc-bot CSVs.

python -m bench.generate OUT_DIR --factories 10000 --assessments 100000
"""

from __future__ import annotations

import argparse
import csv
import random
from datetime import date, timedelta
from pathlib import Path

from bot.countries import builtin_catalogue


def generate(out: Path, factories: int, assessments: int, seed: int = 7) -> dict[str, Path]:
    rng = random.Random(seed)
    codes = [i.code for i in builtin_catalogue()]
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / f"{k}.csv" for k in ("factories", "buyers", "subscriptions", "assessments")}
    ids = [f"VN-{n:05d}" if n % 10 else f"KH-{n:05d}" for n in range(1, factories + 1)]
    with paths["factories"].open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["factory_id", "name", "country", "emails", "language", "cycle_end"])
        for fid in ids:
            w.writerow(
                [
                    fid,
                    f"Factory {fid}",
                    fid[:2],
                    f"hr@{fid.lower()}.example;gm@{fid.lower()}.example",
                    rng.choice(["", "vi", "en"]),
                    rng.choice(["", "2027-06-30", "2028-03-31"]),
                ]
            )
    buyers = [f"B-{n:03d}" for n in range(1, max(2, factories // 100) + 1)]
    with paths["buyers"].open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["buyer_id", "name", "emails"])
        for bid in buyers:
            w.writerow([bid, f"Buyer {bid}", f"sourcing@{bid.lower()}.example"])
    with paths["subscriptions"].open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["buyer_id", "factory_id"])
        for fid in ids:
            for bid in rng.sample(buyers, k=min(len(buyers), rng.randint(1, 3))):
                w.writerow([bid, fid])
    per_factory, extra = divmod(assessments, factories)
    start = date(2012, 1, 1)
    with paths["assessments"].open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["factory_id", "assessed_on", "nc_issues"])
        for n, fid in enumerate(ids):
            count = per_factory + (1 if n < extra else 0)
            days = sorted(rng.sample(range(0, 5000), count))
            for d in days:
                found = rng.sample(codes, k=min(len(codes), int(rng.triangular(0, 9, 2))))
                w.writerow(
                    [fid, (start + timedelta(days=d)).isoformat(), ";".join(found) or "none"]
                )
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--factories", type=int, default=10_000)
    parser.add_argument("--assessments", type=int, default=100_000)
    args = parser.parse_args()
    for kind, path in generate(args.out, args.factories, args.assessments).items():
        print(kind, path)


if __name__ == "__main__":
    main()
