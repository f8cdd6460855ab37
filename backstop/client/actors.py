"""Trader-side helpers shared by scripts, bots and tests: funding, orders and fills."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count

from ape import chain
from ape.api import AccountAPI, ReceiptAPI

from backstop.client.deploy import System
from backstop.core.orders import MAX_EXPIRY, SignedOrder, build_order, sign_order
from backstop.core.units import WAD

_nonces = count(1)


def fund(system: System, account: AccountAPI, segment: int, amount: int) -> None:
    """Mint (local test token), approve and deposit `amount` quote units."""
    system.token.mint(account, amount, sender=account)
    system.token.approve(system.vault, amount, sender=account)
    system.vault.deposit(segment, amount, sender=account)


def signed_order(
    system: System,
    maker: AccountAPI,
    market: int,
    size: int,
    price: int,
    *,
    nonce: int | None = None,
    expiry: int = MAX_EXPIRY,
    reduce_only: bool = False,
) -> SignedOrder:
    order = build_order(
        maker=maker.address,
        market=market,
        size=size,
        price=price,
        nonce=next(_nonces) if nonce is None else nonce,
        expiry=expiry,
        reduce_only=reduce_only,
        chain_id=chain.chain_id,
        vault=system.vault.address,
    )
    return sign_order(maker, order)


def fill(system: System, order: SignedOrder, taker: AccountAPI, amount: int | None = None, **tx) -> ReceiptAPI:
    """Taker fills `amount` (default: all) of a signed order."""
    return system.vault.fill(order.as_tuple(), order.signature, abs(order.size) if amount is None else amount, sender=taker, **tx)


def trade(system: System, maker: AccountAPI, taker: AccountAPI, market: int, size: int, price: int,
          **tx) -> ReceiptAPI:
    """Maker buys `size` (sells if negative) from the taker at `price`, in one signed fill."""
    return fill(system, signed_order(system, maker, market, size, price), taker, **tx)


def set_price(system: System, label: str, price_wad: int, sender: AccountAPI) -> None:
    """Move a local mock feed to `price_wad` (18 decimals)."""
    market = system.markets[label]
    decimals = market.spec.feed_decimals
    market.feed.set_answer(price_wad * 10**decimals // WAD, sender=sender)


@dataclass(frozen=True)
class Snapshot:
    collateral: int
    equity: int
    im: int
    mm: int
    notional: int


def snapshot(system: System, owner, segment: int) -> Snapshot:
    (health,) = system.lens.health_of([owner], segment)
    return Snapshot(*health)
