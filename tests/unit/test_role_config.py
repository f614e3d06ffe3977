"""The people given a role by the configuration (``PNC_ADMINS``, the config file's ``[roles]``)
are Slack member ids: a mention is accepted as the id it names, anything else is refused at
start-up, naming where it was written and the entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.countries import load_config
from bot.errors import ConfigError
from bot.settings import Settings, load_settings

#: not Slack member ids: broken mentions, prose, lower case, channels, empty mentions
BAD = [
    "<@U0BOSS",
    "U0BOSS>",
    "<U0BOSS>",
    "@boss",
    "not an id",
    "u0boss",
    "C0STAFF",
    "<@>",
    "U0 BOSS",
    "U0BOSS;U0OTHER",
]
#: how an id can be written, and the id it is
GOOD = [
    ("U0BOSS", "U0BOSS"),
    ("W0ENTERPRISE", "W0ENTERPRISE"),
    ("<@U0BOSS>", "U0BOSS"),
    ("<@U0BOSS|boss>", "U0BOSS"),
    ("  <@W0ENTERPRISE|Ms. Boss>  ", "W0ENTERPRISE"),
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PNC_ADMINS", "PNC_CONFIG", "PNC_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def roles_file(tmp_path: Path, role: str, entries: list[str]) -> Path:
    path = tmp_path / "pnc.toml"
    listed = ", ".join(f"'{e}'" for e in entries)
    path.write_text(f"[roles]\n{role} = [{listed}]\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("entry", BAD)
def test_pnc_admins_entry_that_is_no_member_id_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, entry: str
) -> None:
    monkeypatch.setenv("PNC_ADMINS", f"U0FIRST, {entry}")
    with pytest.raises(ConfigError) as exc_info:
        load_settings()
    message = exc_info.value.render()
    assert "PNC_ADMINS" in message
    assert repr(entry.strip()) in message, message
    assert "Slack member id" in message


@pytest.mark.parametrize(("written", "member"), GOOD)
def test_pnc_admins_accepts_ids_and_mentions(
    monkeypatch: pytest.MonkeyPatch, written: str, member: str
) -> None:
    monkeypatch.setenv("PNC_ADMINS", f"U0FIRST,{written}")
    settings = load_settings()
    assert settings.admins == ("U0FIRST", member)
    assert load_config(settings).roles.role_of(member) == "manager"


@pytest.mark.parametrize("role", ["managers", "assessors", "viewers"])
@pytest.mark.parametrize("entry", BAD)
def test_roles_entry_that_is_no_member_id_is_refused_naming_file_and_entry(
    tmp_path: Path, role: str, entry: str
) -> None:
    path = roles_file(tmp_path, role, ["U0FIRST", entry])
    with pytest.raises(ConfigError) as exc_info:
        load_config(Settings(config_path=path))
    message = exc_info.value.render()
    assert str(path) in message
    assert f"roles.{role}" in message
    assert repr(entry.strip()) in message, message
    assert "Slack member id" in message


@pytest.mark.parametrize("role", ["managers", "assessors", "viewers"])
@pytest.mark.parametrize(("written", "member"), GOOD)
def test_roles_accepts_ids_and_mentions(
    tmp_path: Path, role: str, written: str, member: str
) -> None:
    roles = load_config(Settings(config_path=roles_file(tmp_path, role, [written]))).roles
    assert roles.role_of(member) == role.removesuffix("s")
    assert getattr(roles, role) == (member,)


def test_a_manager_named_both_ways_is_listed_once(tmp_path: Path) -> None:
    path = roles_file(tmp_path, "managers", ["<@U0BOSS|boss>", "U0OTHER"])
    roles = load_config(Settings(config_path=path, admins="U0BOSS")).roles
    assert roles.managers == ("U0BOSS", "U0OTHER")
