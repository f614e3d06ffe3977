"""The bot's metrics in Prometheus's text format (``pnc-bot serve --metrics-port``).

Two kinds of figures (``docs/deploy.md`` lists them):

- **read from the database** at each scrape (``store.metrics``): the outbox's depth by status
  and channel, the age of its oldest notice on its way, the reminders due and late, the paused
  channels. Replicas sharing a PostgreSQL database all report the same values; a scrape that
  cannot read the database within ``Exporter.timeout`` reports ``pnc_database_up 0`` and the
  rest, and the failure is logged once until the database answers again;
- **counted by this process** as it works (``INSTRUMENTS``): deliveries by outcome, delivery
  latency, command latency by subcommand and outcome, refusals by code. Sum them over replicas.

Each exporter has its own ``CollectorRegistry``, never the library's global one, so several
servers in one process (tests) do not collide; the process's instruments are registered in each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.errors import ConfigError
from bot.vocabulary import Channel
from store import metrics as figures_of
from store.db import Database
from store.metrics import WAITING, Figures

log = logging.getLogger(__name__)

#: a pending reminder is late when its moment passed this long ago (the reminder runner looks
#: every 30 seconds, and at once when one is written)
LATE = timedelta(minutes=5)
#: from a notice written to sent: seconds to an hour, and a day for the stragglers
DELIVERY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 86400)
#: from a request at the door to its outcome (Slack waits 3 s for an acknowledgement)
COMMAND_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Instruments:
    """What this process counts as it works (per process)."""

    def __init__(self) -> None:
        self.deliveries = Counter(
            "pnc_deliveries",
            "Delivery outcomes recorded by this process (sent, retry, wait, dead, paused).",
            ["channel", "outcome"],
            registry=None,
        )
        self.delivery_latency = Histogram(
            "pnc_delivery_latency_seconds",
            "From a notice written to the outbox to sent, for the notices this process sent.",
            ["channel"],
            buckets=DELIVERY_BUCKETS,
            registry=None,
        )
        self.commands = Histogram(
            "pnc_command_duration_seconds",
            "From a Slack request at the access middleware to its outcome (ok, refused, error).",
            ["subcommand", "outcome"],
            buckets=COMMAND_BUCKETS,
            registry=None,
        )
        self.refusals = Counter(
            "pnc_refusals", "Refusals this process gave, by their code.", ["code"], registry=None
        )

    def collectors(self) -> tuple[Collector, ...]:
        return (self.deliveries, self.delivery_latency, self.commands, self.refusals)

    def delivered(self, channel: str, outcome: str, *, latency: float | None = None) -> None:
        """An outcome recorded for one notice; ``latency`` (seconds since it was written) when
        it was sent."""
        self.deliveries.labels(channel=channel, outcome=outcome).inc()
        if latency is not None:
            self.delivery_latency.labels(channel=channel).observe(max(0.0, latency))

    def command(
        self, subcommand: str, outcome: str, seconds: float | None, refusal: str | None
    ) -> None:
        """A request's outcome: how long it took (when known) and, if refused, the code."""
        if seconds is not None:
            self.commands.labels(subcommand=subcommand, outcome=outcome).observe(seconds)
        if refusal is not None:
            self.refusals.labels(code=refusal).inc()


#: the process's instruments
INSTRUMENTS = Instruments()


class _DatabaseFigures:
    """The figures read for the scrape in progress, as gauges."""

    def __init__(self) -> None:
        self.figures: Figures | None = None
        self.now: datetime | None = None

    def show(self, figures: Figures | None, now: datetime) -> None:
        self.figures, self.now = figures, now

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        families = self._families()
        up = next(families)
        up.add_metric([], 0 if self.figures is None else 1)
        yield up
        if self.figures is None or self.now is None:
            return
        f, now = self.figures, self.now
        depth, oldest, due, late, paused = families
        channels = sorted({*Channel, *(c for _, c in f.depth), *f.oldest_undelivered})
        for status in WAITING:
            for channel in channels:
                depth.add_metric([status, channel], f.depth.get((status, channel), 0))
        for channel in channels:
            written = f.oldest_undelivered.get(channel)
            age = (now - written).total_seconds() if written is not None else 0.0
            oldest.add_metric([channel], max(0.0, age))
            paused.add_metric([channel], 1 if channel in f.paused else 0)
        due.add_metric([], f.reminders_due)
        late.add_metric([], f.reminders_late)
        yield from (depth, oldest, due, late, paused)

    @staticmethod
    def _families() -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "pnc_database_up", "Whether this scrape could read the figures from the database."
        )
        yield GaugeMetricFamily(
            "pnc_outbox_depth",
            "Notices in the outbox by status (pending, sending, held, dead) and channel.",
            labels=["status", "channel"],
        )
        yield GaugeMetricFamily(
            "pnc_outbox_oldest_pending_seconds",
            "Age of the oldest notice not yet delivered (pending or sending), by channel; "
            "0 when there is none.",
            labels=["channel"],
        )
        yield GaugeMetricFamily("pnc_reminders_due", "Pending reminders whose moment has come.")
        yield GaugeMetricFamily(
            "pnc_reminders_late",
            f"Pending reminders whose moment passed over {LATE.total_seconds():.0f} seconds ago.",
        )
        yield GaugeMetricFamily(
            "pnc_channel_paused",
            "1 while a delivery channel is paused for every replica (down or misconfigured).",
            labels=["channel"],
        )


class Exporter:
    """``GET /metrics`` on a port of its own, to be kept private (``docs/deploy.md``)."""

    #: seconds a scrape waits for the database before reporting without its figures
    timeout = 5.0

    def __init__(
        self,
        db: Database,
        clock: Callable[[], datetime],
        *,
        instruments: Instruments = INSTRUMENTS,
    ) -> None:
        self.db = db
        self.clock = clock
        self.registry = CollectorRegistry()
        self._database = _DatabaseFigures()
        self.registry.register(self._database)
        for collector in instruments.collectors():
            self.registry.register(collector)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._failing = False

    async def read(self) -> Figures | None:
        """The database's figures now, or None (logged once) when it cannot be read."""
        now = self.clock()
        try:
            async with asyncio.timeout(self.timeout), self.db.connection() as conn:
                found = await figures_of.figures(conn, now, now - LATE)
        except Exception as exc:
            if not self._failing:
                log.warning(
                    "metrics: cannot read the database (%s); reporting without its figures",
                    type(exc).__name__,
                )
            self._failing = True
            return None
        if self._failing:
            log.info("metrics: the database answers again")
        self._failing = False
        return found

    async def scrape(self) -> bytes:
        """The text exposition of every figure."""
        found = await self.read()
        # no await between showing the figures and rendering them: a concurrent scrape
        # cannot swap them in between
        self._database.show(found, self.clock())
        return generate_latest(self.registry)

    async def _metrics(self, request: web.Request) -> web.Response:
        # the content type carries a charset: aiohttp refuses one in ``content_type=``
        return web.Response(body=await self.scrape(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self, host: str, port: int) -> int:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, host, port).start()
        except OSError as exc:  # not the database's fault: say what it is
            await self.stop()
            raise ConfigError(
                f"Cannot serve the metrics on {host}:{port}: {exc.strerror or exc}.",
                "Choose a free port with --metrics-port, and an address of this machine with "
                "--metrics-host.",
            ) from None
        self.port = int(self._runner.addresses[0][1])
        log.info("metrics on http://%s:%s/metrics", host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
