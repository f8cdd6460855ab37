"""Keeper logic: find liquidatable accounts, price the Dutch auction, rank ADL counterparties
and run a simple liquidation policy. Pure Python over the deployed contracts; used by
scripts, bots and tests.

Everything here only reads the chain except `liquidate_all`, which sends the keeper's
transactions (flag, liquidate, deleverage). See docs/liquidation.md for the economics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from ape import chain
from ape.api import AccountAPI, ReceiptAPI
from ape.exceptions import ContractLogicError

from backstop.client.deploy import System
from backstop.core.abi import address_of as _address
from backstop.core.config import ZERO_ADDRESS
from backstop.core.margin import upnl_at_mark
from backstop.core.units import WAD

# whole-transaction gas of a liquidation, for the profit estimate (see the engine tests)
DEFAULT_LIQUIDATE_GAS = 200_000
MAX_CALLS_PER_POSITION = 16


# ---------------------------------------------------------------- scan


@dataclass(frozen=True)
class AccountStatus:
    owner: str
    segment: int
    collateral: int
    equity: int
    im: int
    mm: int
    notional: int

    @property
    def liquidatable(self) -> bool:
        """equity < MM with positions open (the engine's flag/liquidate condition)."""
        return self.mm > 0 and self.equity < self.mm

    @property
    def bankrupt(self) -> bool:
        """equity < 0: closing everything at mark leaves a deficit for the waterfall."""
        return self.equity < 0

    @property
    def margin_ratio(self) -> float:
        """equity / MM (inf without positions)."""
        return float("inf") if self.mm == 0 else self.equity / self.mm


def health(system: System, owners: Sequence[Any], segment: int) -> list[AccountStatus]:
    """Health of every owner's account in `segment`, in one `lens.health_of` call."""
    addresses = [_address(o) for o in owners]
    if not addresses:
        return []
    rows = system.lens.health_of(addresses, segment)
    return [
        AccountStatus(a, segment, int(h.collateral), int(h.equity), int(h.im), int(h.mm), int(h.notional))
        for a, h in zip(addresses, rows)
    ]


def scan(system: System, owners: Sequence[Any], segment: int) -> list[AccountStatus]:
    """The liquidatable (equity < MM, MM > 0) and bankrupt (equity < 0) accounts among
    `owners`, lowest margin ratio first; one `lens.health_of` call."""
    found = [s for s in health(system, owners, segment) if s.liquidatable or s.bankrupt]
    return sorted(found, key=lambda s: (s.equity * WAD // s.mm) if s.mm else s.equity)


# ---------------------------------------------------------------- auction


@dataclass(frozen=True)
class AuctionQuote:
    size: int  # base size liquidate(owner, market, size) would close now
    price: int  # WAD
    profit: int  # discount profit at mark, quote units
    full_close: bool
    keeper_fee: int  # fee-floor top-up the engine pays on top of the discount, quote units
    gas_cost: int  # estimated, quote units
    net_profit: int  # profit + keeper_fee - gas_cost


def gas_cost_in_quote(system: System, gas_units: int, gas_price_wei: int, native_price_wad: int) -> int:
    """gas_units x gas price (wei) valued at native_price_wad (quote per native token, WAD)."""
    return gas_units * gas_price_wei * native_price_wad * 10**system.decimals // (WAD * WAD)


def _default_gas_price() -> int:
    try:
        return int(chain.provider.gas_price)
    except Exception:  # pragma: no cover - provider without eth_gasPrice
        return 0


def _default_native_price(system: System) -> int:
    market = system.markets.get("ETH-PERP")
    return 0 if market is None else int(system.oracle.price(market.id))


def auction_quote(
    system: System,
    owner: Any,
    market_id: int,
    size: int,
    *,
    gas_units: int = DEFAULT_LIQUIDATE_GAS,
    gas_price_wei: int | None = None,
    native_price_wad: int | None = None,
) -> AuctionQuote:
    """What liquidating up to `size` of owner's position in `market_id` would pay now
    (`engine.liquidation_quote`), plus the keeper-fee top-up and the net of estimated gas.
    Reverts like the engine for healthy accounts / missing positions."""
    amount, price, profit, full_close, keeper_fee = system.engine.liquidation_quote(_address(owner), market_id, size)
    keeper_fee = int(keeper_fee)
    gas_price = _default_gas_price() if gas_price_wei is None else gas_price_wei
    native = _default_native_price(system) if native_price_wad is None else native_price_wad
    gas_cost = gas_cost_in_quote(system, gas_units, gas_price, native)
    return AuctionQuote(
        size=int(amount),
        price=int(price),
        profit=int(profit),
        full_close=bool(full_close),
        keeper_fee=keeper_fee,
        gas_cost=gas_cost,
        net_profit=int(profit) + keeper_fee - gas_cost,
    )


def auction_over(system: System, owner: Any, segment: int) -> bool:
    """Whether the account was flagged at least `auction_duration` seconds ago (as of the
    latest block)."""
    started = int(system.engine.flagged_at(_address(owner), segment))
    if started == 0:
        return False
    duration = int(system.engine.params().auction_duration)
    return int(chain.blocks.head.timestamp) >= started + duration


# ---------------------------------------------------------------- ADL


@dataclass(frozen=True)
class AdlCandidate:
    owner: str
    size: int  # signed base size
    upnl: int  # quote units at mark
    equity: int  # of the candidate's account in the market's segment
    notional: int  # of the candidate's account
    score: int  # upnl x leverage, exactly as LiquidationEngine.adl_score computes it

    @property
    def leverage(self) -> float:
        return float("inf") if self.equity <= 0 else self.notional / self.equity


def adl_candidates(system: System, owners: Iterable[Any], market_id: int, bankrupt_side: int) -> list[AdlCandidate]:
    """Profitable positions opposite to `bankrupt_side` (sign of the bankrupt position:
    > 0 long, < 0 short) in `market_id`, ranked by uPnL x leverage, best first. The score is
    the engine's `adl_score`: upnl * account notional // max(account equity, 1) (quote units),
    which each Deleveraged event records, so the ranking can be audited on chain."""
    if bankrupt_side == 0:
        raise ValueError("bankrupt_side must be the sign of the bankrupt position")
    vault = system.vault
    lens = system.lens
    segment = int(lens.market(market_id).segment)
    mark = int(system.oracle.price(market_id))
    scale = int(vault.notional_scale())
    index = int(vault.funding_index(market_id, mark))
    positions = []
    for o in owners:
        address = _address(o)
        size, entry = (int(x) for x in vault.position(address, market_id))
        if size == 0 or (size > 0) == (bankrupt_side > 0):
            continue
        upnl = upnl_at_mark(size, entry, mark, scale, index)
        if upnl > 0:
            positions.append((address, size, upnl))
    if not positions:
        return []
    accounts = {s.owner: s for s in health(system, [p[0] for p in positions], segment)}
    ranked = []
    for address, size, upnl in positions:
        acct = accounts[address]
        score = upnl * acct.notional // max(acct.equity, 1)
        ranked.append(AdlCandidate(address, size, upnl, acct.equity, acct.notional, score))
    return sorted(ranked, key=lambda c: c.score, reverse=True)


# ---------------------------------------------------------------- policy


@dataclass
class Action:
    kind: str  # "flag" | "liquidate" | "takeover" | "deleverage" | "settle" | "unwind" | "mark" | "reclaim" | "rebalance" | "error"
    owner: str
    market: int | None = None
    counterparty: str | None = None
    size: int = 0
    receipt: ReceiptAPI | None = None
    error: str | None = None


@dataclass
class Report:
    actions: list[Action] = field(default_factory=list)

    def of(self, kind: str) -> list[Action]:
        return [a for a in self.actions if a.kind == kind]


def _revert_message(err: Exception) -> str:
    return str(getattr(err, "message", None) or err)


def uncovered_loss(system: System, status: AccountStatus) -> int:
    """The part of a bankrupt account's deficit that its segment pool and the backstop cannot
    pay (the engine's `_uncovered_loss`): while it is > 0, ADL is the waterfall's next step."""
    if status.equity >= 0:
        return 0
    pool = system.vault.segment_pool(status.segment)
    reach = 0 if int(pool, 16) == 0 else int(system.pool_at(pool).cover_reach())
    return max(-status.equity - reach, 0)


def profitable_positions(system: System, owners: Iterable[Any], market_id: int) -> list[AdlCandidate]:
    """Every profitable position in `market_id` (either side), ranked like adl_candidates:
    the candidates for the residual ADL of a flat account whose deficit no pool can pay."""
    longs = adl_candidates(system, owners, market_id, -1)
    shorts = adl_candidates(system, owners, market_id, +1)
    return sorted(longs + shorts, key=lambda c: c.score, reverse=True)


def _send(report: Report, action: Action, call: Callable[[], ReceiptAPI]) -> bool:
    """Send one keeper transaction; a revert (a lost race, a changed state) is recorded, never raised."""
    try:
        action.receipt = call()
    except ContractLogicError as err:
        report.actions.append(Action("error", action.owner, action.market, action.counterparty, action.size,
                                     error=_revert_message(err)))
        return False
    report.actions.append(action)
    return True


def _deleverage(system: System, keeper: AccountAPI, owner: str, market_id: int, candidates: Sequence[Any], report: Report) -> bool:
    """ADL owner's position against the ranked candidates until flat; True if it moved."""
    moved = False
    for cand in adl_candidates(system, candidates, market_id, int(system.vault.position(owner, market_id)[0])):
        size = int(system.vault.position(owner, market_id)[0])
        if size == 0:
            break
        amount = min(abs(size), abs(cand.size))
        moved |= _send(report, Action("deleverage", owner, market_id, cand.owner, amount),
                       lambda: system.engine.deleverage(owner, market_id, cand.owner, amount, sender=keeper))
    return moved


TAKEOVER_TRIES = 4  # whole size, then halves: what the liquidator's caps still allow goes to it, the rest to ADL


def _take_over(system: System, keeper: AccountAPI, owner: str, market_id: int, size: int, report: Report) -> bool:
    """Hand an unsold position to the liquidator of last resort, halving the size while its caps refuse; False when
    there is none or it refuses even the smallest piece."""
    if _address(system.engine.liquidator()) == ZERO_ADDRESS:
        return False
    for _ in range(TAKEOVER_TRIES):
        if size == 0:
            break
        ask = size
        if _send(report, Action("takeover", owner, market_id, size=ask),
                 lambda: system.engine.takeover(owner, market_id, ask, sender=keeper)):
            return True
        size //= 2
    return False


# ---------------------------------------------------------------- pools at work


def unwind_inventory(system: System, keeper: AccountAPI, segment: int, *, max_calls: int = 4) -> Report:
    """Take over the backstop liquidator's positions in `segment` at its discount schedule (anyone may), then
    have it charge any fall of its equity to the backstop (`mark`) and bring a flat account home (`reclaim`).
    The keeper needs free margin for what it takes, like any liquidation; it hedges it like the rest."""
    report = Report()
    liquidator = system.liquidator
    if liquidator is None:
        return report
    owner = liquidator.address
    vault, engine = system.vault, system.engine
    for market_id in (int(m) for m in system.lens.segment_markets(segment)):
        for _ in range(max_calls):
            size = abs(int(vault.position(owner, market_id)[0]))
            if size == 0:
                break
            action = Action("unwind", owner, market_id, size=size)
            if not _send(report, action, lambda: engine.liquidate(owner, market_id, size, sender=keeper)):
                break
    if int(liquidator.book(vault.address, segment)) > 0:
        _send(report, Action("mark", owner), lambda: liquidator.mark(vault.address, segment, sender=keeper))
    booked = any(_address(a.vault) == vault.address and int(a.segment) == segment for a in liquidator.accounts())
    if booked and health(system, [owner], segment)[0].mm == 0:
        _send(report, Action("reclaim", owner), lambda: liquidator.reclaim(vault.address, segment, sender=keeper))
    return report


def rebalance_pools(system: System, keeper: AccountAPI) -> Report:
    """`rebalance` every segment pool that is outside its band: above target (with income still vesting to
    send) or below its floor with bad debt to refill."""
    report = Report()
    for pool in system.pools.values():
        managed, target, floor = int(pool.managed_assets()), int(pool.target_size()), int(pool.floor_size())
        above = target > 0 and managed > target and int(pool.unvested_income()) > 0
        below = managed < floor and int(pool.refillable()) > 0
        if above or below:
            _send(report, Action("rebalance", pool.address), lambda: pool.rebalance(sender=keeper))
    return report


def _settle_residual(system: System, keeper: AccountAPI, owner: str, segment: int, candidates: Sequence[Any],
                     report: Report) -> None:
    """A flat account with negative collateral: retry the pool cover, then take what the pools
    cannot pay from the most profitable positions of the segment (residual ADL)."""
    engine, vault = system.engine, system.vault
    lens = system.lens
    _send(report, Action("settle", owner), lambda: engine.settle_bad_debt(owner, segment, sender=keeper))
    for market_id in (int(m) for m in lens.segment_markets(segment)):
        for cand in profitable_positions(system, candidates, market_id):
            status = health(system, [owner], segment)[0]
            if status.collateral >= 0 or uncovered_loss(system, status) == 0:
                return
            _send(report, Action("deleverage", owner, market_id, cand.owner, abs(cand.size)),
                  lambda: engine.deleverage(owner, market_id, cand.owner, abs(cand.size), sender=keeper))


def liquidate_all(
    system: System,
    keeper: AccountAPI,
    owners: Sequence[Any],
    segment: int,
    *,
    adl_pool: Sequence[Any] | None = None,
) -> Report:
    """One pass of the waterfall over `owners` in `segment`:
    - a liquidatable account whose deficit exceeds what the pools can pay is flagged (gating
      the segment's withdrawals) and deleveraged against the top-ranked profitable opposite
      positions (chosen among `adl_pool`, default `owners`); otherwise liquidated market by
      market (the first liquidation starts the auction clock) (partial calls repeat while it stays liquidatable); a liquidation that reverts
      once the auction is over falls back to ADL;
    - once the auction is over and nobody took the position, the backstop's liquidator of last
      resort takes it (`takeover`, within its caps); only when it refuses does ADL close it;
    - a flat account left with negative collateral is settled by the pools, and what they
      cannot pay is taken from the segment's most profitable positions (residual ADL).
    A reverted transaction (a lost race) is recorded in the report, never raised."""
    report = Report()
    engine, vault = system.engine, system.vault
    lens = system.lens
    pool = list(adl_pool if adl_pool is not None else owners)
    for status in scan(system, owners, segment):
        owner = status.owner
        others = [o for o in pool if _address(o) != owner]
        if not status.liquidatable:
            if status.collateral < 0:
                _settle_residual(system, keeper, owner, segment, others, report)
            continue
        adl_first = uncovered_loss(system, status) > 0
        # `liquidate` starts the auction clock itself; a flag of its own is sent only for a deficit beyond the
        # pools, because the flag also gates the segment's withdrawals before ADL moves any profit
        if adl_first and int(engine.flagged_at(owner, segment)) == 0:
            if not _send(report, Action("flag", owner), lambda: engine.flag(owner, segment, sender=keeper)):
                continue
        for market_id in (int(m) for m in lens.segment_markets(segment)):
            if adl_first and int(vault.position(owner, market_id)[0]) != 0:
                _deleverage(system, keeper, owner, market_id, others, report)
            for _ in range(MAX_CALLS_PER_POSITION):
                size = int(vault.position(owner, market_id)[0])
                if size == 0 or not health(system, [owner], segment)[0].liquidatable:
                    break
                action = Action("liquidate", owner, market_id, size=abs(size))
                if not _send(report, action, lambda: engine.liquidate(owner, market_id, abs(size), sender=keeper)):
                    if int(engine.flagged_at(owner, segment)) == 0:
                        # a position this keeper cannot take still starts its auction clock, so that it
                        # reaches the liquidator of last resort (or ADL) when the auction ends unsold
                        _send(report, Action("flag", owner), lambda: engine.flag(owner, segment, sender=keeper))
                    elif auction_over(system, owner, segment) and not _take_over(system, keeper, owner, market_id,
                                                                                  abs(size), report):
                        _deleverage(system, keeper, owner, market_id, others, report)
                    break
                logs = action.receipt.decode_logs(engine.Liquidated)
                action.size = int(logs[0].size) if logs else 0
        final = health(system, [owner], segment)[0]
        if final.mm == 0 and final.collateral < 0:
            _settle_residual(system, keeper, owner, segment, others, report)
    return report


# ---------------------------------------------------------------- account discovery


def depositors(system: System, start_block: int = 0, stop_block: int | None = None) -> dict[int, set[str]]:
    """{segment: owners} of the accounts that deposited in blocks [start_block, stop_block)
    (stop exclusive, like `range`; default: up to the head), from the vault's Deposit
    events: the accounts a keeper has to watch."""
    stop = chain.blocks.head.number + 1 if stop_block is None else stop_block
    found: dict[int, set[str]] = {}
    if stop <= start_block:
        return found
    for log in system.vault.Deposit.range(start_block, stop):
        found.setdefault(int(log.segment), set()).add(str(log.owner))
    return found

