"""The baseline for the status benchmark: a bare slack-bolt AsyncApp whose /pnc handler only
acknowledges with a constant, served by the same aiohttp adapter as pnc-bot.

    python -m bench.bare_app PORT SIGNING_SECRET SLACK_API_URL
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp


async def main(port: int, secret: str, api_url: str) -> None:
    app = AsyncApp(token="xoxb-bare", signing_secret=secret)
    app.client.base_url = api_url

    @app.command("/pnc")
    async def pnc(ack):  # type: ignore[no-untyped-def]
        await ack("ok")

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    web_app = web.Application()
    web_app.router.add_post("/slack/events", events)
    web_app.router.add_get("/healthz", health)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
