"""A country's public-reporting issue catalogue from a CSV file (``issues_file`` in the config
file): the header ``code,name,name_vi,cluster``, each row checked as a ``[[countries.XX.issues]]``
entry is (the check is given by ``bot.countries``), every bad row reported with its line number
in one ``ConfigError`` naming the file. Pure, apart from reading the file in ``read``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from pathlib import Path

from bot import validation
from bot.csvfile import Errors
from bot.errors import ConfigError, PncError

REQUIRED = ("code", "name", "cluster")
OPTIONAL = ("name_vi",)
HEADER = "code,name,name_vi,cluster"

#: one catalogue entry: code, name, name_vi (None when empty), cluster
Entry = dict[str, str | None]
#: checks the cells of one row, returning the entry or raising a ``PncError``
Check = Callable[[Mapping[str, str]], Entry]


def read(path: Path, check: Check) -> list[Entry]:
    """The catalogue in the CSV file at ``path``, every row checked with ``check``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"Cannot read the issue catalogue {path}: {exc.strerror}.",
            "issues_file is found relative to the config file; name a CSV file that exists.",
        ) from None
    return parse(data, str(path), check)


def parse(data: bytes, where: str, check: Check) -> list[Entry]:
    """The entries of a catalogue CSV file's bytes (``where`` names the file in refusals)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = data[: exc.start].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        raise _rejected(
            where, {before.count(b"\n") + 1: "not UTF-8 text: save it as CSV UTF-8"}
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        while header is not None and not "".join(header).strip():  # blank lines first
            header = next(reader, None)
    except csv.Error as exc:
        raise _rejected(where, {1: f"unreadable header ({exc})"}) from None
    names = [validation.shown(h.strip().lower(), 40) for h in header or ()]
    _check_header(names, where, reader.line_num or 1)

    errors = Errors(Path(where), 0, [])
    entries: list[Entry] = []
    line = reader.line_num + 1
    try:
        for record in reader:
            start, line = line, reader.line_num + 1
            if not "".join(record).strip():
                continue  # blank lines are allowed
            if len(record) != len(names):
                errors.add(
                    start, f"expected {len(names)} cells ({','.join(names)}), found {len(record)}"
                )
                continue
            try:
                entry = check(dict(zip(names, record, strict=True)))
                errors.once(entry["code"], start, "code {}", entry["code"])
            except PncError as exc:
                errors.refused(start, exc)
                continue
            entries.append(entry)
    except csv.Error as exc:
        errors.add(reader.line_num, f"unreadable CSV ({exc}); nothing after it was read")
    if errors.items:
        raise _rejected(where, errors.items)
    if not entries:
        raise _rejected(
            where, {line: f"no issues: give one row per issue after the header {HEADER}"}
        )
    return entries


def _check_header(names: list[str], where: str, line: int) -> None:
    if not any(names):
        raise _rejected(where, {1: f"the file is empty: expected the header {HEADER}"})
    problems = []
    missing = [c for c in REQUIRED if c not in names]
    unknown = [n for n in names if n not in REQUIRED + OPTIONAL]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if missing:
        problems.append(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
    if repeated:
        problems.append(f"repeated column {', '.join(repeated)}")
    if problems:
        raise _rejected(where, {line: "; ".join(problems) + f" (expected the header {HEADER})"})


def _rejected(where: str, errors: Mapping[int, str]) -> ConfigError:
    """One refusal naming the file and listing each bad line."""
    n = len(errors)
    lines = "".join(f"\n  line {line}: {reason}" for line, reason in sorted(errors.items()))
    return ConfigError(
        f"The issue catalogue {where} has {n} bad {'row' if n == 1 else 'rows'}; fix "
        f"{'it' if n == 1 else 'them'} and start again (columns {HEADER}, "
        f"name_vi may be empty):{lines}"
    )
