"""Who may do what. Roles are ordered: viewer < assessor < manager; "staff" is any role."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from bot.errors import PermissionDenied


class RoleLevel(IntEnum):
    VIEWER = 1
    ASSESSOR = 2
    MANAGER = 3

    @classmethod
    def parse(cls, name: str) -> RoleLevel:
        return cls[name.strip().upper()]

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Permission:
    """The least role an action needs. Each is declared once, next to the use case that checks
    it (or, for a Slack subcommand without one, next to the subcommand), and both the Slack
    door and the use case ask the same value."""

    action: str
    role: RoleLevel


@dataclass(frozen=True)
class Actor:
    """Who is asking, with what role, through which door (slack, shell, cli, import)."""

    user_id: str
    role: RoleLevel | None
    source: str

    def may(self, permission: Permission) -> bool:
        return self.role is not None and self.role >= permission.role

    def require(self, permission: Permission, managers: Sequence[str] = ()) -> None:
        if not self.may(permission):
            raise PermissionDenied(permission.action, permission.role.label, managers)


def operator(source: str = "cli") -> Actor:
    """The person at the server's command line: trusted like a manager."""
    import getpass

    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "operator"
    return Actor(f"{source}:{user}"[:64], RoleLevel.MANAGER, source)
