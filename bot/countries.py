"""Countries, their rules and their public-reporting issue catalogues.

The built-in defaults live in ``bot/data/*.toml``; the operator's TOML file (``PNC_CONFIG``)
is merged over them: a country table overrides the fields it names, and an ``issues`` list
replaces that country's catalogue.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot import validation
from bot.errors import ConfigError, PncError, UnknownCountry
from bot.policy import Rules
from bot.settings import MemberId, Settings
from bot.suggest import close_matches

Language = Literal["vi", "en"]
ISSUE_CODE = re.compile(r"^[A-Z][A-Z0-9]{0,9}-[0-9A-Z]{1,10}$")
#: the country whose Inspectorate ``PNC_INSPECTORATE_EMAIL`` names
DEFAULT_COUNTRY = "VN"


@dataclass(frozen=True)
class Issue:
    code: str
    name: str
    cluster: str
    name_vi: str | None = None

    def name_in(self, language: str) -> str:
        return self.name_vi if language == "vi" and self.name_vi else self.name


class Catalogue:
    """The public-reporting issues in force in one country, in catalogue order."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = tuple(issues)
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


class _CountryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=100)
    pnc_enabled: bool | None = None
    public_reporting_since: date | None = None
    threshold: int | None = Field(None, ge=1, le=100)
    consecutive: int | None = Field(None, ge=1, le=20)
    language: Language | None = None
    staff_channel: str | None = Field(None, pattern=r"^[A-Z0-9]{6,20}$")
    inspectorate_emails: list[str] | None = None
    issues: list[_IssueConfig] | None = Field(None, min_length=1)


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


def _builtin(name: str) -> str:
    return resources.files("bot").joinpath("data", name).read_text(encoding="utf-8")


def builtin_catalogue() -> Catalogue:
    data = _read_toml(_builtin("catalogue.toml"), "the built-in catalogue")
    return Catalogue([Issue(**row) for row in data["issues"]])


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
            merged.setdefault(code, {}).update(cfg.model_dump(exclude_unset=True))

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
        )
        issues = values.get("issues")
        catalogue = (
            Catalogue([Issue(**i) for i in issues]) if issues is not None else default_catalogue
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
        )

    roles = BootstrapRoles(
        managers=tuple(dict.fromkeys([*settings.admins, *file_cfg.roles.managers])),
        assessors=tuple(dict.fromkeys(file_cfg.roles.assessors)),
        viewers=tuple(dict.fromkeys(file_cfg.roles.viewers)),
    )
    return Config(Countries(countries), roles)
