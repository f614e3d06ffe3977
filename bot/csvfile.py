"""Reading the CSV files of an import (SPEC §4 columns): the header checked, every data row
kept with the line it starts on, and the bad rows collected with their line numbers, so that a
file is refused whole, saying what is wrong on each line. Pure: no database.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot import validation
from bot.errors import ImportRejected, InvalidInput, PncError
from bot.suggest import close_matches

#: phase, rows done, rows in all
Progress = Callable[[str, int, int], None]

COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # kind: (required columns, optional columns)
    "factories": (("factory_id", "name", "country", "emails"), ("language", "cycle_end")),
    "buyers": (("buyer_id", "name", "emails"), ()),
    "subscriptions": (("buyer_id", "factory_id"), ()),
    # kind: regular (when empty), unannounced, advisory or verification (the importer checks
    # it with ``validation.assessment_kind``; the country's rules say which kinds count);
    # report_on: the date of the assessment report (empty: the assessment's own date)
    "assessments": (("factory_id", "assessed_on", "nc_issues"), ("kind", "report_on")),
}
KINDS = tuple(COLUMNS)


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


class Memo:
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


class Errors:
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


def checking(rows: list[Row], step: Progress) -> Iterator[Row]:
    total = len(rows)
    for i, row in enumerate(rows):
        if i % 1000 == 0:
            step("checking", i, total)
        yield row
    step("checking", total, total)


def unknown(noun: str, value: str, known: set[str]) -> str:
    close = close_matches(value, known)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"there is no {noun} {value}{hint}: import the {noun} first"
