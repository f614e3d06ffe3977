"""Countries, their rules and their public-reporting issue catalogues.

The built-in defaults live in ``bot/data/*.toml``; the operator's TOML file (``PNC_CONFIG``)
is merged over them: a country table overrides the fields it names, and an ``issues`` list or
an ``issues_file`` (CSV, ``bot.catalogue_csv``) replaces that country's catalogue.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot import catalogue_csv, validation, zero_tolerance
from bot.errors import ConfigError, InvalidInput, PncError, UnknownCountry
from bot.policy import COUNTED_KINDS, Rules
from bot.render import render_text
from bot.settings import MemberId, Settings
from bot.suggest import close_matches
from bot.zero_tolerance import ZeroTolerance

Language = Literal["vi", "en"]
ISSUE_CODE = re.compile(r"^[A-Z][A-Z0-9]{0,9}-[0-9A-Z]{1,10}$")
log = logging.getLogger(__name__)
#: the country whose Inspectorate ``PNC_INSPECTORATE_EMAIL`` names
DEFAULT_COUNTRY = "VN"


@dataclass(frozen=True)
class Issue:
    code: str
    name: str
    cluster: str
    name_vi: str | None = None
    #: marked in the catalogue as a zero-tolerance issue (the default of ``zero_tolerance``)
    zero_tolerance: bool = False

    def name_in(self, language: str) -> str:
        return self.name_vi if language == "vi" and self.name_vi else self.name


class Catalogue:
    """The public-reporting issues in force in one country, in catalogue order."""

    def __init__(self, issues: Sequence[Issue], *, builtin: bool = False) -> None:
        self.issues = tuple(issues)
        #: the built-in default (``bot/data/catalogue.toml``), not an official list
        self.builtin = builtin
        self._by_code = {i.code: i for i in self.issues}
        self.codes = frozenset(self._by_code)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __iter__(self) -> Iterator[Issue]:
        return iter(self.issues)

    def __len__(self) -> int:
        return len(self.issues)

    def get(self, code: str) -> Issue | None:
        return self._by_code.get(code)

    def name(self, code: str, language: str = "en") -> str:
        """The issue's name, or the bare code for one no longer in the catalogue."""
        issue = self._by_code.get(code)
        return issue.name_in(language) if issue else code

    def suggest(self, code: str, n: int = 3) -> list[str]:
        return close_matches(code, self._by_code, n)

    def clusters(self) -> dict[str, list[Issue]]:
        grouped: dict[str, list[Issue]] = {}
        for issue in self.issues:
            grouped.setdefault(issue.cluster, []).append(issue)
        return grouped


@dataclass(frozen=True)
class Country:
    code: str
    name: str
    rules: Rules
    language: Language
    catalogue: Catalogue
    staff_channel: str | None = None
    inspectorate_emails: tuple[str, ...] = ()
    #: the language of the Inspectorate's referral (``vi``: Vietnamese, with English below)
    inspectorate_language: Language = "en"
    #: the Zero Tolerance Protocol in this country
    ztp: ZeroTolerance = field(default_factory=ZeroTolerance)
    #: how many days before Progress Report One is due the factory is reminded of it
    progress_reminder_days: int = 7


@dataclass(frozen=True)
class BootstrapRoles:
    """Roles given from the start by the config file (``[roles]``) and ``PNC_ADMINS``."""

    managers: tuple[str, ...] = ()
    assessors: tuple[str, ...] = ()
    viewers: tuple[str, ...] = ()

    def role_of(self, user_id: str) -> str | None:
        for role, users in (
            ("manager", self.managers),
            ("assessor", self.assessors),
            ("viewer", self.viewers),
        ):
            if user_id in users:
                return role
        return None


class Countries(Mapping[str, Country]):
    def __init__(self, countries: Mapping[str, Country]) -> None:
        self._countries = dict(sorted(countries.items()))

    def __getitem__(self, code: str) -> Country:
        return self._countries[code]

    def __iter__(self) -> Iterator[str]:
        return iter(self._countries)

    def __len__(self) -> int:
        return len(self._countries)

    def country(self, code: str) -> Country:
        """The country with this code (case-insensitive), or ``UnknownCountry``."""
        try:
            return self._countries[code.strip().upper()]
        except KeyError:
            close = close_matches(code, self._countries)
            raise UnknownCountry(
                validation.shown(code, 20),
                close,
                extra=f"Known countries: {', '.join(self._countries)}.",
            ) from None

    @property
    def enabled(self) -> list[Country]:
        return [c for c in self._countries.values() if c.rules.pnc_enabled]

    @property
    def on_builtin_catalogue(self) -> list[Country]:
        """The covered countries still on the built-in catalogue, not an official list."""
        return [c for c in self.enabled if c.catalogue.builtin]

    @property
    def default(self) -> Country:
        """The country meant when none is named: Viet Nam, else the first one covered."""
        if DEFAULT_COUNTRY in self._countries:
            return self._countries[DEFAULT_COUNTRY]
        return (self.enabled or list(self._countries.values()))[0]


# --- the config file ------------------------------------------------------------------------


class _IssueConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=ISSUE_CODE.pattern)
    name: str = Field(min_length=1, max_length=300)
    name_vi: str | None = Field(None, max_length=300)
    cluster: str = Field(min_length=1, max_length=100)
    zero_tolerance: bool = False


class _CountryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=100)
    pnc_enabled: bool | None = None
    public_reporting_since: date | None = None
    threshold: int | None = Field(None, ge=1, le=100)
    consecutive: int | None = Field(None, ge=1, le=20)
    #: the assessment kinds that count (``policy.AssessmentKind``); default regular, unannounced
    counted_kinds: list[str] | None = None
    language: Language | None = None
    staff_channel: str | None = Field(None, pattern=r"^[A-Z0-9]{6,20}$")
    inspectorate_emails: list[str] | None = None
    inspectorate_language: Language | None = None
    issues: list[_IssueConfig] | None = Field(None, min_length=1)
    #: a CSV file (code,name,name_vi,cluster), relative to the config file; instead of ``issues``
    issues_file: str | None = Field(None, min_length=1, max_length=1000)
    #: the Zero Tolerance Protocol: its issue codes (default: those the catalogue marks), the
    #: authorities' addresses and language (default: ``inspectorate_language``), the deadlines
    zero_tolerance: list[str] | None = None
    ztp_emails: list[str] | None = None
    ztp_language: Language | None = None
    ztp_investigation_hours: int | None = Field(None, ge=1, le=720)
    ztp_action_plan_hours: int | None = Field(None, ge=1, le=720)
    #: the factory's reminder of Progress Report One, this many days before it is due
    progress_reminder_days: int | None = Field(None, ge=1, le=29)


class _RolesConfig(BaseModel):
    """Slack member ids (or mentions, kept as the id) by role."""

    model_config = ConfigDict(extra="forbid")
    managers: list[MemberId] = []
    assessors: list[MemberId] = []
    viewers: list[MemberId] = []


class _FileConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    countries: dict[str, _CountryConfig] = {}
    roles: _RolesConfig = _RolesConfig()


def _read_toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None


def _parse(data: dict[str, Any], where: str) -> _FileConfig:
    try:
        return _FileConfig.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise ConfigError(f"{where} is invalid: " + "; ".join(problems)) from None


def _counted_kinds(code: str, kinds: list[str] | None) -> frozenset[str]:
    """A country's ``counted_kinds``, every one a known assessment kind (the framework's
    default when not given)."""
    if kinds is None:
        return COUNTED_KINDS
    kinds = [k.strip().lower() for k in kinds]
    known = ", ".join(validation.ASSESSMENT_KINDS)
    unknown = sorted({k for k in kinds if k not in validation.ASSESSMENT_KINDS})
    if unknown:
        raise ConfigError(
            f"Country {code}: counted_kinds names unknown assessment "
            f"kind{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}.",
            f"The assessment kinds are {known}.",
        )
    if not kinds:
        raise ConfigError(
            f"Country {code}: counted_kinds is empty, so no assessment would ever count.",
            f"Name at least one of {known}, or set pnc_enabled = false.",
        )
    return frozenset(kinds)


def _builtin(name: str) -> str:
    return resources.files("bot").joinpath("data", name).read_text(encoding="utf-8")


def builtin_catalogue() -> Catalogue:
    data = _read_toml(_builtin("catalogue.toml"), "the built-in catalogue")
    return Catalogue([Issue(**row) for row in data["issues"]], builtin=True)


def issue_entry(cells: Mapping[str, Any]) -> catalogue_csv.Entry:
    """One catalogue entry (a ``[[countries.XX.issues]]`` table or a CSV row) checked: a code of
    the catalogue's form; names and a cluster on one line, without invisible characters."""
    code = str(cells.get("code") or "").strip()
    if not ISSUE_CODE.fullmatch(code):
        raise InvalidInput(
            f"`{validation.shown(code, 30)}` is not an issue code.",
            "Use capital letters or digits, a dash, then capital letters or digits, e.g. `CL-01`.",
        )
    name_vi = str(cells.get("name_vi") or "")
    return {
        "code": code,
        "name": validation.text(str(cells.get("name") or ""), "name", 300),
        "name_vi": validation.text(name_vi, "Vietnamese name", 300) if name_vi.strip() else None,
        "cluster": validation.text(str(cells.get("cluster") or ""), "cluster", 100),
    }


def _file_catalogue(
    code: str, cfg: _CountryConfig, config: Path
) -> list[catalogue_csv.Entry] | None:
    """The catalogue the config file gives a country: a CSV file (``issues_file``, relative to
    the config file) or ``[[countries.XX.issues]]`` entries; None if it gives neither."""
    if cfg.issues_file is not None and cfg.issues is not None:
        raise ConfigError(
            f"{config}: [countries.{code}] gives both issues_file and [[countries.{code}.issues]].",
            "Give the catalogue one way: the CSV file, or the entries.",
        )
    if cfg.issues_file is not None:
        try:
            return catalogue_csv.read(
                config.parent / Path(cfg.issues_file).expanduser(), issue_entry
            )
        except ConfigError as exc:
            raise ConfigError(f"Country {code}: {exc.message}", exc.hint) from None
    entries = []
    for n, issue in enumerate(cfg.issues or (), 1):
        try:
            entries.append(issue_entry(issue.model_dump()))
        except PncError as exc:
            raise ConfigError(
                f"{config}: [[countries.{code}.issues]] entry {n} ({issue.code}): {exc.message}",
                exc.hint,
            ) from None
    return entries if cfg.issues is not None else None


#: the codes a config file's ``[[countries.XX.issues]]`` entries mark ``zero_tolerance = true``
_MARKED = "zero_tolerance_marked"


def builtin_catalogue_notice(countries: Sequence[Country]) -> str:
    """One line telling operators that these countries use the built-in catalogue, and how to
    load the official list."""
    return " ".join(render_text("text/builtin_catalogue.txt", countries=countries).split())


def warn_builtin_catalogues(countries: Countries) -> None:
    """At start-up: one WARNING naming the covered countries still on the built-in catalogue."""
    if unofficial := countries.on_builtin_catalogue:
        log.warning(builtin_catalogue_notice(unofficial))


@dataclass
class Config:
    """Everything the TOML files say, merged: the countries and the bootstrap roles."""

    countries: Countries
    roles: BootstrapRoles = field(default_factory=BootstrapRoles)


def load_config(settings: Settings) -> Config:
    """Built-in defaults, then the operator's file, then the environment's per-country values."""
    merged: dict[str, dict[str, Any]] = {}
    builtin = _parse(_read_toml(_builtin("countries.toml"), "built-in countries"), "built-in")
    for code, cfg in builtin.countries.items():
        merged[code] = cfg.model_dump(exclude_unset=True)

    file_cfg = _FileConfig()
    if settings.config_path is not None:
        path = Path(settings.config_path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"Cannot read PNC_CONFIG file {path}: {exc.strerror}.",
                "Set PNC_CONFIG to a readable TOML file, or unset it.",
            ) from None
        except UnicodeDecodeError:
            raise ConfigError(
                f"PNC_CONFIG file {path} is not UTF-8 text.", "Save it as UTF-8."
            ) from None
        file_cfg = _parse(_read_toml(text, str(path)), str(path))
        for code, cfg in file_cfg.countries.items():
            if not re.fullmatch(r"[A-Z]{2}", code):
                raise ConfigError(f"{path}: country code {code!r} must be two capital letters.")
            values = cfg.model_dump(exclude_unset=True, exclude={"issues", "issues_file"})
            issues = _file_catalogue(code, cfg, path)
            if issues is not None:
                values["issues"] = issues
                values[_MARKED] = [i.code for i in cfg.issues or () if i.zero_tolerance]
            merged.setdefault(code, {}).update(values)

    default_catalogue = builtin_catalogue()
    countries: dict[str, Country] = {}
    for code, values in merged.items():
        if not values.get("name"):
            raise ConfigError(f"Country {code} needs a name in the config file.")
        defaults = Rules()
        rules = Rules(
            pnc_enabled=values.get("pnc_enabled", False),
            public_reporting_since=values.get(
                "public_reporting_since", defaults.public_reporting_since
            ),
            threshold=values.get("threshold", defaults.threshold),
            consecutive=values.get("consecutive", defaults.consecutive),
            counted_kinds=_counted_kinds(code, values.get("counted_kinds")),
        )
        issues = values.get("issues")
        marked = set(values.get(_MARKED, ()))
        catalogue = (
            Catalogue([Issue(**i, zero_tolerance=i["code"] in marked) for i in issues])
            if issues is not None
            else default_catalogue
        )
        if len({i.code for i in catalogue}) != len(catalogue):
            raise ConfigError(f"Country {code}: the issue catalogue repeats a code.")
        inspectorate = values.get("inspectorate_emails")
        if inspectorate is None and code == DEFAULT_COUNTRY and settings.inspectorate_email:
            inspectorate = [settings.inspectorate_email]
        try:
            inspectorate = validation.emails(inspectorate) if inspectorate else ()
        except PncError as exc:
            raise ConfigError(f"Country {code}, Inspectorate: {exc.message}", exc.hint) from None
        countries[code] = Country(
            code=code,
            name=values["name"],
            rules=rules,
            language=values.get("language", "en"),
            catalogue=catalogue,
            staff_channel=values.get("staff_channel") or settings.staff_channel,
            inspectorate_emails=inspectorate,
            inspectorate_language=values.get("inspectorate_language", "en"),
            ztp=zero_tolerance.configured(
                code,
                values,
                catalogue.codes,
                frozenset(i.code for i in catalogue if i.zero_tolerance),
                frozenset(i.code for i in default_catalogue if i.zero_tolerance),
                catalogue.suggest,
            ),
            progress_reminder_days=values.get("progress_reminder_days", 7),
        )

    roles = BootstrapRoles(
        managers=tuple(dict.fromkeys([*settings.admins, *file_cfg.roles.managers])),
        assessors=tuple(dict.fromkeys(file_cfg.roles.assessors)),
        viewers=tuple(dict.fromkeys(file_cfg.roles.viewers)),
    )
    return Config(Countries(countries), roles)
