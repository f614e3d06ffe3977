"""Who someone is to the bot, what they may do, and the record of what they asked.

A person's role is the higher of the one the configuration gives (``PNC_ADMINS``, the config
file's ``[roles]``) and the one a manager granted (the ``role`` table). Every command, accepted
or refused, leaves one audit entry.
"""

from __future__ import annotations

from typing import Any

from bot import validation
from bot.errors import Conflict, InvalidInput
from bot.roles import Actor, Permission, RoleLevel
from bot.usecases.core import Core
from bot.vocabulary import AuditOutcome
from store import access, snapshot
from store.db import Session
from store.models import Role

GRANT = Permission("role grant", RoleLevel.MANAGER)
REVOKE = Permission("role revoke", RoleLevel.MANAGER)


async def actor(core: Core, user_id: str, source: str) -> Actor:
    """Who ``user_id`` is to the bot: the higher of their configured and granted roles (read
    on the hot path, ``store.snapshot``: every request asks it)."""
    role = await snapshot.granted_role(core.db.hot, user_id)
    granted = RoleLevel.parse(role) if role else None
    configured = core.config.roles.role_of(user_id)
    levels = [r for r in (granted, RoleLevel.parse(configured) if configured else None) if r]
    return Actor(user_id, max(levels) if levels else None, source)


async def managers(core: Core, s: Session | None = None) -> list[str]:
    """Everyone who can grant roles: configured managers first, then granted ones. Inside
    a transaction, pass its session: a second pooled connection is never taken meanwhile."""
    if s is None:
        async with core.db.transaction() as own:
            granted = await access.managers(own)
    else:
        granted = await access.managers(s)
    return list(dict.fromkeys([*core.config.roles.managers, *granted]))


async def require(core: Core, actor: Actor, permission: Permission) -> None:
    """Refuse unless the actor's role allows it; the refusal names everyone who can grant the
    role (looked up only then)."""
    if not actor.may(permission):
        actor.require(permission, await managers(core))


async def grant(core: Core, actor: Actor, user_id: str, role: str) -> tuple[str, RoleLevel]:
    """Give ``user_id`` (a mention or an id) a role; returns their id and the role. Someone
    the configuration gives a role may be granted a higher one (the higher wins), not a lower
    one, nor the same one again."""
    await require(core, actor, GRANT)
    who = validation.slack_user(user_id)
    try:
        level = RoleLevel.parse(role)
    except KeyError:
        raise InvalidInput(
            f"`{validation.shown(role)}` is not a role.", "Use viewer, assessor or manager."
        ) from None
    configured = core.config.roles.role_of(who)
    async with core.db.transaction(write=True) as s:
        row = await access.get_role(s, who)
        before = row.role if row else None
        if configured is not None:
            _refuse_unless_it_changes_the_role(core, who, RoleLevel.parse(configured), level, row)
        if row is None:
            row = Role(
                user_id=who, role=level.label, granted_by=actor.user_id, granted_at=core.clock()
            )
        else:
            row.role, row.granted_by, row.granted_at = level.label, actor.user_id, core.clock()
        s.add(row)
        core.audit(s, actor, "role.grant", who, {"role": level.label, "before": before})
    return who, level


def _refuse_unless_it_changes_the_role(
    core: Core, who: str, configured: RoleLevel, level: RoleLevel, row: Role | None
) -> None:
    """A grant to someone with a configured role must leave them with the role granted: a
    lower one would be outranked by the configuration, the same one changes nothing (unless
    it lowers a higher grant back to it)."""
    where = "PNC_ADMINS" if who in core.settings.admins else "the config file's [roles]"
    granted = RoleLevel.parse(row.role) if row else None
    if level < configured:
        raise Conflict(
            f"That person is {_a(configured)} through the configuration ({where}), which a "
            f"granted role cannot lower: they would stay {_a(configured)}.",
            f"To make them {_a(level)}, list them under {level.label}s in the config file's "
            "[roles] (and nowhere above it, PNC_ADMINS included) and restart the bot.",
        )
    if level == configured and (granted is None or granted <= configured):
        raise Conflict(
            f"That person is already {_a(configured)} through the configuration ({where}); "
            "nothing was changed."
        )


def _a(level: RoleLevel) -> str:
    return f"{'an' if level.label[0] in 'aeiou' else 'a'} {level.label}"


async def revoke(core: Core, actor: Actor, user_id: str) -> str:
    """Take away a granted role; returns the person's id."""
    await require(core, actor, REVOKE)
    who = validation.slack_user(user_id)
    configured = core.config.roles.role_of(who)
    if configured is not None:
        raise Conflict(
            f"That person is a {configured} through the configuration (PNC_ADMINS or the "
            "config file's [roles]).",
            "Remove them there and restart the bot.",
        )
    async with core.db.transaction(write=True) as s:
        row = await access.get_role(s, who)
        if row is None:
            raise Conflict("That person has no pnc-bot role granted.")
        await s.delete(row)
        core.audit(s, actor, "role.revoke", who, {"before": row.role})
    return who


async def log_command(
    core: Core,
    user_id: str,
    source: str,
    text: str,
    outcome: AuditOutcome,
    detail: dict[str, Any],
    *,
    read: bool = False,
) -> None:
    """The audit entry of one command, accepted or refused: in its own transaction, or — a
    ``read`` (it changed nothing) — with other reads' in a moment (``read_audits``). The text
    is kept as typed, except characters a database cannot store (NUL)."""
    text = validation.storable(text)
    entry: dict[str, Any] = {
        "at": core.clock(),
        "actor": user_id[:64],
        "source": source[:200],
        "action": "command",
        "subject": text[:200],
        "outcome": outcome,
        "detail": {"text": text[:2000], **detail},
    }
    if read:
        core.read_audits.add(entry)
        return
    async with core.db.transaction(write=True) as s:
        access.add_audit_entry(s, **entry)
