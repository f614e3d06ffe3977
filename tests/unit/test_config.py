"""Configuration (SPEC §4): the environment through ``bot.settings``; the TOML file, countries
and issue catalogues through ``bot.countries``."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from bot.countries import (
    ISSUE_CODE,
    BootstrapRoles,
    Catalogue,
    Countries,
    builtin_catalogue,
    load_config,
)
from bot.errors import ConfigError, UnknownCountry
from bot.settings import SLACK_API_URL, Settings, load_settings

SPEC_VARIABLES = (
    "PNC_DATABASE_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "PNC_SLACK_API_URL",
    "PNC_STAFF_CHANNEL",
    "PNC_SMTP_URL",
    "PNC_OUTBOX_DIR",
    "PNC_MAIL_FROM",
    "PNC_INSPECTORATE_EMAIL",
    "PNC_ADMINS",
    "PNC_TIMEZONE",
    "PNC_CALL_REMINDER_DAYS",
    "PNC_READMISSION_REMINDER_DAYS",
    "PNC_CONFIG",
)

CAT_CLUSTERS = {
    "Child Labour",
    "Discrimination",
    "Forced Labour",
    "Freedom of Association and Collective Bargaining",
    "Compensation",
    "Contracts and Human Resources",
    "Occupational Safety and Health",
    "Working Time",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees only the variables it sets."""
    for name in SPEC_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pnc.toml"
    path.write_text(text, encoding="utf-8")
    return path


def config_from(tmp_path: Path, text: str, **settings: object):
    return load_config(Settings(config_path=write_config(tmp_path, text), **settings))


# --- settings: defaults -----------------------------------------------------------------------


def test_settings_defaults_match_the_spec() -> None:
    s = load_settings()
    assert s.database_url.get_secret_value() == "sqlite+aiosqlite:///var/pnc.db"
    assert s.slack_bot_token is None
    assert s.slack_signing_secret is None
    assert s.slack_app_token is None
    assert s.slack_api_url == SLACK_API_URL
    assert s.slack_api_url.startswith("https://slack.com/")
    assert s.staff_channel is None
    assert s.smtp_url is None
    assert s.outbox_dir == Path("var/outbox")
    assert s.mail_from == "pnc-bot@localhost"
    assert s.inspectorate_email is None
    assert s.admins == ()
    assert s.timezone == "Asia/Ho_Chi_Minh"
    assert s.tz.key == "Asia/Ho_Chi_Minh"
    assert s.call_reminder_days == 3
    assert s.readmission_reminder_days == 7
    assert s.config_path is None


# --- settings: the environment ----------------------------------------------------------------


def test_settings_read_every_variable_by_its_spec_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    values = {
        "PNC_DATABASE_URL": "postgresql+asyncpg://pnc:pw@db.internal:5432/pnc",
        "SLACK_BOT_TOKEN": "xoxb-bot-token",
        "SLACK_SIGNING_SECRET": "signing-secret",
        "SLACK_APP_TOKEN": "xapp-app-token",
        "PNC_SLACK_API_URL": "http://127.0.0.1:9999/api/",
        "PNC_STAFF_CHANNEL": "C0STAFF01",
        "PNC_SMTP_URL": "smtps://mailer:pw@smtp.example:465",
        "PNC_OUTBOX_DIR": str(tmp_path / "outbox"),
        "PNC_MAIL_FROM": "pnc@betterwork.example",
        "PNC_INSPECTORATE_EMAIL": "inspection@molisa.example",
        "PNC_ADMINS": "U01, U02",
        "PNC_TIMEZONE": "Asia/Phnom_Penh",
        "PNC_CALL_REMINDER_DAYS": "5",
        "PNC_READMISSION_REMINDER_DAYS": "14",
        "PNC_CONFIG": str(tmp_path / "pnc.toml"),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    assert s.database_url.get_secret_value() == values["PNC_DATABASE_URL"]
    assert s.slack_bot_token is not None
    assert s.slack_bot_token.get_secret_value() == "xoxb-bot-token"
    assert s.slack_signing_secret is not None
    assert s.slack_signing_secret.get_secret_value() == "signing-secret"
    assert s.slack_app_token is not None
    assert s.slack_app_token.get_secret_value() == "xapp-app-token"
    assert s.slack_api_url == "http://127.0.0.1:9999/api/"
    assert s.staff_channel == "C0STAFF01"
    assert s.smtp_url is not None
    assert s.smtp_url.get_secret_value() == "smtps://mailer:pw@smtp.example:465"
    assert s.outbox_dir == tmp_path / "outbox"
    assert s.mail_from == "pnc@betterwork.example"
    assert s.inspectorate_email == "inspection@molisa.example"
    assert s.admins == ("U01", "U02")
    assert s.timezone == "Asia/Phnom_Penh"
    assert s.call_reminder_days == 5
    assert s.readmission_reminder_days == 14
    assert s.config_path == tmp_path / "pnc.toml"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("U01, U02", ("U01", "U02")), ("U01", ("U01",)), (" U01 ,, U02 , ", ("U01", "U02")), ("", ())],
)
def test_admins_are_a_comma_separated_list(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: tuple[str, ...]
) -> None:
    monkeypatch.setenv("PNC_ADMINS", value)
    assert load_settings().admins == expected


def test_settings_accept_values_by_field_name() -> None:
    s = Settings(admins="U09", call_reminder_days=0, config_path="x.toml")
    assert s.admins == ("U09",)
    assert s.call_reminder_days == 0
    assert s.config_path == Path("x.toml")


# --- settings: secrets ------------------------------------------------------------------------


def test_secrets_never_appear_in_repr_or_str(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PNC_DATABASE_URL", "postgresql+asyncpg://pnc:db-s3cret@db/pnc")
    monkeypatch.setenv("PNC_SMTP_URL", "smtp://mailer:smtp-s3cret@smtp.example:587")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-bot-s3cret")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "signing-s3cret")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-app-s3cret")
    s = load_settings()
    for shown in (repr(s), str(s)):
        assert "s3cret" not in shown


def test_database_url_redacted_hides_the_password() -> None:
    s = Settings(database_url="postgresql+asyncpg://pnc:db-s3cret@db.internal:5432/pnc")
    assert "db-s3cret" not in s.database_url_redacted
    assert s.database_url_redacted.startswith("postgresql+asyncpg://pnc:")
    assert "db.internal:5432/pnc" in s.database_url_redacted


def test_database_url_redacted_leaves_sqlite_urls_readable() -> None:
    assert Settings().database_url_redacted == "sqlite+aiosqlite:///var/pnc.db"


def test_config_error_never_shows_a_database_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PNC_DATABASE_URL", "mysql://pnc:db-s3cret@db.internal/pnc")
    with pytest.raises(ConfigError) as exc_info:
        load_settings()
    assert "PNC_DATABASE_URL" in str(exc_info.value)
    assert "db-s3cret" not in exc_info.value.render()


def test_config_error_never_shows_a_password_from_an_unparsable_database_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PNC_DATABASE_URL", "postgresql+asyncpg://pnc:db-s3cret@db:notaport/pnc")
    with pytest.raises(ConfigError) as exc_info:
        load_settings()
    assert "PNC_DATABASE_URL" in str(exc_info.value)
    assert "db-s3cret" not in exc_info.value.render()


def test_config_error_about_another_variable_never_shows_the_smtp_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PNC_SMTP_URL", "smtp://mailer:smtp-s3cret@smtp.example:587")
    monkeypatch.setenv("PNC_TIMEZONE", "Mars/Olympus_Mons")
    with pytest.raises(ConfigError) as exc_info:
        load_settings()
    assert "smtp-s3cret" not in exc_info.value.render()


# --- settings: bad values ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ["Mars/Olympus_Mons", "Asia", "../etc/passwd", ""])
def test_unknown_time_zone_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PNC_TIMEZONE", value)
    with pytest.raises(ConfigError) as exc_info:
        load_settings()
    assert "PNC_TIMEZONE" in str(exc_info.value)


@pytest.mark.parametrize("name", ["PNC_CALL_REMINDER_DAYS", "PNC_READMISSION_REMINDER_DAYS"])
@pytest.mark.parametrize("value", ["three", "2.5", "-1", "1000"])
def test_bad_reminder_days_are_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as exc_info:
        load_settings()
    assert name in str(exc_info.value)


@pytest.mark.parametrize(
    "url",
    [
        "mysql://pnc@db/pnc",
        "sqlite:///var/pnc.db",
        "postgresql://pnc@db/pnc",
        "postgresql+psycopg2://pnc@db/pnc",
        "not a url",
    ],
)
def test_unsupported_database_driver_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("PNC_DATABASE_URL", url)
    with pytest.raises(ConfigError) as exc_info:
        load_settings()
    assert "PNC_DATABASE_URL" in str(exc_info.value)
    assert "sqlite+aiosqlite" in str(exc_info.value)


def test_libpq_sslmode_in_a_postgresql_url_is_read_as_asyncpg_ssl(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Managed databases hand out URLs with libpq's ``sslmode``; asyncpg calls it ``ssl``."""
    url = "postgresql+asyncpg://pnc:p%40ss@db.internal:5432/pnc?sslmode=require"
    monkeypatch.setenv("PNC_DATABASE_URL", url)
    given = load_settings().database_url.get_secret_value()
    assert given == "postgresql+asyncpg://pnc:p%40ss@db.internal:5432/pnc?ssl=require"
    kept = "postgresql+asyncpg://pnc@db/pnc?password=q-s3cret&ssl=verify-full"
    assert Settings(database_url=kept).database_url.get_secret_value() == kept
    # the rest stays as written (the logs mask a secret as it is written)
    written = "postgresql+asyncpg://pnc@db/pnc?password=q%2Ds3cret&sslmode=prefer"
    renamed = Settings(database_url=written).database_url.get_secret_value()
    assert renamed == "postgresql+asyncpg://pnc@db/pnc?password=q%2Ds3cret&ssl=prefer"


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("foo=bar&sslrootcert=ca.pem", "foo, sslrootcert, which asyncpg does not take"),
        ("ssl=true", "use one of disable, allow, prefer, require, verify-ca, verify-full"),
        ("sslmode=require&ssl=require", "both ssl and sslmode"),
        ("port=5432&port=5433", "port given more than once"),
    ],
)
def test_what_asyncpg_would_refuse_in_the_url_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, query: str, named: str
) -> None:
    """Not a traceback at the first connection: the variable and the option are named, and
    the password is not shown."""
    monkeypatch.setenv("PNC_DATABASE_URL", f"postgresql+asyncpg://pnc:pw-s3cret@db/pnc?{query}")
    with pytest.raises(ConfigError) as exc_info:
        load_settings()
    message = str(exc_info.value)
    assert "PNC_DATABASE_URL" in message and named in message
    assert "pw-s3cret" not in message


def test_config_error_lists_every_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PNC_TIMEZONE", "Nowhere")
    monkeypatch.setenv("PNC_CALL_REMINDER_DAYS", "soon")
    with pytest.raises(ConfigError) as exc_info:
        load_settings()
    assert "PNC_TIMEZONE" in str(exc_info.value)
    assert "PNC_CALL_REMINDER_DAYS" in str(exc_info.value)


# --- built-in countries and catalogue ---------------------------------------------------------


def test_builtin_viet_nam_has_the_framework_rules() -> None:
    vn = load_config(Settings()).countries["VN"]
    assert vn.name == "Viet Nam"
    assert vn.rules.pnc_enabled is True
    assert vn.rules.public_reporting_since == date(2017, 7, 1)
    assert vn.rules.threshold == 4
    assert vn.rules.consecutive == 3
    assert vn.language == "vi"
    assert vn.inspectorate_emails == ()
    assert vn.staff_channel is None


def test_builtin_other_countries_are_present_but_not_enabled() -> None:
    countries = load_config(Settings()).countries
    kh = countries["KH"]
    assert kh.name == "Cambodia"
    assert kh.rules.pnc_enabled is False
    assert kh.language == "en"
    assert [c.code for c in countries.enabled] == ["VN"]
    assert {"BD", "KH", "ID", "JO"} <= set(countries)


def test_builtin_countries_use_the_builtin_catalogue() -> None:
    countries = load_config(Settings()).countries
    assert countries["VN"].catalogue.codes == builtin_catalogue().codes
    assert countries["KH"].catalogue.codes == builtin_catalogue().codes


def test_builtin_catalogue_has_the_eight_cat_clusters() -> None:
    assert set(builtin_catalogue().clusters()) == CAT_CLUSTERS


def test_builtin_catalogue_codes_are_unique_and_well_formed() -> None:
    codes = [issue.code for issue in builtin_catalogue()]
    assert len(codes) == len(set(codes))
    assert all(ISSUE_CODE.fullmatch(code) for code in codes)


def test_builtin_catalogue_names_every_issue_in_english_and_vietnamese() -> None:
    catalogue = builtin_catalogue()
    assert len(catalogue) > 0
    for issue in catalogue:
        assert issue.name.strip()
        assert issue.name_vi and issue.name_vi.strip()
        assert issue.name_vi != issue.name
        assert catalogue.name(issue.code, "vi") == issue.name_vi
        assert catalogue.name(issue.code, "en") == issue.name


def test_catalogue_name_of_a_retired_code_is_the_code() -> None:
    assert builtin_catalogue().name("ZZ-99") == "ZZ-99"


# --- the TOML file ----------------------------------------------------------------------------

OVERRIDES = """
[countries.VN]
threshold = 5
staff_channel = "C0VNSTAFF"

[countries.KH]
pnc_enabled = true
public_reporting_since = 2020-01-01
threshold = 6
consecutive = 2
language = "en"

[countries.MM]
name = "Myanmar"
pnc_enabled = true
"""


def test_file_overrides_only_the_fields_it_names(tmp_path: Path) -> None:
    vn = config_from(tmp_path, OVERRIDES).countries["VN"]
    assert vn.rules.threshold == 5
    assert vn.staff_channel == "C0VNSTAFF"
    assert vn.name == "Viet Nam"
    assert vn.rules.pnc_enabled is True
    assert vn.rules.public_reporting_since == date(2017, 7, 1)
    assert vn.rules.consecutive == 3
    assert vn.language == "vi"


def test_file_enables_a_builtin_country_with_its_own_rules(tmp_path: Path) -> None:
    countries = config_from(tmp_path, OVERRIDES).countries
    kh = countries["KH"]
    assert kh.name == "Cambodia"
    assert kh.rules.pnc_enabled is True
    assert kh.rules.public_reporting_since == date(2020, 1, 1)
    assert kh.rules.threshold == 6
    assert kh.rules.consecutive == 2
    assert {c.code for c in countries.enabled} == {"VN", "KH", "MM"}


def test_file_adds_a_new_country_with_the_framework_defaults(tmp_path: Path) -> None:
    mm = config_from(tmp_path, OVERRIDES).countries["MM"]
    assert mm.name == "Myanmar"
    assert mm.rules.pnc_enabled is True
    assert mm.rules.threshold == 4
    assert mm.rules.consecutive == 3
    assert mm.rules.public_reporting_since == date(2017, 7, 1)
    assert mm.language == "en"
    assert mm.catalogue.codes == builtin_catalogue().codes


def test_file_is_found_through_pnc_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PNC_CONFIG", str(write_config(tmp_path, OVERRIDES)))
    assert load_config(load_settings()).countries["KH"].rules.pnc_enabled is True


def test_file_issues_replace_the_catalogue_of_that_country_only(tmp_path: Path) -> None:
    config = config_from(
        tmp_path,
        """
        [[countries.VN.issues]]
        code = "CL-01"
        name = "Workers under the legal age for employment"
        name_vi = "Lao động dưới tuổi"
        cluster = "Child Labour"

        [[countries.VN.issues]]
        code = "WT-09"
        name = "Rest days not given"
        cluster = "Working Time"
        """,
    )
    vn = config.countries["VN"].catalogue
    assert [i.code for i in vn] == ["CL-01", "WT-09"]
    assert vn.name("CL-01", "vi") == "Lao động dưới tuổi"
    assert vn.name("WT-09", "vi") == "Rest days not given"
    assert vn.get("WT-09") is not None
    assert vn.get("WT-09").cluster == "Working Time"
    assert config.countries["KH"].catalogue.codes == builtin_catalogue().codes


def test_roles_from_the_file_merge_with_pnc_admins(tmp_path: Path) -> None:
    roles = config_from(
        tmp_path,
        """
        [roles]
        managers = ["U09", "U01"]
        assessors = ["U0A"]
        viewers = ["U0V"]
        """,
        admins="U01, U02",
    ).roles
    assert roles.managers == ("U01", "U02", "U09")
    assert roles.role_of("U01") == "manager"
    assert roles.role_of("U02") == "manager"
    assert roles.role_of("U09") == "manager"
    assert roles.role_of("U0A") == "assessor"
    assert roles.role_of("U0V") == "viewer"
    assert roles.role_of("U0X") is None


def test_pnc_admins_alone_are_managers() -> None:
    roles = load_config(Settings(admins="U01,U02")).roles
    assert roles == BootstrapRoles(managers=("U01", "U02"))


def test_bootstrap_role_of_prefers_the_highest_role() -> None:
    roles = BootstrapRoles(managers=("U1",), assessors=("U1", "U2"), viewers=("U1", "U2", "U3"))
    assert roles.role_of("U1") == "manager"
    assert roles.role_of("U2") == "assessor"
    assert roles.role_of("U3") == "viewer"


def test_inspectorate_email_from_the_environment_applies_to_viet_nam_only() -> None:
    countries = load_config(Settings(inspectorate_email="Inspection@MOLISA.Example")).countries
    assert countries["VN"].inspectorate_emails == ("Inspection@molisa.example",)
    assert countries["KH"].inspectorate_emails == ()


def test_inspectorate_emails_from_the_file_win_over_the_environment(tmp_path: Path) -> None:
    countries = config_from(
        tmp_path,
        """
        [countries.VN]
        inspectorate_emails = ["referrals@molisa.example", "chief@molisa.example"]

        [countries.KH]
        inspectorate_emails = ["inspection@mlvt.example"]
        """,
        inspectorate_email="env@molisa.example",
    ).countries
    assert countries["VN"].inspectorate_emails == (
        "referrals@molisa.example",
        "chief@molisa.example",
    )
    assert countries["KH"].inspectorate_emails == ("inspection@mlvt.example",)


def test_staff_channel_from_the_environment_is_the_default_for_every_country(
    tmp_path: Path,
) -> None:
    countries = config_from(tmp_path, OVERRIDES, staff_channel="C0DEFAULT").countries
    assert countries["VN"].staff_channel == "C0VNSTAFF"
    assert countries["KH"].staff_channel == "C0DEFAULT"
    assert countries["MM"].staff_channel == "C0DEFAULT"


# --- the TOML file: errors --------------------------------------------------------------------


def test_missing_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError) as exc_info:
        load_config(Settings(config_path=path))
    assert str(path) in str(exc_info.value)
    assert "PNC_CONFIG" in exc_info.value.render()


def test_directory_as_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc_info:
        load_config(Settings(config_path=tmp_path))
    assert str(tmp_path) in str(exc_info.value)


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[countries.VN]\nname = "Vi\xeat Nam"\n'.encode("latin-1"))
    with pytest.raises(ConfigError) as exc_info:
        load_config(Settings(config_path=path))
    assert str(path) in str(exc_info.value)


def test_invalid_toml_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[countries.VN\nthreshold = 5\n")
    with pytest.raises(ConfigError) as exc_info:
        load_config(Settings(config_path=path))
    assert str(path) in str(exc_info.value)
    assert "not valid TOML" in str(exc_info.value)


def test_unknown_key_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc_info:
        config_from(tmp_path, "[countries.VN]\ntreshold = 5\n")
    assert "countries.VN.treshold" in str(exc_info.value)


@pytest.mark.parametrize(
    "text",
    [
        "[country.VN]\nname = 'x'\n",
        "[roles]\nadmins = ['U1']\n",
        "[[countries.VN.issues]]\ncode = 'CL-01'\nname = 'x'\ncluster = 'y'\nseverity = 1\n",
    ],
)
def test_unknown_keys_anywhere_are_config_errors(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        config_from(tmp_path, text)


@pytest.mark.parametrize(
    "text",
    [
        "[countries.VN]\nthreshold = 0\n",
        "[countries.VN]\nconsecutive = 'three'\n",
        "[countries.VN]\nlanguage = 'fr'\n",
        "[countries.VN]\npublic_reporting_since = 'July 2017'\n",
        "[countries.VN]\nstaff_channel = '#staff'\n",
        "[countries.VN]\nissues = []\n",
        "[[countries.VN.issues]]\ncode = 'cl 01'\nname = 'x'\ncluster = 'y'\n",
    ],
)
def test_bad_field_values_are_config_errors(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError) as exc_info:
        config_from(tmp_path, text)
    assert "countries.VN" in str(exc_info.value)


@pytest.mark.parametrize("code", ["vn1", "vn", "VNM", "V1"])
def test_bad_country_code_is_a_config_error(tmp_path: Path, code: str) -> None:
    with pytest.raises(ConfigError) as exc_info:
        config_from(tmp_path, f'[countries.{code}]\nname = "Somewhere"\n')
    assert repr(code) in str(exc_info.value)
    assert "two capital letters" in str(exc_info.value)


def test_new_country_without_a_name_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc_info:
        config_from(tmp_path, "[countries.MM]\npnc_enabled = true\n")
    assert "MM" in str(exc_info.value)
    assert "name" in str(exc_info.value)


def test_repeated_issue_code_is_a_config_error(tmp_path: Path) -> None:
    issue = '[[countries.VN.issues]]\ncode = "CL-01"\nname = "x"\ncluster = "Child Labour"\n'
    with pytest.raises(ConfigError) as exc_info:
        config_from(tmp_path, issue + issue)
    assert "VN" in str(exc_info.value)
    assert "repeats a code" in str(exc_info.value)


def test_invalid_inspectorate_email_in_the_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc_info:
        config_from(tmp_path, '[countries.KH]\ninspectorate_emails = ["inspection at mlvt"]\n')
    assert "KH" in str(exc_info.value)
    assert "Inspectorate" in str(exc_info.value)


def test_invalid_inspectorate_email_in_the_environment_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PNC_INSPECTORATE_EMAIL", "inspection@molisa\r\nBcc: x@y.example")
    with pytest.raises(ConfigError) as exc_info:
        load_config(load_settings())
    assert "VN" in str(exc_info.value)
    assert "Inspectorate" in str(exc_info.value)


# --- looking countries up ---------------------------------------------------------------------


@pytest.mark.parametrize("code", ["VN", "vn", " Vn "])
def test_country_lookup_is_case_insensitive(code: str) -> None:
    assert load_config(Settings()).countries.country(code).code == "VN"


def test_unknown_country_suggests_close_codes_and_lists_the_known_ones() -> None:
    countries = load_config(Settings()).countries
    with pytest.raises(UnknownCountry) as exc_info:
        countries.country("VM")
    assert "VN" in exc_info.value.suggestions
    assert "`VM`" in str(exc_info.value)
    assert "Known countries:" in exc_info.value.render()
    assert "KH" in exc_info.value.render()


def test_default_country_is_viet_nam() -> None:
    assert load_config(Settings()).countries.default.code == "VN"


def test_default_country_without_viet_nam_is_the_first_enabled_one() -> None:
    builtin = load_config(Settings()).countries
    laos = replace(builtin["VN"], code="LA", name="Lao PDR")
    assert Countries({"KH": builtin["KH"], "LA": laos}).default.code == "LA"


def test_countries_is_a_read_only_mapping_in_code_order() -> None:
    countries = load_config(Settings()).countries
    assert list(countries) == sorted(countries)
    assert len(countries) == len(list(countries))
    assert isinstance(countries["VN"].catalogue, Catalogue)
