"""Benchmark: the time a person waits for ``/pnc status X`` over signed HTTP — until the answer
is shown: the acknowledgement when it carries the answer, otherwise the post to the response
URL — against a bare slack-bolt AsyncApp that answers a constant in its acknowledgement
(``bench/bare_app.py``), with the same load in the same run.

    python -m bench.status_http [--runs 5] [--clients 16] [--requests 40] [--quick]
                                [--backends sqlite,postgres]
    (PNC_BENCH_POSTGRES_URL, default postgresql+asyncpg://postgres@127.0.0.1:5432/postgres)

Loads: 16 clients (closed loop: each waits for its answer before sending the next) and one
client; 1,000 factories + 10,000 assessments and 10,000 + 100,000, on SQLite and PostgreSQL.
Also the peak RSS of each ``pnc-bot serve``, and each server's CPU time per request under the
16-client load (read from ``/proc``: steadier than the answer times on a noisy machine). Each
server runs in its own process; this process signs the requests and stands in for Slack
(``auth.test`` and the response URLs) on loopback. Every load waits for all of its answers
before the next load starts.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp import web
from slack_sdk.signature import SignatureVerifier
from sqlalchemy.engine import make_url

from bench.generate import generate
from bot.countries import load_config
from bot.roles import operator
from bot.settings import Settings
from bot.usecases import imports, rules
from bot.usecases.core import Core
from store import migrate
from store.db import Database

SECRET = "bench-signing-secret"
USER = "UBENCH"
ADMIN_URL = os.environ.get(
    "PNC_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
#: how long an answer may take before the benchmark gives up on it
PATIENCE = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_dsn(database: str | None = None) -> str:
    url = make_url(ADMIN_URL).set(drivername="postgresql")
    if database:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


async def create_pg(name: str) -> str:
    admin = await asyncpg.connect(pg_dsn())
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


async def drop_pg(name: str) -> None:
    admin = await asyncpg.connect(pg_dsn())
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


async def load_database(url: str, csv_dir: Path, factories: int, assessments: int) -> list[str]:
    paths = generate(csv_dir, factories, assessments)
    db = Database(url)
    await migrate.upgrade(db)
    settings = Settings(database_url=url)
    core = Core(db, load_config(settings), settings)
    await rules.refresh(core)  # as every start of the CLI does: the rules are recorded
    for kind in ("factories", "buyers", "subscriptions", "assessments"):
        await imports.run(core, kind, paths[kind], operator())
    await db.dispose()
    with paths["factories"].open() as f:
        return [line.split(",", 1)[0] for line in f.readlines()[1:]]


class Sink:
    """Slack's side: answers auth.test, and notes when each response URL is posted to."""

    def __init__(self) -> None:
        self.waiting: dict[int, asyncio.Future[float]] = {}
        self.responses = 0

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/api/{method}", self.api)
        app.router.add_post("/respond/{n}", self.respond)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return f"http://127.0.0.1:{port}"

    async def api(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"ok": True, "user_id": "UBOT", "bot_id": "BBOT", "team_id": "TBENCH"}
        )

    async def respond(self, request: web.Request) -> web.Response:
        body = await request.read()
        arrived = time.perf_counter()
        self.responses += 1
        waiting = self.waiting.pop(int(request.match_info["n"]), None)
        if waiting is not None and not waiting.done() and body:
            waiting.set_result(arrived)
        return web.Response(text="ok")


def start(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            if process.poll() is not None:
                output = process.stderr.read().decode() if process.stderr else "it died"
                raise RuntimeError(f"{command[0]} did not start: {output}") from None
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{command} did not start")


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) a process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_RNG = random.Random(11)
#: shared by every load: no two requests are ever the same
_COUNTER = itertools.count(1)


async def load(
    port: int, sink: Sink, sink_url: str, ids: list[str], clients: int, requests: int
) -> list[float]:
    """``clients`` workers each sending ``requests`` signed ``/pnc status`` commands, each
    waiting for its answer before the next; the time to each answer."""
    verifier = SignatureVerifier(SECRET)
    latencies: list[float] = []
    loop = asyncio.get_running_loop()

    async def worker(session: aiohttp.ClientSession) -> None:
        for _ in range(requests):
            n = next(_COUNTER)
            body = urllib.parse.urlencode(
                {
                    "command": "/pnc",
                    "text": f"status {_RNG.choice(ids)}",
                    "user_id": USER,
                    "team_id": "TBENCH",
                    "channel_id": "CBENCH",
                    "api_app_id": "ABENCH",
                    "response_url": f"{sink_url}/respond/{n}",
                    "trigger_id": f"t.{n}",
                }
            )
            ts = str(int(time.time()))
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": verifier.generate_signature(timestamp=ts, body=body),
            }
            posted: asyncio.Future[float] = loop.create_future()
            sink.waiting[n] = posted
            started = time.perf_counter()
            async with session.post(
                f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers
            ) as response:
                acked = await response.read()
                assert response.status == 200, response.status
            if acked.strip():  # the acknowledgement carries the answer
                answered = time.perf_counter()
                sink.waiting.pop(n, None)
            else:  # an empty acknowledgement: the answer comes to the response URL
                answered = await asyncio.wait_for(posted, PATIENCE)
            latencies.append(answered - started)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(clients)))
    return latencies


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=40, help="per client and run")
    parser.add_argument("--single", type=int, default=100, help="requests of the 1-client load")
    parser.add_argument("--quick", action="store_true", help="1,000 factories only")
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    work = Path(tempfile.mkdtemp(prefix="pnc-status-bench-"))
    processes: list[subprocess.Popen[bytes]] = []
    scratch: list[str] = []
    try:
        sink = Sink()
        sink_url = await sink.start()
        sizes = [(1_000, 10_000)] + ([] if args.quick else [(10_000, 100_000)])
        #: (backend, factories) → (database URL, factory ids)
        databases: dict[tuple[str, int], tuple[str, list[str]]] = {}
        for backend in backends:
            for factories, assessments in sizes:
                if backend == "sqlite":
                    url = f"sqlite+aiosqlite:///{work / f'pnc-{factories}.db'}"
                else:
                    name = f"pnc_bench_status_{factories}_{os.getpid()}"
                    scratch.append(name)
                    url = await create_pg(name)
                started = time.perf_counter()
                ids = await load_database(url, work / f"csv-{factories}", factories, assessments)
                databases[(backend, factories)] = (url, ids)
                print(
                    f"loaded {factories:,} factories on {backend} "
                    f"in {time.perf_counter() - started:.1f} s",
                    flush=True,
                )

        bare_port = free_port()
        bare_cmd = [sys.executable, "-m", "bench.bare_app", str(bare_port), SECRET]
        processes.append(start([*bare_cmd, f"{sink_url}/api/"], dict(os.environ), bare_port))
        pnc = shutil.which("pnc-bot", path=str(Path(sys.executable).parent))
        assert pnc, "install the project first"
        servers: dict[tuple[str, int], tuple[int, subprocess.Popen[bytes]]] = {}
        for key, (url, _) in databases.items():
            port = free_port()
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith(("PNC_", "SLACK_"))},
                "PNC_DATABASE_URL": url,
                "SLACK_BOT_TOKEN": "xoxb-bench",
                "SLACK_SIGNING_SECRET": SECRET,
                "PNC_SLACK_API_URL": f"{sink_url}/api/",
                "PNC_ADMINS": USER,
                "PNC_OUTBOX_DIR": str(work / "outbox"),
            }
            process = start([pnc, "serve", "--host", "127.0.0.1", "--port", str(port)], env, port)
            processes.append(process)
            servers[key] = (port, process)

        big = max(f for f, _ in sizes)
        ids_big = next(ids for (b, f), (_, ids) in databases.items() if f == big)

        async def run_load(port: int, ids: list[str], clients: int, requests: int) -> list[float]:
            return await load(port, sink, sink_url, ids, clients, requests)

        async def run_timed(
            port: int, pid: int, ids: list[str], row: dict[str, float], key: str
        ) -> None:
            """The load of ``args.clients`` clients: p50, p99 and the server's CPU per request
            (steadier than the answer times on a noisy machine: under this load the answer
            waits its turn behind the others', so p50 follows it)."""
            before = cpu_seconds(pid)
            times = await run_load(port, ids, args.clients, args.requests)
            cpu = (cpu_seconds(pid) - before) / len(times)
            row[f"{key}_p50"], row[f"{key}_p99"] = quantile(times, 0.5), quantile(times, 0.99)
            row[f"{key}_cpu"] = cpu

        await run_load(bare_port, ids_big, args.clients, 5)  # warm up every server
        for key, (port, _) in servers.items():
            await run_load(port, databases[key][1], args.clients, 5)

        rows = []
        for run in range(1, args.runs + 1):
            row: dict[str, float] = {}
            await run_timed(bare_port, processes[0].pid, ids_big, row, "bare")
            for (backend, f), (port, process) in servers.items():
                ids = databases[(backend, f)][1]
                await run_timed(port, process.pid, ids, row, f"{backend}_{f}")
            bare1 = await run_load(bare_port, ids_big, 1, args.single)
            row["bare_1c_p50"] = quantile(bare1, 0.5)
            for backend in backends:
                port = servers[(backend, big)][0]
                ours1 = await run_load(port, databases[(backend, big)][1], 1, args.single)
                row[f"{backend}_{big}_1c_p50"] = quantile(ours1, 0.5)
            rows.append(row)
            print(f"run {run}: " + "  ".join(f"{k} {v * 1000:.1f}" for k, v in row.items()))
        median = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        ms = {k: round(v * 1000, 2) for k, v in median.items()}
        print(
            f"\nmedian of {args.runs} runs, time to the answer ({args.clients} clients × "
            f"{args.requests} requests; 1 client × {args.single}):"
        )
        print(
            f"  bare app           p50 {ms['bare_p50']} ms  p99 {ms['bare_p99']} ms  "
            f"1 client p50 {ms['bare_1c_p50']} ms  CPU {ms['bare_cpu']} ms a request"
        )
        for (backend, f), (_, process) in servers.items():
            p50, p99 = median[f"{backend}_{f}_p50"], median[f"{backend}_{f}_p99"]
            print(
                f"  {backend:<8} {f:>6} fac. p50 {p50 * 1000:.1f} ms "
                f"({p50 / median['bare_p50']:.2f}×, goal ≤ 2)  p99 {p99 * 1000:.1f} ms "
                f"({p99 / median['bare_p99']:.2f}×, goal ≤ 3)"
                f"  peak RSS {peak_rss_mb(process.pid):.0f} MB (goal ≤ 150)"
                f"  CPU {median[f'{backend}_{f}_cpu'] * 1000:.2f} ms a request"
            )
        for backend in backends:
            one = median[f"{backend}_{big}_1c_p50"] / median["bare_1c_p50"]
            print(f"  {backend:<8} 1 client p50: {one:.2f}× the bare app (goal ≤ 1.2)")
            if (backend, 1_000) in servers and big != 1_000:
                growth = median[f"{backend}_{big}_p50"] / median[f"{backend}_1000_p50"]
                print(f"  {backend:<8} p50 1,000 → {big:,} factories: {growth:.2f}× (goal ≤ 1.3)")
        print(f"  replies posted to response URLs: {sink.responses}")
        print(json.dumps(ms))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        for name in scratch:
            await drop_pg(name)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
