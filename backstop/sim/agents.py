"""Attacker agents for the incident replays (tests/adversarial).

Each agent is a small class with a `goal`, a `run()` that plays the attack against a
deployed `System`, and an accounting of its P&L in quote units:

    value = sum over the agent's accounts of
              wallet balance of the quote token
            + max(equity, 0) of every (account, segment) margin account   (marked at the oracle)
            + pool shares of every InsurancePool / the BackstopPool, at convertToAssets

    pnl = value(after) - value(before) - capital minted during the run

Equity is floored at 0: an attacker walks away from a bankrupt account, so its debt is
never counted against them (this can only overstate their P&L, never hide a profit).
Faucet mints (`self.mint`) are capital, not profit. Gas is ignored.

Every attempt is recorded in `self.attempts` (label, ok, revert reason), so a test can
assert both the P&L bound and *why* each step failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ape import chain
from ape.exceptions import ContractLogicError

from backstop.client.actors import fill, fund, set_price, signed_order
from backstop.client.deploy import System
from backstop.core.units import WAD


@dataclass
class Attempt:
    label: str
    ok: bool
    reason: str | None = None
    receipt: Any = None


@dataclass
class Env:
    """What the world around an attacker is: who controls the (manipulable) feed and who
    the honest keepers / counterparties are."""

    system: System
    feed_admin: Any  # controls the mock feeds (models a manipulated thin feed)
    keepers: Sequence[Any] = ()
    counterparties: Sequence[Any] = ()
    extra: dict = field(default_factory=dict)

    def price(self, label: str, price_wad: int) -> None:
        set_price(self.system, label, price_wad, self.feed_admin)

    def refresh(self) -> None:
        """Re-publish every feed's current answer (keeps the oracle fresh after time jumps)."""
        for label, market in self.system.markets.items():
            answer = market.feed.latestRoundData()[1]
            market.feed.set_answer(answer, sender=self.feed_admin)


class Agent:
    """Base attacker: accounts, capital accounting, attempts log."""

    goal: str = "extract value from the protocol"

    def __init__(self, env: Env, accounts: Sequence[Any]):
        self.env = env
        self.system = env.system
        self.accounts = list(accounts)
        self.minted = 0
        self.before: int | None = None
        self.after: int | None = None
        self.attempts: list[Attempt] = []

    # ------------------------------------------------------------ accounting

    def mint(self, account, amount: int) -> None:
        """Faucet capital: counted as money brought in, not profit."""
        self.system.token.mint(account, amount, sender=account)
        self.minted += amount

    def deposit(self, account, segment: int, amount: int) -> None:
        """Bring `amount` of fresh capital and deposit it as collateral."""
        fund(self.system, account, segment, amount)  # fund() mints exactly `amount`
        self.minted += amount

    def value_of(self, account) -> int:
        system = self.system
        total = int(system.token.balanceOf(account))
        for segment in system.segments.values():
            health = system.vault.account_health(account, segment)
            total += max(int(health.equity), 0)
        for pool in [*system.pools.values(), system.backstop]:
            shares = int(pool.balanceOf(account))
            if shares:
                total += int(pool.convertToAssets(shares))
        return total

    def value(self) -> int:
        return sum(self.value_of(a) for a in self.accounts)

    def begin(self) -> None:
        self.minted = 0
        self.before = self.value()

    def end(self) -> int:
        self.after = self.value()
        return self.pnl

    @property
    def pnl(self) -> int:
        assert self.before is not None and self.after is not None, "run the agent first"
        return self.after - self.before - self.minted

    # ------------------------------------------------------------ actions

    def attempt(self, label: str, fn: Callable, *args, **kwargs) -> Attempt:
        """Send a transaction; a revert is recorded, never raised."""
        try:
            receipt = fn(*args, **kwargs)
            result = Attempt(label, True, None, receipt)
        except ContractLogicError as err:
            result = Attempt(label, False, err.message)
        self.attempts.append(result)
        return result

    def reasons(self) -> dict[str, str | None]:
        return {a.label: a.reason for a in self.attempts}

    def outcome(self, label: str) -> Attempt:
        for a in reversed(self.attempts):
            if a.label == label:
                return a
        raise KeyError(label)

    def order(self, maker, market: int, size: int, price: int, **kw):
        return signed_order(self.system, maker, market, size, price, **kw)

    def fill(self, order, taker, amount: int | None = None):
        return fill(self.system, order, taker, amount)

    def trade(self, label: str, maker, taker, market: int, size: int, price: int) -> Attempt:
        """Maker signs `size` at `price`, taker fills it all."""
        order = self.order(maker, market, size, price)
        return self.attempt(label, self.fill, order, taker)

    def run(self) -> int:
        self.begin()
        self.play()
        return self.end()

    def play(self) -> None:  # pragma: no cover - every agent overrides it
        raise NotImplementedError


# ---------------------------------------------------------------- incidents


class MangoPump(Agent):
    """Mango 2022: go long, pump the (thin) feed, then try to take the unrealized PnL out:
    withdraw it, or close at a stale/pumped price once the feed is back."""

    goal = "withdraw unrealized PnL created by a manipulated oracle"

    def __init__(self, env: Env, attacker, *, market: str, size: int, entry: int, pump: int, collateral: int):
        super().__init__(env, [attacker])
        self.attacker = attacker
        self.market = env.system.markets[market]
        self.size, self.entry, self.pump, self.collateral = size, entry, pump, collateral

    def play(self) -> None:
        system, a, m = self.system, self.attacker, self.market
        maker = self.env.counterparties[0]
        self.deposit(a, m.segment, self.collateral)
        self.trade("open long", a, maker, m.id, self.size, self.entry)
        self.env.price(m.label, self.pump)  # the manipulation
        equity = int(system.lens.equity(a, m.segment))
        collateral = int(system.vault.collateral(a, m.segment))
        self.equity_at_pump = equity
        # 1. withdraw the paper profit (everything above realized collateral)
        self.attempt("withdraw unrealized", system.vault.withdraw, m.segment, equity - collateral // 2, sender=a)
        self.attempt("withdraw equity", system.vault.withdraw, m.segment, equity, sender=a)
        # 2. the feed is corrected; try to sell at the pumped price to an honest bid
        self.env.price(m.label, self.entry)
        bid = self.order(maker, m.id, self.size, self.pump)  # a (stale) bid at the pumped price
        self.attempt("sell at pumped price", self.fill, bid, a)
        # 3. the attacker closes at the real price and leaves with what is left
        self.trade("close at oracle", maker, a, m.id, self.size, self.entry)
        left = int(system.vault.collateral(a, m.segment))
        if left > 0:
            self.attempt("withdraw realized", system.vault.withdraw, m.segment, left, sender=a)


class GapLoser(Agent):
    """dYdX YFI 2023: a position whose loss gaps past its collateral (and the penalty)."""

    goal = "leave a deficit larger than the collateral and the penalty for the pool"

    def __init__(self, env: Env, attacker, *, market: str, size: int, entry: int, gap: int, collateral: int):
        super().__init__(env, [attacker])
        self.attacker = attacker
        self.market = env.system.markets[market]
        self.size, self.entry, self.gap, self.collateral = size, entry, gap, collateral

    def play(self) -> None:
        a, m = self.attacker, self.market
        self.deposit(a, m.segment, self.collateral)
        # the attacker is the taker: short `size` against the honest maker's bid
        self.trade("open short", self.env.counterparties[0], a, m.id, self.size, self.entry)
        self.env.price(m.label, self.gap)
        # the attacker's only move after the gap: try to get collateral out before keepers
        self.attempt("withdraw after gap", self.system.vault.withdraw, m.segment, 1, sender=a)


class ThinMarketDumper(Agent):
    """Hyperliquid JELLY/POPCAT 2025: both sides of a thin market; let one side fall below
    MM where nobody liquidates, hoping the pool/backstop inherits it, then squeeze it."""

    goal = "make the pool inherit a thin-market position, then move the price against it"

    def __init__(self, env: Env, short_side, long_side, *, market: str, size: int, entry: int,
                 short_collateral: int, long_collateral: int, squeeze: int, squeeze_more: int):
        super().__init__(env, [short_side, long_side])
        self.short_side, self.long_side = short_side, long_side
        self.market = env.system.markets[market]
        self.size, self.entry = size, entry
        self.short_collateral, self.long_collateral = short_collateral, long_collateral
        self.squeeze, self.squeeze_more = squeeze, squeeze_more

    def play(self) -> None:
        m = self.market
        self.deposit(self.short_side, m.segment, self.short_collateral)
        self.deposit(self.long_side, m.segment, self.long_collateral)
        self.trade("open both sides", self.long_side, self.short_side, m.id, self.size, self.entry)
        self.env.price(m.label, self.squeeze)  # short side below MM, not bankrupt

    def squeeze_again(self) -> None:
        """After the keepers' resolution: pump further against whoever holds the short."""
        self.env.price(self.market.label, self.squeeze_more)


class WhaleSelfLiquidator(Agent):
    """Hyperliquid ETH whale 2025: open big, withdraw down to IM, let the price drift to
    liquidation and liquidate yourself from a second account."""

    goal = "take one's own position over at the auction discount, paid by the pool"

    def __init__(self, env: Env, whale, liquidator, *, market: str, size: int, entry: int,
                 collateral: int, liquidator_collateral: int):
        super().__init__(env, [whale, liquidator])
        self.whale, self.liquidator = whale, liquidator
        self.market = env.system.markets[market]
        self.size, self.entry = size, entry
        self.collateral, self.liquidator_collateral = collateral, liquidator_collateral
        self.liquidations: list[Attempt] = []

    def open_and_strip(self) -> None:
        system, m = self.system, self.market
        self.deposit(self.whale, m.segment, self.collateral)
        self.deposit(self.liquidator, m.segment, self.liquidator_collateral)
        self.trade("open long", self.whale, self.env.counterparties[0], m.id, self.size, self.entry)
        health = system.vault.account_health(self.whale, m.segment)
        excess = int(health.equity) - int(health.im)
        self.attempt("withdraw one unit past IM", system.vault.withdraw, m.segment, excess + 1, sender=self.whale)
        self.attempt("withdraw down to IM", system.vault.withdraw, m.segment, excess, sender=self.whale)

    def self_liquidate(self, *, wait: int = 0, rounds: int = 8) -> None:
        system, m, engine = self.system, self.market, self.system.engine
        if wait:
            engine.flag(self.whale, m.segment, sender=self.liquidator)
            chain.pending_timestamp = int(engine.flagged_at(self.whale, m.segment)) + wait
        for i in range(rounds):
            if not system.lens.is_liquidatable(self.whale, m.segment):
                break
            size = abs(int(system.vault.position(self.whale, m.id)[0]))
            result = self.attempt(f"self-liquidate {i}", engine.liquidate, self.whale, m.id, size, sender=self.liquidator)
            self.liquidations.append(result)
            if not result.ok:
                break

    def close_liquidator(self, counterparty) -> None:
        """The liquidating account sells what it took over back at the oracle price."""
        system, m = self.system, self.market
        size = int(system.vault.position(self.liquidator, m.id)[0])
        if size:
            mark = int(system.oracle.price(m.id))
            self.trade("liquidator closes", counterparty, self.liquidator, m.id, size, mark)


class WashTrader(Agent):
    """Same owner on both sides: two accounts fill each other at off-market prices so that
    one ends with the profit and the other with a deficit for the pool."""

    goal = "move value between two own accounts at off-market prices, leaving bad debt"

    def __init__(self, env: Env, rich, poor, *, market: str, collateral_rich: int, collateral_poor: int):
        super().__init__(env, [rich, poor])
        self.rich, self.poor = rich, poor
        self.market = env.system.markets[market]
        self.collateral_rich, self.collateral_poor = collateral_rich, collateral_poor

    def play(self) -> None:
        m, vault = self.market, self.system.vault
        mark = int(self.system.oracle.price(m.id))
        self.deposit(self.rich, m.segment, self.collateral_rich)
        self.deposit(self.poor, m.segment, self.collateral_poor)
        ten = 10 * WAD
        # the poor account buys far above the oracle from the rich one
        self.trade("buy 30% above oracle", self.poor, self.rich, m.id, ten, mark * 13 // 10)
        self.trade("buy at band edge", self.poor, self.rich, m.id, ten, mark * 11 // 10)
        # open at the oracle price (the poor account levered close to the limit)
        self.trade("open at oracle", self.poor, self.rich, m.id, ten, mark)
        # price drifts below IM (still above MM); try to 'reduce' at an off-market price
        self.env.price(m.label, mark * 92 // 100)
        low = int(self.system.oracle.price(m.id))
        off = low * 91 // 100
        self.trade("reduce at off price", self.rich, self.poor, m.id, 5 * WAD, off)
        self.trade("flip at off price", self.rich, self.poor, m.id, 15 * WAD, off)
        order = self.order(self.poor, m.id, -15 * WAD, off, reduce_only=True)
        self.attempt("reduce-only order that flips", self.fill, order, self.rich)
        # honest exit: reduce at the oracle, the rest closed at the oracle too
        self.trade("reduce at oracle", self.rich, self.poor, m.id, 5 * WAD, low)
        size = int(vault.position(self.poor, m.id)[0])
        if size:
            self.trade("close at oracle", self.rich, self.poor, m.id, size, low)
        for account in (self.rich, self.poor):
            left = int(vault.collateral(account, m.segment))
            if left > 0 and int(vault.account_health(account, m.segment).mm) == 0:
                self.attempt("withdraw", vault.withdraw, m.segment, left, sender=account)


class JitLp(Agent):
    """JIT liquidity: deposit into a segment pool right before a big notify_income (a fee
    sweep after heavy trading), then try to leave with the income."""

    goal = "capture a fee spike without bearing the pool's risk"

    def __init__(self, env: Env, lp, *, segment_label: str, amount: int):
        super().__init__(env, [lp])
        self.lp = lp
        self.pool = env.system.pools[segment_label]
        self.segment = env.system.segments[segment_label]
        self.amount = amount

    def play(self) -> None:
        pool = self.pool
        self.mint(self.lp, self.amount)
        self.system.token.approve(pool, self.amount, sender=self.lp)
        pool.deposit(self.amount, self.lp, sender=self.lp)
        self.shares = int(pool.balanceOf(self.lp))
        self.value_before_sweep = int(pool.convertToAssets(self.shares))
        self.attempt("sweep fees", self.system.vault.sweep_fees, self.segment, sender=self.lp)
        self.value_after_sweep = int(pool.convertToAssets(self.shares))
        self.attempt("request redeem", pool.request_redeem, self.shares, sender=self.lp)
        self.attempt("redeem at once", pool.redeem, self.shares, self.lp, self.lp, sender=self.lp)

    def exit_after_cooldown(self) -> None:
        unlock = int(self.pool.pending_request(self.lp)[1])
        chain.pending_timestamp = unlock
        self.attempt("redeem after cooldown", self.pool.redeem, self.shares, self.lp, self.lp, sender=self.lp)


class DeficitDodger(Agent):
    """An LP who sees an account deep underwater and tries to leave before the cover."""

    goal = "exit the pool between a visible deficit and its cover"

    def __init__(self, env: Env, lp, accomplice, *, segment_label: str):
        super().__init__(env, [lp, accomplice])
        self.lp, self.accomplice = lp, accomplice
        self.pool = env.system.pools[segment_label]

    def play(self) -> None:
        pool = self.pool
        shares = int(pool.balanceOf(self.lp))
        self.attempt("request redeem", pool.request_redeem, shares, sender=self.lp)
        self.attempt("redeem now", pool.redeem, shares, self.lp, self.lp, sender=self.lp)
        self.attempt("withdraw now", pool.withdraw, 1, self.lp, self.lp, sender=self.lp)
        # hand the shares to a fresh account: they keep bearing the loss there
        self.attempt("transfer shares away", pool.transfer, self.accomplice, shares // 2, sender=self.lp)
        self.attempt("accomplice redeems", pool.redeem, shares // 2, self.accomplice, self.accomplice,
                     sender=self.accomplice)


class CrossSegmentDrainer(Agent):
    """Drift LUNA 2022: a huge position in one segment's asset crashes; the deficit tries to
    reach the other segment's pool (and the whole shared backstop)."""

    goal = "make another segment's pool (and the whole backstop) pay one asset's crash"

    def __init__(self, env: Env, attacker, *, market: str, size: int, entry: int, crash: int,
                 collateral: int, other_segment_collateral: int):
        super().__init__(env, [attacker])
        self.attacker = attacker
        self.market = env.system.markets[market]
        self.size, self.entry, self.crash = size, entry, crash
        self.collateral, self.other_segment_collateral = collateral, other_segment_collateral

    def play(self) -> None:
        m = self.market
        others = [s for s in self.system.segments.values() if s != m.segment]
        self.deposit(self.attacker, m.segment, self.collateral)
        for s in others:  # collateral parked in another segment, hoping it is cross-margined
            self.deposit(self.attacker, s, self.other_segment_collateral)
        self.trade("open long", self.attacker, self.env.counterparties[0], m.id, self.size, self.entry)
        self.env.price(m.label, self.crash)
        for s in others:
            self.attempt("withdraw other segment", self.system.vault.withdraw, s, self.other_segment_collateral,
                         sender=self.attacker)


__all__ = [
    "Agent", "Attempt", "Env", "MangoPump", "GapLoser", "ThinMarketDumper", "WhaleSelfLiquidator",
    "WashTrader", "JitLp", "DeficitDodger", "CrossSegmentDrainer",
]
