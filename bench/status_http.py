"""Benchmark: ``/pnc status`` over signed HTTP, 16 concurrent clients, against a bare slack-bolt
AsyncApp that only acknowledges a constant (``bench/bare_app.py``), with the same load in the
same run. Also: p50 at 1,000 factories vs 10,000, and peak RSS of ``pnc-bot serve``.

    python -m bench.status_http [--runs 5] [--clients 16] [--requests 40] [--quick]

Each server runs in its own process; this process generates the signed requests and stands in
for Slack (``auth.test`` and the response URLs) on loopback. Latency is the time until the
HTTP answer — Slack's acknowledgement — arrives; pnc-bot does the status work after that.
"""

from __future__ import annotations

import argparse
import asyncio
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
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def load_database(path: Path, factories: int, assessments: int) -> list[str]:
    paths = generate(path.parent / f"csv-{factories}", factories, assessments)
    url = f"sqlite+aiosqlite:///{path}"
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
    """Slack's side: answers auth.test and counts messages sent to response URLs."""

    def __init__(self) -> None:
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
        await request.read()
        self.responses += 1
        return web.Response(text="ok")


def start(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
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


async def load(
    port: int, sink_url: str, ids: list[str], clients: int, requests: int
) -> list[float]:
    """``clients`` workers each sending ``requests`` signed ``/pnc status`` commands."""
    verifier = SignatureVerifier(SECRET)
    latencies: list[float] = []
    rng, counter = _RNG, _COUNTER  # shared by every load: no two requests are ever the same

    async def worker(session: aiohttp.ClientSession) -> None:
        for _ in range(requests):
            n = next(counter)
            body = urllib.parse.urlencode(
                {
                    "command": "/pnc",
                    "text": f"status {rng.choice(ids)}",
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
            started = time.perf_counter()
            async with session.post(
                f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers
            ) as response:
                await response.read()
                assert response.status == 200, response.status
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(clients)))
    return latencies


_RNG = random.Random(11)
_COUNTER = iter(range(1, 10**12))


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=40, help="per client and run")
    parser.add_argument("--quick", action="store_true", help="1,000 factories only")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pnc-status-bench-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        sink = Sink()
        sink_url = await sink.start()
        sizes = [(1_000, 10_000)] + ([] if args.quick else [(10_000, 100_000)])
        databases = {}
        for factories, assessments in sizes:
            path = work / f"pnc-{factories}.db"
            databases[factories] = (path, await load_database(path, factories, assessments))

        bare_port = free_port()
        processes.append(
            start(
                [
                    sys.executable,
                    "-m",
                    "bench.bare_app",
                    str(bare_port),
                    SECRET,
                    f"{sink_url}/api/",
                ],
                dict(os.environ),
                bare_port,
            )
        )
        pnc = shutil.which("pnc-bot", path=str(Path(sys.executable).parent))
        assert pnc, "install the project first"
        servers = {}
        for factories, (path, _) in databases.items():
            port = free_port()
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith(("PNC_", "SLACK_"))},
                "PNC_DATABASE_URL": f"sqlite+aiosqlite:///{path}",
                "SLACK_BOT_TOKEN": "xoxb-bench",
                "SLACK_SIGNING_SECRET": SECRET,
                "PNC_SLACK_API_URL": f"{sink_url}/api/",
                "PNC_ADMINS": USER,
                "PNC_OUTBOX_DIR": str(work / "outbox"),
            }
            process = start([pnc, "serve", "--host", "127.0.0.1", "--port", str(port)], env, port)
            processes.append(process)
            servers[factories] = (port, process)

        ids_small = databases[1_000][1]
        big = max(servers)
        ids_big = databases[big][1]
        await load(bare_port, sink_url, ids_small, args.clients, 5)  # warm up every server
        for factories, (port, _) in servers.items():
            await load(port, sink_url, databases[factories][1], args.clients, 5)

        rows = []
        for run in range(1, args.runs + 1):
            bare = await load(bare_port, sink_url, ids_big, args.clients, args.requests)
            ours = {
                f: await load(port, sink_url, databases[f][1], args.clients, args.requests)
                for f, (port, _) in servers.items()
            }
            row = {
                "bare_p50": quantile(bare, 0.5),
                "bare_p99": quantile(bare, 0.99),
                **{f"p50_{f}": quantile(v, 0.5) for f, v in ours.items()},
                **{f"p99_{f}": quantile(v, 0.99) for f, v in ours.items()},
            }
            rows.append(row)
            print(f"run {run}: " + "  ".join(f"{k} {v * 1000:.1f}ms" for k, v in row.items()))
        await asyncio.sleep(1)  # let the replies after the last acknowledgements finish
        median = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        print(f"median of {args.runs} runs ({args.clients} clients × {args.requests} requests):")
        print(
            f"  bare app          p50 {median['bare_p50'] * 1000:.1f} ms  "
            f"p99 {median['bare_p99'] * 1000:.1f} ms"
        )
        for f in servers:
            print(
                f"  pnc-bot {f:>6} fac. p50 {median[f'p50_{f}'] * 1000:.1f} ms  "
                f"p99 {median[f'p99_{f}'] * 1000:.1f} ms  "
                f"(ratio p50 {median[f'p50_{f}'] / median['bare_p50']:.2f}, "
                f"p99 {median[f'p99_{f}'] / median['bare_p99']:.2f}; goal ≤ 1.5)"
            )
        if len(servers) > 1:
            print(
                f"  p50 growth 1,000 → {big:,} factories: "
                f"{median[f'p50_{big}'] / median['p50_1000']:.2f}× (goal ≤ 1.3)"
            )
        for f, (_, process) in servers.items():
            print(
                f"  peak RSS of pnc-bot serve ({f} factories): "
                f"{peak_rss_mb(process.pid):.0f} MB (goal ≤ 200)"
            )
        print(f"  replies delivered to response URLs: {sink.responses}")
        print(json.dumps({k: round(v * 1000, 2) for k, v in median.items()}))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
