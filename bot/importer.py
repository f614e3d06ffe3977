"""Bulk CSV import (SPEC §4 columns).

The whole file is checked before anything is written; every bad row is reported with its line
number and the reason, and if there is one, nothing is written. Rows already in the store are
skipped, so importing the same file twice adds nothing; a factory or buyer row that differs from
the stored one updates it. Everything is written in one transaction with bulk statements.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from bot import validation
from bot.errors import ImportRejected, InvalidInput, PncError
from bot.policy import AssessmentRecord
from bot.roles import Actor
from bot.services import Services
from bot.suggest import close_matches
from store import bulk, queries
from store.models import Assessment, Buyer, Factory, Notice, Subscription

#: phase, rows done, rows in all
Progress = Callable[[str, int, int], None]

COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # kind: (required columns, optional columns)
    "factories": (("factory_id", "name", "country", "emails"), ("language", "cycle_end")),
    "buyers": (("buyer_id", "name", "emails"), ()),
    "subscriptions": (("buyer_id", "factory_id"), ()),
    "assessments": (("factory_id", "assessed_on", "nc_issues"), ("kind",)),
}
KINDS = tuple(COLUMNS)


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


@dataclass(frozen=True)
class Row:
    line: int
    values: dict[str, str]


def read_rows(path: Path, kind: str) -> tuple[list[Row], list[tuple[int, str]]]:
    """The file's well-formed data rows (with the line each starts on) and the bad ones.

    A file that cannot be read as this kind of CSV at all (encoding, header) is refused here.
    """
    required, optional = COLUMNS[kind]
    shown = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"Cannot read {shown}: {exc.strerror}.") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # count line breaks as the csv module does: \r\n, \n or a lone \r
        before = data[: exc.start].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        line = before.count(b"\n") + 1
        raise ImportRejected(
            shown, [(line, "not UTF-8 text: save the file as CSV UTF-8")], 0
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    expected = ",".join(required + optional)
    try:
        header = next(reader, None)
        while header is not None and not "".join(header).strip():  # blank lines first
            header = next(reader, None)
    except csv.Error as exc:
        raise ImportRejected(shown, [(1, f"unreadable header ({exc})")], 0) from None
    if header is None or not any(h.strip() for h in header):
        raise ImportRejected(shown, [(1, f"the file is empty: expected the header {expected}")], 0)
    names = [validation.shown(h.strip().lower(), 40) for h in header]
    problems = []
    missing = [c for c in required if c not in names]
    unknown = [n for n in names if n not in required + optional]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if missing:
        problems.append(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
    if repeated:
        problems.append(f"repeated column {', '.join(repeated)}")
    if problems:
        raise ImportRejected(
            shown, [(1, "; ".join(problems) + f" (expected the header {expected})")], 0
        )

    rows: list[Row] = []
    errors: list[tuple[int, str]] = []
    line = reader.line_num + 1
    try:
        for record in reader:
            start, line = line, reader.line_num + 1
            if not "".join(record).strip():
                continue  # blank lines are allowed
            if len(record) != len(names):
                errors.append(
                    (start, f"expected {len(names)} cells ({','.join(names)}), found {len(record)}")
                )
                continue
            rows.append(Row(start, dict(zip(names, record, strict=True))))
    except csv.Error as exc:
        errors.append((reader.line_num, f"unreadable CSV ({exc}); nothing after it was read"))
    return rows, errors


class Importer:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.countries = services.countries
        self._all_factory_ids: set[str] | None = None

    async def run(
        self,
        kind: str,
        path: str | Path,
        actor: Actor,
        *,
        notify: bool = False,
        progress: Progress | None = None,
    ) -> ImportReport:
        if kind not in COLUMNS:
            raise InvalidInput(f"Cannot import `{kind}`.", f"Import one of: {', '.join(KINDS)}.")
        await self.services.require(actor, "import")
        file = Path(path)
        rows, malformed = read_rows(file, kind)
        self._all_factory_ids = None
        errors = _Errors(file, len(rows) + len(malformed), malformed)
        step = progress or (lambda phase, done, total: None)
        method = getattr(self, f"_{kind}")
        with _cyclic_gc_paused():
            report: ImportReport = await method(file, rows, errors, actor, notify, step)
        return report

    # --- one method per kind ----------------------------------------------------------------

    async def _factories(
        self,
        file: Path,
        rows: list[Row],
        errors: _Errors,
        actor: Actor,
        notify: bool,
        step: Progress,
    ) -> ImportReport:
        clean: dict[str, dict[str, Any]] = {}
        for row in _checking(rows, step):
            v = row.values
            try:
                fid = validation.identifier(v["factory_id"], "factory id")
                errors.once(fid, row.line, f"factory `{fid}`")
                country = self.countries.country(v["country"])
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
        initial = _Memo(self.services.initial_state)
        now = self.services.clock()
        async with self.services.db.transaction(write=True) as s:
            existing = await queries.factory_rows(s, list(clean), lock=True)
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
            await bulk.insert_rows(s, Factory.__table__, added)  # type: ignore[attr-defined]
            await bulk.update_by_id(s, Factory.__table__, changed)  # type: ignore[attr-defined]
            if moved:  # another country, other rules: the history means something else now
                await self.services.reevaluate(
                    s, moved, Notice.DUE if notify else Notice.SUPPRESSED
                )
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

    async def _buyers(
        self,
        file: Path,
        rows: list[Row],
        errors: _Errors,
        actor: Actor,
        notify: bool,
        step: Progress,
    ) -> ImportReport:
        clean: dict[str, dict[str, Any]] = {}
        for row in _checking(rows, step):
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
        now = self.services.clock()
        async with self.services.db.transaction(write=True) as s:
            existing = await queries.buyer_rows(s)
            added, changed = [], []
            for bid, values in clean.items():
                old = existing.get(bid)
                if old is None:
                    added.append({**values, "created_at": now, "updated_at": now})
                elif old.name != values["name"] or list(old.emails) != values["emails"]:
                    changed.append({**values, "updated_at": now})
            await bulk.insert_rows(s, Buyer.__table__, added)  # type: ignore[attr-defined]
            await bulk.update_by_id(s, Buyer.__table__, changed)  # type: ignore[attr-defined]
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

    async def _subscriptions(
        self,
        file: Path,
        rows: list[Row],
        errors: _Errors,
        actor: Actor,
        notify: bool,
        step: Progress,
    ) -> ImportReport:
        pairs: dict[tuple[str, str], int] = {}
        for row in _checking(rows, step):
            try:
                bid = validation.identifier(row.values["buyer_id"], "buyer id")
                fid = validation.identifier(row.values["factory_id"], "factory id")
                errors.once((bid, fid), row.line, f"subscription of `{bid}` to `{fid}`")
                pairs[(bid, fid)] = row.line
            except PncError as exc:
                errors.refused(row.line, exc)
        now = self.services.clock()
        async with self.services.db.transaction(write=True) as s:
            buyers = set(await queries.buyer_rows(s))
            factories = await queries.factory_rows(s, sorted({f for _, f in pairs}))
            for (bid, fid), line in pairs.items():
                if bid not in buyers:
                    errors.add(line, _unknown("buyer", bid, buyers))
                elif fid not in factories:
                    errors.add(line, _unknown("factory", fid, await self._factory_ids(s)))
            errors.raise_if_any()
            existing = await queries.subscription_pairs(s)
            added = [
                {"buyer_id": b, "factory_id": f, "created_at": now}
                for (b, f) in pairs
                if (b, f) not in existing
            ]
            await bulk.insert_rows(s, Subscription.__table__, added)  # type: ignore[attr-defined]
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

    async def _assessments(
        self,
        file: Path,
        rows: list[Row],
        errors: _Errors,
        actor: Actor,
        notify: bool,
        step: Progress,
    ) -> ImportReport:
        today = self.services.today()
        # the same ids, dates and countries recur on many rows: check each distinct value once
        ids = _Memo(lambda v: validation.identifier(v, "factory id"))
        days = _Memo(lambda v: validation.assessment_date(v, today))
        kinds = _Memo(validation.assessment_kind)
        countries = _Memo(self.countries.country)
        named: set[str] = set()
        for raw in {row.values["factory_id"] for row in rows}:
            with contextlib.suppress(PncError):  # a bad id is reported with its line below
                named.add(ids(raw))
        async with self.services.db.transaction(write=True) as s:
            # locked before their histories are read: an assessment recorded meanwhile (Slack)
            # waits for the import, and is then evaluated with the imported ones
            facts = await queries.factory_facts(s, sorted(named), lock=True)
            stored = await queries.live_days(s, sorted(facts))
            new: list[tuple[date, frozenset[str], str]] = []
            new_factories: list[str] = []
            unchanged = 0
            for row in _checking(rows, step):
                v = row.values
                try:
                    fid = ids(v["factory_id"])
                    day = days(v["assessed_on"])
                    kind = kinds(v.get("kind") or "")
                    key = (fid, day)
                    errors.once(key, row.line, "`{}` on {}", fid, day)
                    fact = facts.get(fid)
                    if fact is None:
                        raise InvalidInput(_unknown("factory", fid, await self._factory_ids(s)))
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
                    new.append((day, codes, kind))
                    new_factories.append(fid)
                except PncError as exc:
                    errors.refused(row.line, exc)
            errors.raise_if_any()

            step("writing", 0, len(new))
            table = Assessment.__table__  # type: ignore[attr-defined]
            row_ids = await bulk.reserve_ids(s, table, len(new))
            records = list(map(AssessmentRecord, row_ids, *zip(*new, strict=True))) if new else []
            now = self.services.clock()
            n = len(new)
            await bulk.insert_columns(
                s,
                table,
                {
                    "id": row_ids,
                    "factory_id": new_factories,
                    "assessed_on": [a.assessed_on for a in records],
                    "kind": [a.kind for a in records],
                    "nc_issues": [sorted(a.nc_issues) for a in records],
                    "submitted_by": [actor.user_id] * n,
                    "submitted_at": [now] * n,
                    "source": [f"import:{file.name}"[:200]] * n,
                },
            )

            # evaluate from what is in memory: the stored history plus the rows just written
            history: dict[str, list[AssessmentRecord]] = {f: [] for f in new_factories}
            for old in stored.values():
                if old.factory_id in history:
                    history[old.factory_id].append(queries.as_record(old))
            for fid, record in zip(new_factories, records, strict=True):
                history[fid].append(record)
            affected = sorted(history)
            step("evaluating", 0, len(affected))
            histories = queries.Histories(
                countries={f: facts[f].country for f in affected},
                snapshots={f: (facts[f].state, facts[f].streak) for f in affected},
                assessments=history,
                readmissions=await queries.readmission_records(s, affected),
            )
            results = await self.services.reevaluate(
                s, affected, Notice.DUE if notify else Notice.SUPPRESSED, histories
            )
            events = sum(len(r.new_events) for r in results.values())
            to_review = tuple(sorted(f for f, r in results.items() if r.contradicted))
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
        )

    async def _factory_ids(self, s: Any) -> set[str]:
        """All factory ids, loaded once and only when a row names an unknown one."""
        if self._all_factory_ids is None:
            self._all_factory_ids = set(await queries.factory_ids(s))
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
        self.services.audit(s, actor, f"import.{kind}", file.name[:200], detail)


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


class _Memo:
    """A checking function applied once per distinct raw value (errors are not cached)."""

    def __init__(self, check: Callable[[str], Any]) -> None:
        self.check = check
        self.seen: dict[str, Any] = {}

    def __call__(self, raw: str) -> Any:
        try:
            return self.seen[raw]
        except KeyError:
            self.seen[raw] = value = self.check(raw)
            return value


class _Errors:
    """Collects (line, reason) pairs, the first reason for each line."""

    def __init__(self, file: Path, rows: int, found: list[tuple[int, str]]) -> None:
        self.file, self.rows = file, rows
        self.items: dict[int, str] = dict(found)
        self._first: dict[Any, int] = {}

    def add(self, line: int, reason: str) -> None:
        self.items.setdefault(line, reason)

    def once(self, key: Any, line: int, what: str, *args: Any) -> None:
        """Refuse ``key`` seen on an earlier line; ``what`` names it (formatted with ``args``
        only then: the check runs on every row of a large file)."""
        first = self._first.setdefault(key, line)
        if first != line:
            raise InvalidInput(
                f"{what.format(*args) if args else what} already appears on line {first}."
            )

    def refused(self, line: int, exc: PncError) -> None:
        self.add(line, exc.render().replace("`", ""))

    def raise_if_any(self) -> None:
        if self.items:
            raise ImportRejected(str(self.file), sorted(self.items.items()), self.rows)


def _checking(rows: list[Row], step: Progress) -> Iterator[Row]:
    total = len(rows)
    for i, row in enumerate(rows):
        if i % 1000 == 0:
            step("checking", i, total)
        yield row
    step("checking", total, total)


def _unknown(noun: str, value: str, known: set[str]) -> str:
    close = close_matches(value, known)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"there is no {noun} {value}{hint}: import the {noun} first"
