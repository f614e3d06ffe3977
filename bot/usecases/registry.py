"""The registry: factories, buyers, and which buyers subscribe to which factories."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from bot import policy, validation
from bot.errors import AlreadyExists, UnknownBuyer, UnknownFactory, UnknownSubscription
from bot.roles import Actor, Permission, RoleLevel
from bot.usecases import access
from bot.usecases.core import Core
from store import registry
from store.db import Session, flush_unique
from store.models import Buyer, Factory, Subscription

ADD_FACTORY = Permission("factory add", RoleLevel.ASSESSOR)
ADD_BUYER = Permission("buyer add", RoleLevel.ASSESSOR)
SUBSCRIBE = Permission("subscribe", RoleLevel.ASSESSOR)
UNSUBSCRIBE = Permission("unsubscribe", RoleLevel.ASSESSOR)


def initial_state(core: Core, country: str) -> str:
    """The state of a factory with no history yet."""
    return policy.evaluate(core.countries.country(country).rules, "", ()).state.value


async def existing_factory(s: Session, factory_id: str, *, lock: bool = False) -> Factory:
    """A registered factory (locked against concurrent history changes when ``lock``), or
    ``UnknownFactory`` naming the ids that look like it."""
    factory = await registry.get_factory(s, factory_id, lock=lock)
    if factory is None:
        raise UnknownFactory(factory_id, await registry.close_factory_ids(s, factory_id))
    return factory


async def existing_buyer(s: Session, buyer_id: str) -> Buyer:
    buyer = await registry.get_buyer(s, buyer_id)
    if buyer is None:
        raise UnknownBuyer(buyer_id, await registry.close_buyer_ids(s, buyer_id))
    return buyer


async def add_factory(
    core: Core,
    actor: Actor,
    factory_id: str,
    name: str,
    country: str,
    emails: str | Iterable[str],
    language: str | None = None,
    cycle_end: str | date | None = None,
) -> Factory:
    await access.require(core, actor, ADD_FACTORY)
    fid = validation.identifier(factory_id, "factory id")
    the_country = core.countries.country(country)
    now = core.clock()
    factory = Factory(
        id=fid,
        name=validation.text(name, "factory name"),
        country=the_country.code,
        emails=list(validation.emails(emails)),
        language=validation.language(language),
        cycle_end=validation.optional_date(cycle_end, "cycle end"),
        created_at=now,
        updated_at=now,
        state=initial_state(core, the_country.code),
    )
    async with core.db.transaction(write=True) as s:
        if await registry.get_factory(s, fid) is not None:
            raise AlreadyExists(
                f"Factory `{fid}` is already registered.", f"See it with `status {fid}`."
            )
        s.add(factory)
        core.audit(s, actor, "factory.add", fid, {"name": factory.name, "country": country})
        await flush_unique(s, AlreadyExists(f"Factory `{fid}` is already registered."))
    return factory


async def add_buyer(
    core: Core, actor: Actor, buyer_id: str, name: str, emails: str | Iterable[str]
) -> Buyer:
    await access.require(core, actor, ADD_BUYER)
    bid = validation.identifier(buyer_id, "buyer id")
    now = core.clock()
    buyer = Buyer(
        id=bid,
        name=validation.text(name, "buyer name"),
        emails=list(validation.emails(emails)),
        created_at=now,
        updated_at=now,
    )
    async with core.db.transaction(write=True) as s:
        if await registry.get_buyer(s, bid) is not None:
            raise AlreadyExists(f"Buyer `{bid}` is already registered.")
        s.add(buyer)
        core.audit(s, actor, "buyer.add", bid, {"name": buyer.name})
        await flush_unique(s, AlreadyExists(f"Buyer `{bid}` is already registered."))
    return buyer


async def subscribe(core: Core, actor: Actor, buyer_id: str, factory_id: str) -> bool:
    """Subscribe a buyer to a factory; False when it already was."""
    await access.require(core, actor, SUBSCRIBE)
    bid = validation.identifier(buyer_id, "buyer id")
    fid = validation.identifier(factory_id, "factory id")
    try:
        async with core.db.transaction(write=True) as s:
            await existing_buyer(s, bid)
            await existing_factory(s, fid)
            if await registry.get_subscription(s, bid, fid) is not None:
                return False
            s.add(Subscription(buyer_id=bid, factory_id=fid, created_at=core.clock()))
            core.audit(s, actor, "subscription.add", fid, {"buyer": bid})
            await flush_unique(s, AlreadyExists(f"`{bid}` subscribes to `{fid}`."))
    except AlreadyExists:
        return False  # subscribed meanwhile by someone else: the same outcome
    return True


async def unsubscribe(core: Core, actor: Actor, buyer_id: str, factory_id: str) -> None:
    await access.require(core, actor, UNSUBSCRIBE)
    bid = validation.identifier(buyer_id, "buyer id")
    fid = validation.identifier(factory_id, "factory id")
    async with core.db.transaction(write=True) as s:
        await existing_buyer(s, bid)
        await existing_factory(s, fid)
        if await registry.get_subscription(s, bid, fid) is None:
            raise UnknownSubscription(
                f"{bid} → {fid}", extra=f"`{bid}` does not subscribe to `{fid}`."
            )
        await registry.delete_subscription(s, bid, fid)
        core.audit(s, actor, "subscription.remove", fid, {"buyer": bid})
