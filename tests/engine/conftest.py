"""Fixtures of the liquidation-engine suite.

Standard book (every scenario starts from it): maker and keeper hold 100,000 quote units in
majors; the trader holds a small account (4,000) and is 10 ETH short (`short_eth`) or long
(`long_eth`) at 3,000 against the maker. Pools and the backstop are empty unless a test
seeds them (`seed`).

Numbers of the short book (6-decimal quote, taker fee 5 bps paid by the trader):
  collateral 3,985, entry -30,000, equity(P) = 33,985 - 10 P, MM(P) = 0.5 P
  liquidatable above 3,236.67, full-close tier above 3,315.61, bankrupt above 3,398.50.
Long book (the trader is the order maker, 0 fee): collateral 4,000,
  equity(P) = 10 P - 26,000, MM = 0.5 P: liquidatable below 2,736.84, bankrupt below 2,600.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from ape import chain

from backstop.client.actors import fund, set_price, trade
from backstop.core.units import WAD, quote, wad



@pytest.fixture(scope="session")
def scale(system):
    return int(system.vault.notional_scale())


class Kit:
    """Small helpers bound to the session system."""

    def __init__(self, system, deployer):
        self.system = system
        self.deployer = deployer
        self.vault = system.vault
        self.lens = system.lens
        self.engine = system.engine
        self.token = system.token
        self.scale = int(system.vault.notional_scale())

    def usd(self, x) -> int:
        return quote(x, self.system.decimals)

    def price(self, label: str, p) -> int:
        """Publish price p (a human number) now; returns the WAD price the oracle reports."""
        set_price(self.system, label, wad(p), self.deployer)
        return int(self.system.oracle.price(self.system.markets[label].id))

    def eth(self, p) -> int:
        return self.price("ETH-PERP", p)

    def fund(self, account, segment: int, amount_usd) -> None:
        fund(self.system, account, segment, self.usd(amount_usd))

    def seed(self, target, amount: int, lp) -> None:
        """LP deposit of `amount` quote units into a pool or the backstop."""
        self.token.mint(lp, amount, sender=lp)
        self.token.approve(target, amount, sender=lp)
        target.deposit(amount, lp, sender=lp)

    def health(self, owner, segment: int):
        return self.vault.account_health(owner, segment)

    def at(self, timestamp: int) -> None:
        """The next transaction is mined at `timestamp`."""
        chain.pending_timestamp = timestamp

    def mine_at(self, timestamp: int) -> None:
        chain.mine(1, timestamp=timestamp)

    @staticmethod
    def now() -> int:
        return int(chain.blocks.head.timestamp)

    @staticmethod
    def events(receipt, event_type) -> list:
        return list(receipt.decode_logs(event_type))

    def health_at(self, owner, market, segment: int, price_wad: int) -> tuple[int, int]:
        """(equity, MM) of a one-position account at `price_wad`: a Python mirror of the
        vault's rounding (floor of the signed value, notional and MM rounded up)."""
        c = int(self.vault.collateral(owner, segment))
        size, entry = (int(x) for x in self.vault.position(owner, market.id))
        mm_ratio = int(self.lens.market(market.id).mm_ratio)
        equity = c + (size * price_wad) // self.scale - entry
        notional = -(-abs(size) * price_wad // self.scale)
        return equity, -(-notional * mm_ratio // WAD)

    def first_price(self, owner, market, segment: int, lo: int, hi: int, pred) -> int:
        """Binary search over 8-decimal feed prices in [lo, hi] (feed units) for the boundary
        of `pred(equity, mm)`: pred(lo) is False, pred(hi) True; returns the first True."""
        assert not pred(*self.health_at(owner, market, segment, lo * 10**10))
        assert pred(*self.health_at(owner, market, segment, hi * 10**10))
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if pred(*self.health_at(owner, market, segment, mid * 10**10)):
                hi = mid
            else:
                lo = mid
        return hi

    def feed_price(self, label: str, feed_units: int) -> int:
        return self.price(label, _fmt8(feed_units))

    def pending_pool_income(self, segment: int) -> int:
        """Liquidation penalties owed to the segment's pool and not yet swept (the vault
        accrues them per market: accrued_penalties)."""
        return sum(int(self.lens.accrued_penalties(m)) for m in self.lens.segment_markets(segment))

    # ---------------------------------------------------------- liquidator of last resort

    def takeover_terms(self, owner, market, amount: int) -> tuple[int, int, int]:
        """(market notional after, notional taken, margin) of taking `amount` of owner's position
        now: LiquidationEngine._takeover_terms on values read on chain."""
        vault, taker = self.vault, self.system.liquidator
        position = int(vault.position(owner, market.id)[0])
        held = int(vault.position(taker, market.id)[0])
        mark = int(self.system.oracle.price(market.id))
        moved = -amount if position < 0 else amount
        notional = amount * mark // self.scale
        market_notional = abs(held + moved) * mark // self.scale
        theirs = vault.account_health(taker, market.segment)
        im_ratio = int(self.lens.market(market.id).im_ratio)
        needed = 2 * (int(theirs.im) + notional * im_ratio // WAD + 1)
        margin = needed - max(int(theirs.equity), 0) if needed > int(theirs.equity) else 0
        return market_notional, notional, margin

    def unwind(self, keeper, owner, market, rounds: int = 64) -> list:
        """`keeper` liquidates owner's position in `market` call after call until it is flat;
        returns the Liquidated events."""
        out = []
        for _ in range(rounds):
            held = abs(int(self.vault.position(owner, market.id)[0]))
            if held == 0:
                return out
            receipt = self.engine.liquidate(owner, market.id, held, sender=keeper)
            out += self.events(receipt, self.engine.Liquidated)
        raise AssertionError(f"{owner} still holds {held} after {rounds} liquidations")

    # ---------------------------------------------------------- invariants

    def positions_sum_to_zero(self, owners, market_id: int) -> None:
        sizes = [int(self.vault.position(o, market_id)[0]) for o in owners]
        assert sum(sizes) == 0, sizes
        assert int(self.lens.open_interest(market_id)) == sum(s for s in sizes if s > 0)

    def conservation(self, owners, extra_holders=(), donated=None) -> None:
        """docs/design.md, invariant 1, to the wei: every contract holds exactly what it tracks
        (plus what was `donated` to it directly: {address: amount}), and the token supply is
        exactly the sum of all holders' balances."""
        donated = {k if isinstance(k, str) else k.address: v for k, v in (donated or {}).items()}
        system, vault, token = self.system, self.vault, self.token
        lens = self.lens
        owners = list(owners)
        if system.liquidator is not None:  # its margin accounts are accounts of the vault too
            owners.append(system.liquidator.address)
        claims = 0
        for segment in system.segments.values():
            for o in owners:
                claims += int(vault.collateral(o, segment))
        for m in system.markets.values():
            claims += int(lens.accrued_fees(m.id)) + int(lens.accrued_penalties(m.id))
            for o in owners:
                claims -= int(vault.position(o, m.id)[1])
        assert int(token.balanceOf(vault)) == claims
        for pool in system.pools.values():
            assert int(token.balanceOf(pool)) == int(pool.managed_assets()) + donated.get(pool.address, 0)
        # the backstop holds its managed assets less what it lent the liquidator of last resort
        backstop = system.backstop
        assert int(token.balanceOf(backstop)) == (int(backstop.managed_assets()) - int(backstop.deployed())
                                                  + donated.get(backstop.address, 0))
        holders = {vault.address, system.backstop.address, system.treasury, self.engine.address}
        holders |= {p.address for p in system.pools.values()}
        holders |= {o if isinstance(o, str) else o.address for o in [*owners, *extra_holders]}
        assert int(token.totalSupply()) == sum(int(token.balanceOf(h)) for h in holders)


@pytest.fixture
def kit(system, deployer):
    return Kit(system, deployer)


@pytest.fixture
def book(kit, maker, keeper, majors):
    """Maker and keeper each hold 100,000 in majors (no positions yet)."""
    kit.fund(maker, majors, 100_000)
    kit.fund(keeper, majors, 100_000)
    return kit


@pytest.fixture
def short_eth(book, system, maker, trader, eth, majors):
    """Trader (4,000 collateral) 10 ETH short at 3,000 against the maker."""
    book.fund(trader, majors, 4_000)
    trade(system, maker, trader, eth.id, wad(10), wad(3000))
    return book


@pytest.fixture
def long_eth(book, system, maker, trader, eth, majors):
    """Trader (4,000 collateral) 10 ETH long at 3,000 against the maker (the trader signs)."""
    book.fund(trader, majors, 4_000)
    trade(system, trader, maker, eth.id, wad(10), wad(3000))
    return book


def _fmt8(feed_units: int) -> str:
    return f"{feed_units // 10**8}.{feed_units % 10**8:08d}"


def dec(x) -> Decimal:
    return Decimal(str(x))
