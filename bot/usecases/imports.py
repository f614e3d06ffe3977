"""Bulk CSV import (SPEC §4 columns).

The whole file is checked before anything is written; every bad row is reported with its line
number and the reason, and if there is one, nothing is written. Rows already in the store are
skipped, so importing the same file twice adds nothing; a factory or buyer row that differs from
the stored one updates it. Everything is written in one transaction with bulk statements.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from bot import validation
from bot.csvfile import COLUMNS, KINDS, Errors, Memo, Progress, Row, checking, read_rows, unknown
from bot.errors import InvalidInput, PncError
from bot.policy import AssessmentRecord
from bot.roles import Actor, Permission, RoleLevel
from bot.usecases import access
from bot.usecases.core import Core
from bot.usecases.reevaluation import reevaluate
from bot.usecases.registry import initial_state
from bot.vocabulary import NoticeMode
from store import history, registry

IMPORT = Permission("import", RoleLevel.MANAGER)


@dataclass(frozen=True)
class ImportReport:
    kind: str
    path: str
    rows: int
    added: int
    updated: int = 0
    unchanged: int = 0
    #: events the imported history gave rise to
    events: int = 0
    #: factories whose history changed under notified events: their new events are held
    contradicted: int = 0
    #: those factories' ids, for staff to review
    to_review: tuple[str, ...] = ()
    notify: bool = False
    #: zero-tolerance codes found by the imported assessments (cases: ``bot.usecases.ztp``)
    ztp_findings: int = 0


async def run(
    core: Core,
    kind: str,
    path: str | Path,
    actor: Actor,
    *,
    notify: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a CSV file of ``kind`` (factories, buyers, subscriptions, assessments); with
    ``notify`` the events the imported history gives rise to are notified."""
    if kind not in COLUMNS:
        raise InvalidInput(f"Cannot import `{kind}`.", f"Import one of: {', '.join(KINDS)}.")
    await access.require(core, actor, IMPORT)
    file = Path(path)
    rows, malformed = read_rows(file, kind)
    errors = Errors(file, len(rows) + len(malformed), malformed)
    one = _Import(core, file, rows, errors, actor, notify, progress or _no_progress)
    with _cyclic_gc_paused():
        return await one.kinds()[kind]()


def _no_progress(phase: str, done: int, total: int) -> None:
    return None


@dataclass
class _Import:
    """One import: the file's rows, the errors found, and what one kind's import needs."""

    core: Core
    file: Path
    rows: list[Row]
    errors: Errors
    actor: Actor
    notify: bool
    step: Progress
    #: all factory ids, loaded once and only when a row names an unknown one
    _all_factory_ids: set[str] | None = None

    def kinds(self) -> dict[str, Callable[[], Awaitable[ImportReport]]]:
        return {
            "factories": self.factories,
            "buyers": self.buyers,
            "subscriptions": self.subscriptions,
            "assessments": self.assessments,
        }

    async def factories(self) -> ImportReport:
        file, rows, errors, actor, notify, step = (
            self.file,
            self.rows,
            self.errors,
            self.actor,
            self.notify,
            self.step,
        )
        clean: dict[str, dict[str, Any]] = {}
        for row in checking(rows, step):
            v = row.values
            try:
                fid = validation.identifier(v["factory_id"], "factory id")
                errors.once(fid, row.line, f"factory `{fid}`")
                country = self.core.countries.country(v["country"])
                clean[fid] = {
                    "id": fid,
                    "name": validation.text(v["name"], "factory name"),
                    "country": country.code,
                    "emails": list(validation.emails(v["emails"])),
                    "language": validation.language(v.get("language")),
                    "cycle_end": validation.optional_date(v.get("cycle_end"), "cycle end"),
                }
            except PncError as exc:
                errors.refused(row.line, exc)
        errors.raise_if_any()
        fields = ("name", "country", "emails", "language", "cycle_end")
        initial = Memo(lambda country: initial_state(self.core, country))
        now = self.core.clock()
        async with self.core.db.transaction(write=True) as s:
            existing = await registry.factory_rows(s, list(clean), lock=True)
            added, changed, moved = [], [], []
            for fid, values in clean.items():
                old = existing.get(fid)
                if old is None:
                    state = initial(values["country"])
                    added.append(
                        {
                            **values,
                            "created_at": now,
                            "updated_at": now,
                            "state": state,
                            "streak": 0,
                        }
                    )
                elif any(getattr(old, f) != values[f] for f in fields):
                    changed.append({**values, "updated_at": now})
                    if old.country != values["country"]:
                        moved.append(fid)
            step("writing", 0, len(added) + len(changed))
            await registry.add_factories(s, added)
            await registry.update_factories(s, changed)
            if moved:  # another country, other rules: the history means something else now
                await reevaluate(self.core, s, moved, _mode(notify))
            self._audit(s, actor, "factories", file, len(rows), len(added), len(changed))
        return ImportReport(
            "factories",
            str(file),
            len(rows),
            len(added),
            len(changed),
            len(clean) - len(added) - len(changed),
            notify=notify,
        )

    async def buyers(self) -> ImportReport:
        file, rows, errors, actor, notify, step = (
            self.file,
            self.rows,
            self.errors,
            self.actor,
            self.notify,
            self.step,
        )
        clean: dict[str, dict[str, Any]] = {}
        for row in checking(rows, step):
            v = row.values
            try:
                bid = validation.identifier(v["buyer_id"], "buyer id")
                errors.once(bid, row.line, f"buyer `{bid}`")
                clean[bid] = {
                    "id": bid,
                    "name": validation.text(v["name"], "buyer name"),
                    "emails": list(validation.emails(v["emails"])),
                }
            except PncError as exc:
                errors.refused(row.line, exc)
        errors.raise_if_any()
        now = self.core.clock()
        async with self.core.db.transaction(write=True) as s:
            existing = await registry.buyer_rows(s)
            added, changed = [], []
            for bid, values in clean.items():
                old = existing.get(bid)
                if old is None:
                    added.append({**values, "created_at": now, "updated_at": now})
                elif old.name != values["name"] or list(old.emails) != values["emails"]:
                    changed.append({**values, "updated_at": now})
            await registry.add_buyers(s, added)
            await registry.update_buyers(s, changed)
            self._audit(s, actor, "buyers", file, len(rows), len(added), len(changed))
        return ImportReport(
            "buyers",
            str(file),
            len(rows),
            len(added),
            len(changed),
            len(clean) - len(added) - len(changed),
            notify=notify,
        )

    async def subscriptions(self) -> ImportReport:
        file, rows, errors, actor, notify, step = (
            self.file,
            self.rows,
            self.errors,
            self.actor,
            self.notify,
            self.step,
        )
        pairs: dict[tuple[str, str], int] = {}
        for row in checking(rows, step):
            try:
                bid = validation.identifier(row.values["buyer_id"], "buyer id")
                fid = validation.identifier(row.values["factory_id"], "factory id")
                errors.once((bid, fid), row.line, f"subscription of `{bid}` to `{fid}`")
                pairs[(bid, fid)] = row.line
            except PncError as exc:
                errors.refused(row.line, exc)
        now = self.core.clock()
        async with self.core.db.transaction(write=True) as s:
            buyers = set(await registry.buyer_rows(s))
            factories = await registry.factory_rows(s, sorted({f for _, f in pairs}))
            for (bid, fid), line in pairs.items():
                if bid not in buyers:
                    errors.add(line, unknown("buyer", bid, buyers))
                elif fid not in factories:
                    errors.add(line, unknown("factory", fid, await self._factory_ids(s)))
            errors.raise_if_any()
            existing = await registry.subscription_pairs(s)
            added = [
                {"buyer_id": b, "factory_id": f, "created_at": now}
                for (b, f) in pairs
                if (b, f) not in existing
            ]
            await registry.add_subscriptions(s, added)
            self._audit(s, actor, "subscriptions", file, len(rows), len(added), 0)
        return ImportReport(
            "subscriptions",
            str(file),
            len(rows),
            len(added),
            0,
            len(pairs) - len(added),
            notify=notify,
        )

    async def assessments(self) -> ImportReport:
        file, rows, errors, actor, notify, step = (
            self.file,
            self.rows,
            self.errors,
            self.actor,
            self.notify,
            self.step,
        )
        today = self.core.today()
        # the same ids, dates and countries recur on many rows: check each distinct value once
        ids = Memo(lambda v: validation.identifier(v, "factory id"))
        days = Memo(lambda v: validation.assessment_date(v, today))
        kinds = Memo(validation.assessment_kind)
        countries = Memo(self.core.countries.country)
        named: set[str] = set()
        for raw in {row.values["factory_id"] for row in rows}:
            with contextlib.suppress(PncError):  # a bad id is reported with its line below
                named.add(ids(raw))
        async with self.core.db.transaction(write=True) as s:
            # locked before their histories are read: an assessment recorded meanwhile (Slack)
            # waits for the import, and is then evaluated with the imported ones
            facts = await registry.factory_facts(s, sorted(named), lock=True)
            stored = await history.live_days(s, sorted(facts))
            new: list[tuple[date, frozenset[str], str]] = []
            new_factories: list[str] = []
            report_ons: list[date | None] = []
            unchanged = 0
            for row in checking(rows, step):
                v = row.values
                try:
                    fid = ids(v["factory_id"])
                    day = days(v["assessed_on"])
                    kind = kinds(v.get("kind") or "")
                    key = (fid, day)
                    errors.once(key, row.line, "`{}` on {}", fid, day)
                    fact = facts.get(fid)
                    if fact is None:
                        raise InvalidInput(unknown("factory", fid, await self._factory_ids(s)))
                    country = countries(fact.country)
                    codes = validation.issue_codes(v["nc_issues"], country.catalogue, country.code)
                    old = stored.get(key)
                    if old is not None:
                        if frozenset(old.nc_issues) == codes and old.kind == kind:
                            unchanged += 1
                            continue
                        raise InvalidInput(
                            f"`{fid}` already has an assessment on {day.isoformat()} with other "
                            f"issues ({', '.join(old.nc_issues) or 'none'}).",
                            "A manager can amend it; the import does not overwrite assessments.",
                        )
                    reported = validation.report_date(v.get("report_on"), day, today)
                    new.append((day, codes, kind))
                    new_factories.append(fid)
                    report_ons.append(reported)
                except PncError as exc:
                    errors.refused(row.line, exc)
            errors.raise_if_any()

            step("writing", 0, len(new))
            row_ids = await history.reserve_assessment_ids(s, len(new))
            records = list(map(AssessmentRecord, row_ids, *zip(*new, strict=True))) if new else []
            now = self.core.clock()
            n = len(new)
            await history.add_assessments(
                s,
                {
                    "id": row_ids,
                    "factory_id": new_factories,
                    "assessed_on": [a.assessed_on for a in records],
                    "kind": [a.kind for a in records],
                    "nc_issues": [sorted(a.nc_issues) for a in records],
                    "submitted_by": [actor.user_id] * n,
                    "submitted_at": [now] * n,
                    "source": [f"import:{file.name}"[:200]] * n,
                    "report_on": report_ons,
                },
            )

            # evaluate from what is in memory: the stored history plus the rows just written
            by_factory: dict[str, list[AssessmentRecord]] = {f: [] for f in new_factories}
            for old in stored.values():
                if old.factory_id in by_factory:
                    by_factory[old.factory_id].append(history.as_record(old))
            for fid, record in zip(new_factories, records, strict=True):
                by_factory[fid].append(record)
            affected = sorted(by_factory)
            step("evaluating", 0, len(affected))
            histories = history.Histories(
                countries={f: facts[f].country for f in affected},
                snapshots={f: (facts[f].state, facts[f].streak) for f in affected},
                assessments=by_factory,
                readmissions=await history.readmission_records(s, affected),
            )
            results = await reevaluate(self.core, s, affected, _mode(notify), histories)
            events = sum(len(r.new_events) for r in results.values())
            to_review = tuple(sorted(f for f, r in results.items() if r.contradicted))
            ztp_findings = sum(
                len(a.nc_issues & self.core.country(facts[f].country).ztp.codes)
                for f, a in zip(new_factories, records, strict=True)
            )
            self._audit(
                s, actor, "assessments", file, len(rows), n, 0, events=events, notify=notify
            )
        return ImportReport(
            "assessments",
            str(file),
            len(rows),
            n,
            0,
            unchanged,
            events=events,
            contradicted=len(to_review),
            to_review=to_review,
            notify=notify,
            ztp_findings=ztp_findings,
        )

    async def _factory_ids(self, s: Any) -> set[str]:
        """All factory ids, loaded once and only when a row names an unknown one."""
        if self._all_factory_ids is None:
            self._all_factory_ids = set(await registry.factory_ids(s))
        return self._all_factory_ids

    def _audit(
        self,
        s: Any,
        actor: Actor,
        kind: str,
        file: Path,
        rows: int,
        added: int,
        updated: int,
        **extra: Any,
    ) -> None:
        detail = {"rows": rows, "added": added, "updated": updated, **extra}
        self.core.audit(s, actor, f"import.{kind}", file.name[:200], detail)


def _mode(notify: bool) -> NoticeMode:
    return NoticeMode.DUE if notify else NoticeMode.SUPPRESSED


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector during a bulk load.

    An import creates hundreds of thousands of small long-lived objects; the collector would
    traverse them again and again (measured: more than half the import's time). Reference
    counting still frees memory meanwhile; cycles are collected once the import is over.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
