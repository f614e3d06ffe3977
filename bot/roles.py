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


#: the least role each action needs; handlers and services both ask this table
PERMISSIONS: dict[str, RoleLevel] = {
    "help": RoleLevel.VIEWER,
    "status": RoleLevel.VIEWER,
    "history": RoleLevel.VIEWER,
    "at-risk": RoleLevel.VIEWER,
    "issues": RoleLevel.VIEWER,
    "assess": RoleLevel.ASSESSOR,
    "factory add": RoleLevel.ASSESSOR,
    "buyer add": RoleLevel.ASSESSOR,
    "subscribe": RoleLevel.ASSESSOR,
    "unsubscribe": RoleLevel.ASSESSOR,
    "assessment amend": RoleLevel.MANAGER,
    "assessment withdraw": RoleLevel.MANAGER,
    "import": RoleLevel.MANAGER,
    "readmission apply": RoleLevel.ASSESSOR,
    "readmission unannounced": RoleLevel.MANAGER,
    "readmission approve": RoleLevel.MANAGER,
    "readmission reject": RoleLevel.MANAGER,
    "calls add": RoleLevel.MANAGER,
    "calls list": RoleLevel.MANAGER,
    "calls remove": RoleLevel.MANAGER,
    "meeting held": RoleLevel.ASSESSOR,
    "outbox": RoleLevel.MANAGER,
    "outbox retry": RoleLevel.MANAGER,
    "role grant": RoleLevel.MANAGER,
    "role revoke": RoleLevel.MANAGER,
}


@dataclass(frozen=True)
class Actor:
    """Who is asking, with what role, through which door (slack, shell, cli, import)."""

    user_id: str
    role: RoleLevel | None
    source: str

    def may(self, action: str) -> bool:
        return self.role is not None and self.role >= PERMISSIONS[action]

    def require(self, action: str, managers: Sequence[str] = ()) -> None:
        if not self.may(action):
            raise PermissionDenied(action, PERMISSIONS[action].label, managers)


def operator(source: str = "cli") -> Actor:
    """The person at the server's command line: trusted like a manager."""
    import getpass

    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "operator"
    return Actor(f"{source}:{user}"[:64], RoleLevel.MANAGER, source)
