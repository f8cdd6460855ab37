"""Backstop end to end on a local chain (`make demo`, i.e. `ape run demo`).

ape-foundry starts Anvil on a random port, the script deploys the whole system with the
one deployment path (backstop.client.deploy.deploy_system), then:

  an LP funds the majors insurance pool and the backstop -> maker and trader deposit ->
  maker signs an EIP-712 order, trader fills it -> the price moves -> the winner closes
  with a second signed order and withdraws collateral + profit in full -> fees are swept
  (half to the pool as vesting income, half to the treasury) and the LP's share price
  rises -> a whale opens a leveraged long -> ETH gaps down 13% -> a keeper flags the
  account, waits for the Dutch auction discount and liquidates -> the pool pays the
  deficit -> the whale's counterparty closes and withdraws in full -> conservation.

Each step is a small function of the shared `Demo` state, run in order from `STEPS`;
a new chapter (an LP funding an insurance pool, a crash, a keeper liquidating, the pool
paying) is a new function inserted into that list.
"""

import time
from typing import Any

from ape import accounts, chain

from backstop.reporting import display
from backstop.client.actors import fill, fund, set_price, signed_order, trade
from backstop.client.pools import pool_view
from backstop.core.config import SystemConfig
from backstop.client.deploy import System, deploy_system
from backstop.client.speed import disable_post_transaction_trace
from backstop.core.units import from_wad, quote, wad

DEPOSIT = 100_000  # quote units per trader
SIZE = wad(10)  # ETH the maker buys
OPEN_PRICE = wad(3000)
MOVED_PRICE = wad(3300)
LP_DEPOSIT = 50_000
WHALE_DEPOSIT = 5_000
WHALE_SIZE = wad(15)
CRASH_PRICE = wad(2600)
KEEPER_DEPOSIT = 20_000
AUCTION_WAIT = 120  # seconds after the flag: discount 1% of the 0% -> 5% / 600 s auction


class Demo:
    """Actors, the deployed system and what the steps learn along the way."""

    def __init__(self) -> None:
        test = accounts.test_accounts
        self.deployer = test[0]
        self.maker = test[1]
        self.trader = test[2]
        self.keeper = test[3]
        self.lp = test[4]
        self.whale = test[5]
        self.treasury = test[6]
        self.system: System | None = None
        self.winner: Any = None
        self.loser: Any = None

    # convenience -------------------------------------------------------------

    @property
    def eth(self):
        return self.system.markets["ETH-PERP"]

    @property
    def segment(self) -> int:
        return self.system.segments["majors"]

    def usd(self, x) -> int:
        return quote(x, self.system.decimals)

    def fmt(self, amount: int) -> str:
        return display.fmt_quote(amount, self.system.decimals)

    @property
    def pool(self):
        return self.system.pools["majors"]

    def traders(self) -> dict[str, Any]:
        return {"maker": self.maker, "trader": self.trader, "whale": self.whale, "keeper": self.keeper}

    def name(self, account) -> str:
        return next(n for n, a in self.traders().items() if a == account)

    def show_accounts(self, title: str) -> None:
        display.show(display.account_table(self.system, self.traders(), self.segment, title))


# ---------------------------------------------------------------- steps


def deploy(d: Demo) -> None:
    display.step("Deploy token, oracle adapter, vault, segments and markets on the local chain")
    d.system = deploy_system(d.deployer, SystemConfig(treasury=d.treasury.address))
    display.show(display.addresses_table(d.system))


def fund_pools(d: Demo) -> None:
    display.step(f"An LP deposits {LP_DEPOSIT:,} USDC into the majors insurance pool and "
                 f"{LP_DEPOSIT:,} into the shared backstop (ERC-4626 shares)")
    for pool in (d.pool, d.system.backstop):
        amount = d.usd(LP_DEPOSIT)
        d.system.token.mint(d.lp, amount, sender=d.lp)
        d.system.token.approve(pool, amount, sender=d.lp)
        pool.deposit(amount, d.lp, sender=d.lp)
    view = pool_view(d.pool, d.lp)
    d.lp_price_start = view.price
    display.ok(f"LP holds {view.lp_shares:,} majors-pool shares worth {d.fmt(view.lp_assets)} USDC "
               f"(assets per share {view.price:.6f})")


def fund_traders(d: Demo) -> None:
    display.step(f"Maker and trader each deposit {DEPOSIT:,} USDC into the 'majors' segment")
    for account in (d.maker, d.trader):
        fund(d.system, account, d.segment, d.usd(DEPOSIT))
    d.show_accounts("After the deposits")


def open_trade(d: Demo) -> None:
    display.step(
        f"Maker signs an EIP-712 order to buy {from_wad(SIZE)} ETH at {from_wad(OPEN_PRICE):,}; "
        "the trader fills it on chain"
    )
    order = signed_order(d.system, d.maker, d.eth.id, SIZE, OPEN_PRICE)
    display.note(f"order: maker {display.short(order.maker)}, market {order.market}, size +{from_wad(order.size)}, "
                 f"price {from_wad(order.price):,}, nonce {order.nonce}; signature {order.signature[:6].hex()}…")
    receipt = fill(d.system, order, d.trader)
    display.ok(f"filled in tx {display.short(receipt.txn_hash)} ({receipt.gas_used:,} gas): "
               "maker long, trader short")
    d.show_accounts("Positions open at 3,000")


def move_price(d: Demo, price: int = MOVED_PRICE) -> None:
    display.step(f"The ETH oracle moves to {from_wad(price):,}")
    set_price(d.system, "ETH-PERP", price, d.deployer)
    display.note(f"oracle.price(ETH-PERP) = {display.fmt_wad(d.system.oracle.price(d.eth.id), 2)}")
    d.show_accounts(f"Marked at {from_wad(price):,}")
    healths = d.system.lens.health_of([d.maker, d.trader], d.segment)
    pnl = {account: int(h.equity) - int(h.collateral) for account, h in zip((d.maker, d.trader), healths)}
    d.winner = max(pnl, key=pnl.get)
    d.loser = min(pnl, key=pnl.get)
    display.ok(f"{d.name(d.winner)} is up {d.fmt(pnl[d.winner])} USDC, unrealized")


def close_winner(d: Demo) -> None:
    size, _ = d.system.vault.position(d.winner, d.eth.id)
    price = d.system.oracle.price(d.eth.id)
    side = "sell" if size > 0 else "buy"
    display.step(f"The {d.name(d.winner)} closes: signs a reduce-only order to {side} {from_wad(abs(size))} ETH "
                 f"at {display.fmt_wad(price, 2)}, the {d.name(d.loser)} fills it")
    order = signed_order(d.system, d.winner, d.eth.id, -size, price, reduce_only=True)
    receipt = fill(d.system, order, d.loser)
    display.ok(f"closed in tx {display.short(receipt.txn_hash)} ({receipt.gas_used:,} gas): PnL realized into collateral")
    d.show_accounts("After the close")


def withdraw_winner(d: Demo) -> None:
    collateral = int(d.system.vault.collateral(d.winner, d.segment))
    display.step(f"The {d.name(d.winner)} withdraws everything: {d.fmt(collateral)} USDC")
    holders = {d.name(d.winner): d.winner, "vault": d.system.vault}
    before = display.balances(d.system.token, holders)
    d.system.vault.withdraw(d.segment, collateral, sender=d.winner)
    display.show(display.balances_table(d.system.token, holders, d.system.decimals,
                                        "Quote token balances around the withdrawal", before))
    profit = int(d.system.token.balanceOf(d.winner)) - d.usd(DEPOSIT)
    display.ok(f"{d.name(d.winner)} got the {DEPOSIT:,} deposit back plus {d.fmt(profit)} profit")


def sweep_fees(d: Demo) -> None:
    segment = d.segment
    accrued = sum(int(d.system.lens.accrued_fees(m.id)) for m in d.system.markets.values() if m.segment == segment)
    display.step(f"Anyone sweeps the segment's accrued fees ({d.fmt(accrued)} USDC): half to the "
                 "majors pool as income vesting over a day, half to the treasury")
    holders = {"treasury": d.treasury, "majors pool": d.pool, "vault": d.system.vault}
    before = display.balances(d.system.token, holders)
    d.system.vault.sweep_fees(segment, sender=d.keeper)
    display.show(display.balances_table(d.system.token, holders, d.system.decimals, "Fee sweep", before))


def lp_earns(d: Demo) -> None:
    display.step("A day passes: the pool's income vests and the LP's share price rises")
    now = pool_view(d.pool, d.lp)
    display.note(f"just after the sweep: vested {d.fmt(now.vested_income)}, unvested {d.fmt(now.unvested_income)} USDC")
    chain.pending_timestamp += 86_400
    chain.mine()
    later = pool_view(d.pool, d.lp)
    if later.price <= d.lp_price_start:
        raise SystemExit("the LP's share price did not rise with fees")
    display.ok(f"assets per share {d.lp_price_start:.6f} -> {later.price:.6f}; "
               f"LP's shares now worth {d.fmt(later.lp_assets)} USDC")
    for label in d.system.markets:  # the feeds' heartbeat is one hour: publish fresh rounds
        set_price(d.system, label, _spec_wad(d, label), d.deployer)


def _spec_wad(d: Demo, label: str) -> int:
    return wad(d.system.markets[label].spec.price) if label != "ETH-PERP" else OPEN_PRICE


def whale_opens(d: Demo) -> None:
    display.step(f"A whale deposits {WHALE_DEPOSIT:,} USDC and buys {from_wad(WHALE_SIZE)} ETH at "
                 f"{from_wad(OPEN_PRICE):,} from the trader: {from_wad(WHALE_SIZE) * from_wad(OPEN_PRICE) / WHALE_DEPOSIT:.0f}x leverage")
    fund(d.system, d.whale, d.segment, d.usd(WHALE_DEPOSIT))
    trade(d.system, d.whale, d.trader, d.eth.id, WHALE_SIZE, OPEN_PRICE)
    d.show_accounts("Whale long, trader short")


def crash(d: Demo) -> None:
    display.step(f"ETH gaps down to {from_wad(CRASH_PRICE):,}: further than the whale's collateral can absorb")
    set_price(d.system, "ETH-PERP", CRASH_PRICE, d.deployer)
    health = d.system.vault.account_health(d.whale, d.segment)
    display.ok(f"whale equity {d.fmt(int(health.equity))} USDC < MM {d.fmt(int(health.mm))}: liquidatable and bankrupt")


def keeper_liquidates(d: Demo) -> None:
    engine = d.system.engine
    display.step(f"A keeper flags the whale and, {AUCTION_WAIT} s into the Dutch auction, takes the position: "
                 "the whale is bankrupt, so at mark for the keeper fee floor (a bankrupt account's discount "
                 "would be paid by the pool, and waiting must never pay)")
    fund(d.system, d.keeper, d.segment, d.usd(KEEPER_DEPOSIT))
    engine.flag(d.whale, d.segment, sender=d.keeper)
    chain.pending_timestamp += AUCTION_WAIT
    set_price(d.system, "ETH-PERP", CRASH_PRICE, d.deployer)
    size, price, profit, full, fee = engine.liquidation_quote(d.whale, d.eth.id, WHALE_SIZE)
    display.note(f"quote: size {display.fmt_wad(size)}, price {display.fmt_wad(price, 2)}, "
                 f"keeper's discount profit {d.fmt(profit)} + fee {d.fmt(fee)} USDC, full close: {full}")
    pool_before = pool_view(d.pool)
    receipt = engine.liquidate(d.whale, d.eth.id, WHALE_SIZE, sender=d.keeper)
    for log in receipt.decode_logs():
        if log.event_name in ("Liquidated", "Cover", "BadDebtCovered", "Draw"):
            fields = ", ".join(f"{k}={_fmt_field(d, k, v)}" for k, v in log.event_arguments.items())
            display.note(f"{log.event_name}: {fields}")
    pool_after = pool_view(d.pool)
    display.ok(f"the pool paid {d.fmt(pool_before.managed_assets - pool_after.managed_assets)} USDC of bad debt "
               f"({receipt.gas_used:,} gas); whale collateral now {d.fmt(int(d.system.vault.collateral(d.whale, d.segment)))}")
    d.show_accounts("After the liquidation")


def _fmt_field(d: Demo, key: str, value) -> str:
    if isinstance(value, int) and key in ("requested", "paid_by_pool", "paid_by_backstop", "unpaid", "deficit",
                                          "paid", "penalty", "keeper_fee"):
        return d.fmt(value)
    if isinstance(value, int) and key in ("size", "price", "mark", "discount"):
        return display.fmt_wad(value, 4)
    if isinstance(value, str) and value.startswith("0x"):
        return display.short(value)
    return str(value)


def winner_paid_in_full(d: Demo) -> None:
    size, _ = d.system.vault.position(d.trader, d.eth.id)
    display.step(f"The whale's counterparty (trader, short {from_wad(abs(size))} ETH) buys back from the keeper "
                 "and withdraws everything: the winner is paid in full")
    keeper_order = signed_order(d.system, d.keeper, d.eth.id, size, CRASH_PRICE)
    fill(d.system, keeper_order, d.trader)
    collateral = int(d.system.vault.collateral(d.trader, d.segment))
    before = int(d.system.token.balanceOf(d.trader))
    d.system.vault.withdraw(d.segment, collateral, sender=d.trader)
    display.ok(f"trader withdrew {d.fmt(int(d.system.token.balanceOf(d.trader)) - before)} USDC; "
               f"open positions left: trader {int(d.system.vault.position(d.trader, d.eth.id)[0])}")
    d.show_accounts("After the winner's exit")


def check_conservation(d: Demo) -> None:
    """docs/design.md, invariant 1: the vault holds exactly what it owes: collateral, unswept
    fees and penalties, minus the cost basis of open positions (zero-sum PnL)."""
    display.step("Conservation: every quote unit is accounted for, to the wei")
    vault = d.system.vault
    lens = d.system.lens
    held = int(d.system.token.balanceOf(vault))
    owners = list(d.traders().values())
    collateral = sum(int(vault.collateral(a, s)) for a in owners for s in d.system.segments.values())
    entries = sum(int(vault.position(a, m.id)[1]) for a in owners for m in d.system.markets.values())
    fees = sum(int(lens.accrued_fees(m.id)) for m in d.system.markets.values())
    penalties = sum(int(lens.accrued_penalties(m.id)) for m in d.system.markets.values())
    owed = collateral + fees + penalties - entries
    if held != owed:
        raise SystemExit(f"conservation broken: vault holds {held}, owes {owed}")
    display.ok(f"vault balance {d.fmt(held)} == Σ collateral {d.fmt(collateral)} + fees {d.fmt(fees)} "
               f"+ penalties {d.fmt(penalties)} − Σ entry {d.fmt(entries)}")
    d.show_accounts("Final accounts")


STEPS = [
    deploy,
    fund_pools,
    fund_traders,
    open_trade,
    move_price,
    close_winner,
    withdraw_winner,
    sweep_fees,
    lp_earns,
    whale_opens,
    crash,
    keeper_liquidates,
    winner_paid_in_full,
    check_conservation,
]


def main():
    disable_post_transaction_trace()
    started = time.perf_counter()
    display.console.rule("[bold]Backstop demo")
    d = Demo()
    for run_step in STEPS:
        run_step(d)
    display.console.print()
    display.console.rule(f"[bold green]demo complete in {time.perf_counter() - started:.1f} s")
