"""Granting a role to someone the configuration already gives one (``PNC_ADMINS``, the config
file's ``[roles]``): the configured role wins over a lower granted one, so a grant that would
not change what the person may do is refused (nothing written) and the reply says where the
role comes from; a higher role is granted as usual."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from bot.countries import load_config
from bot.errors import Conflict
from bot.roles import RoleLevel
from bot.settings import Settings
from bot.usecases import access
from bot.usecases.core import Core
from store.db import Database
from tests.conftest import MANAGER, FrozenClock

ADMIN = "U0ADMIN"  # a manager through PNC_ADMINS (tests/conftest.py)
FILE_MANAGER, FILE_ASSESSOR, FILE_VIEWER = "U0FILEMGR", "U0FILEASSESS", "U0FILEVIEW"


@pytest.fixture
def configured(db: Database, settings: Settings, clock: FrozenClock, tmp_path: Path) -> Core:
    """The test settings, with a config file giving one person each role."""
    path = tmp_path / "pnc.toml"
    path.write_text(
        f"[roles]\nmanagers = ['{FILE_MANAGER}']\nassessors = ['{FILE_ASSESSOR}']\n"
        f"viewers = ['{FILE_VIEWER}']\n",
        encoding="utf-8",
    )
    with_file = settings.model_copy(update={"config_path": path})
    return Core(db, load_config(with_file), with_file, clock)


async def written(db: Database) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The granted roles, and the audit entries of grants."""
    async with db.engine.connect() as conn:
        roles = (await conn.execute(text("SELECT user_id, role FROM role"))).all()
        grants = (
            await conn.execute(text("SELECT action, subject FROM audit WHERE action='role.grant'"))
        ).all()
    return [tuple(r) for r in roles], [tuple(g) for g in grants]


async def role_of(core: Core, user: str) -> RoleLevel | None:
    return (await access.actor(core, user, "test")).role


@pytest.mark.parametrize(
    ("user", "configured_role", "where", "lower"),
    [
        (ADMIN, "manager", "PNC_ADMINS", "viewer"),
        (ADMIN, "manager", "PNC_ADMINS", "assessor"),
        (FILE_MANAGER, "manager", "[roles]", "viewer"),
        (FILE_MANAGER, "manager", "[roles]", "assessor"),
        (FILE_ASSESSOR, "assessor", "[roles]", "viewer"),
    ],
)
async def test_a_configured_role_cannot_be_lowered_by_a_grant(
    configured: Core, db: Database, user: str, configured_role: str, where: str, lower: str
) -> None:
    with pytest.raises(Conflict) as exc_info:
        await access.grant(configured, MANAGER, f"<@{user}>", lower)
    message = exc_info.value.render()
    assert f"a {configured_role}" in message or f"an {configured_role}" in message
    assert "through the configuration" in message and where in message, message
    assert f"{lower}s" in message and "restart" in message, message  # how to change it
    assert await written(db) == ([], [])
    assert await role_of(configured, user) == RoleLevel.parse(configured_role)


@pytest.mark.parametrize(
    ("user", "role"),
    [
        (ADMIN, "manager"),
        (FILE_MANAGER, "manager"),
        (FILE_ASSESSOR, "assessor"),
        (FILE_VIEWER, "viewer"),
    ],
)
async def test_granting_the_configured_role_again_changes_nothing(
    configured: Core, db: Database, user: str, role: str
) -> None:
    with pytest.raises(Conflict) as exc_info:
        await access.grant(configured, MANAGER, user, role)
    message = exc_info.value.render()
    assert f"already a{'n' if role == 'assessor' else ''} {role}" in message, message
    assert "through the configuration" in message
    assert await written(db) == ([], [])


@pytest.mark.parametrize(
    ("user", "higher"),
    [
        (FILE_VIEWER, "assessor"),
        (FILE_VIEWER, "manager"),
        (FILE_ASSESSOR, "manager"),
    ],
)
async def test_a_configured_person_can_be_granted_a_higher_role(
    configured: Core, db: Database, user: str, higher: str
) -> None:
    assert await access.grant(configured, MANAGER, user, higher) == (
        user,
        RoleLevel.parse(higher),
    )
    assert await written(db) == ([(user, higher)], [("role.grant", user)])
    assert await role_of(configured, user) == RoleLevel.parse(higher)


async def test_a_higher_grant_can_be_lowered_back_to_the_configured_role(
    configured: Core, db: Database
) -> None:
    """A configured viewer granted manager, then granted viewer: a viewer again (the reply is
    true); granting viewer once more changes nothing and is refused."""
    await access.grant(configured, MANAGER, FILE_VIEWER, "manager")
    assert await role_of(configured, FILE_VIEWER) == RoleLevel.MANAGER
    assert await access.grant(configured, MANAGER, FILE_VIEWER, "viewer") == (
        FILE_VIEWER,
        RoleLevel.VIEWER,
    )
    assert await role_of(configured, FILE_VIEWER) == RoleLevel.VIEWER
    with pytest.raises(Conflict):
        await access.grant(configured, MANAGER, FILE_VIEWER, "viewer")
    with pytest.raises(Conflict):  # and lower than configured is still refused
        await access.grant(configured, MANAGER, FILE_ASSESSOR, "viewer")
    roles, grants = await written(db)
    assert roles == [(FILE_VIEWER, "viewer")] and len(grants) == 2


async def test_people_the_configuration_does_not_name_are_granted_as_before(
    configured: Core, db: Database
) -> None:
    for role in ("manager", "viewer", "viewer"):
        assert await access.grant(configured, MANAGER, "U0NEW", role) == (
            "U0NEW",
            RoleLevel.parse(role),
        )
    assert await role_of(configured, "U0NEW") == RoleLevel.VIEWER
