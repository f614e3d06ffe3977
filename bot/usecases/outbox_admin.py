"""The outbox as managers see it (``/pnc outbox``, ``pnc-bot outbox``): what waits, what is
retried, what is dead and which channels are paused; and a notice — or every dead one — sent
again."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot import validation
from bot.errors import Conflict, InvalidInput, UnknownNotice
from bot.roles import Actor, Permission, RoleLevel
from bot.suggest import close_matches
from bot.usecases import access, registry
from bot.usecases.core import Core
from bot.usecases.read_models import OutboxLine, OutboxView, PausedChannel
from bot.vocabulary import NoticeKind, OutboxStatus
from store import access as access_rows
from store import outbox

LIST = Permission("outbox", RoleLevel.MANAGER)
RETRY = Permission("outbox retry", RoleLevel.MANAGER)


async def overview(core: Core, limit: int = 20) -> OutboxView:
    """Notices waiting, retrying and dead, and the paused channels."""
    async with core.db.transaction() as s:
        found = await outbox.overview(s, core.clock(), limit)
    return OutboxView(
        counts={k.value: found["counts"].get(k, 0) for k in OutboxStatus},
        pending=_lines(found["pending"]),
        retrying=_lines(found["retrying"]),
        dead=_lines(found["dead"]),
        paused=tuple(PausedChannel(n, u, r) for n, u, r in found["paused"]),
    )


async def retry(core: Core, actor: Actor, notice_id: int | str) -> OutboxLine:
    """Send a dead (or waiting) notice again now, with its attempts counted afresh."""
    await access.require(core, actor, RETRY)
    try:
        nid = int(str(notice_id).strip().lstrip("#"))
    except ValueError:
        raise InvalidInput(
            f"`{validation.shown(str(notice_id))}` is not a notice number.",
            "Use the number shown by `outbox`, e.g. `outbox retry 42`.",
        ) from None
    if not 1 <= nid < 2**31:  # beyond any id the database can hold
        raise UnknownNotice(f"#{nid}", extra="`outbox` lists the notices.")
    async with core.db.transaction(write=True) as s:
        row = await outbox.get_notice(s, nid)
        if row is None:
            raise UnknownNotice(f"#{nid}", extra="`outbox` lists the notices.")
        if row.status == OutboxStatus.HELD:  # nobody to send it to yet
            raise Conflict(
                f"Notice #{nid} is held: it waits for an address (a referral while no Labour "
                "Inspectorate address is configured).",
                f"Configure the address; then `referral send {row.factory_id}` sends it.",
            )
        if row.status in (OutboxStatus.SENT, OutboxStatus.CANCELLED, OutboxStatus.SENDING):
            raise Conflict(
                f"Notice #{nid} is {row.status}; only waiting or dead notices are retried."
            )
        row.status, row.attempts, row.next_attempt_at = OutboxStatus.PENDING, 0, core.clock()
        row.lease_until = row.claimed_by = None
        s.add(row)
        core.audit(s, actor, access_rows.RETRIED, row.factory_id, {"notice": nid})
        core.notices_written(s)
    return _lines([row])[0]


@dataclass(frozen=True)
class Revived:
    """Dead notices made due again: how many, and the kind and factory that narrowed them."""

    count: int
    kind: str | None = None
    factory: str | None = None


async def retry_dead(
    core: Core, actor: Actor, kind: str | None = None, factory: str | None = None
) -> Revived:
    """Send every dead notice (of ``kind``, about ``factory``, when given) again now, with its
    attempts counted afresh: one transaction, audited once with the count."""
    await access.require(core, actor, RETRY)
    wanted = notice_kind(kind) if kind is not None else None
    fid = validation.identifier(factory, "factory id") if factory is not None else None
    async with core.db.transaction(write=True) as s:
        if fid is not None:
            await registry.existing_factory(s, fid)
        count = await outbox.revive_dead(s, core.clock(), kind=wanted, factory_id=fid)
        detail = {"dead": True, "count": count, "kind": wanted, "factory": fid}
        core.audit(s, actor, access_rows.RETRIED, fid, detail)
        if count:
            core.notices_written(s)
    return Revived(count, wanted, fid)


def notice_kind(value: str) -> NoticeKind:
    """The notice kind named (any case), or ``InvalidInput`` naming the kinds it may mean."""
    try:
        return NoticeKind(value.strip().lower())
    except ValueError:
        close = close_matches(value, [k.value for k in NoticeKind])
        hint = f"Did you mean {', '.join(f'`{c}`' for c in close)}? " if close else ""
        raise InvalidInput(
            f"`{validation.shown(value)}` is not a notice kind.",
            f"{hint}`outbox` shows the kind of each notice.",
        ) from None


def _lines(rows: Iterable[Any]) -> tuple[OutboxLine, ...]:
    return tuple(
        OutboxLine(
            r.id,
            r.kind,
            r.channel,
            r.recipient_name,
            r.factory_id,
            r.status,
            r.attempts,
            r.next_attempt_at,
            r.last_error,
        )
        for r in rows
    )
