"""Backstop end to end on a local chain (`make demo`, i.e. `ape run demo`).

ape-foundry starts Anvil on a random port, the script deploys the whole system with the
one deployment path (backstop.deploy.deploy_system), then:

  fund maker and trader -> maker signs an EIP-712 order, trader fills it -> the price
  moves -> both sides' health -> the winner closes with a second signed order -> the
  winner withdraws collateral + profit in full -> fees are swept to the treasury.

Each step is a small function of the shared `Demo` state, run in order from `STEPS`;
a new chapter (an LP funding an insurance pool, a crash, a keeper liquidating, the pool
paying) is a new function inserted into that list.
"""

import time
from typing import Any

from ape import accounts

from backstop import display
from backstop.actors import fill, fund, set_price, signed_order
from backstop.config import SystemConfig
from backstop.deploy import System, deploy_system
from backstop.speed import disable_post_transaction_trace
from backstop.units import from_wad, quote, wad

DEPOSIT = 100_000  # quote units per trader
SIZE = wad(10)  # ETH the maker buys
OPEN_PRICE = wad(3000)
MOVED_PRICE = wad(3300)


class Demo:
    """Actors, the deployed system and what the steps learn along the way."""

    def __init__(self) -> None:
        test = accounts.test_accounts
        self.deployer = test[0]
        self.maker = test[1]
        self.trader = test[2]
        self.keeper = test[3]
        self.lp = test[4]
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

    def traders(self) -> dict[str, Any]:
        return {"maker": self.maker, "trader": self.trader}

    def name(self, account) -> str:
        return next(n for n, a in self.traders().items() if a == account)

    def show_accounts(self, title: str) -> None:
        display.show(display.account_table(self.system, self.traders(), self.segment, title))


# ---------------------------------------------------------------- steps


def deploy(d: Demo) -> None:
    display.step("Deploy token, oracle adapter, vault, segments and markets on the local chain")
    d.system = deploy_system(d.deployer, SystemConfig(treasury=d.treasury.address))
    display.show(display.addresses_table(d.system))


def fund_traders(d: Demo) -> None:
    display.step(f"Maker and trader each deposit {DEPOSIT:,} USDC into the 'majors' segment")
    for account in d.traders().values():
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
    healths = d.system.vault.health_of([d.maker, d.trader], d.segment)
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
    accrued = sum(int(d.system.vault.accrued_fees(m.id)) for m in d.system.markets.values() if m.segment == segment)
    display.step(f"Anyone sweeps the segment's accrued fees ({d.fmt(accrued)} USDC) to the treasury")
    holders = {"treasury": d.treasury, "vault": d.system.vault}
    before = display.balances(d.system.token, holders)
    d.system.vault.sweep_fees(segment, sender=d.keeper)
    display.show(display.balances_table(d.system.token, holders, d.system.decimals, "Fee sweep", before))


def check_conservation(d: Demo) -> None:
    """With every position closed, the vault holds exactly the collateral it owes plus the
    fees not yet swept (DESIGN.md invariant 1)."""
    display.step("Conservation: the vault holds exactly what it owes")
    held = int(d.system.token.balanceOf(d.system.vault))
    collateral = sum(int(d.system.vault.collateral(a, d.segment)) for a in d.traders().values())
    fees = sum(int(d.system.vault.accrued_fees(m.id)) for m in d.system.markets.values())
    if held != collateral + fees:
        raise SystemExit(f"conservation broken: vault holds {held}, owes {collateral} + {fees} fees")
    display.ok(f"vault balance {d.fmt(held)} == Σ collateral {d.fmt(collateral)} + unswept fees {d.fmt(fees)}")
    d.show_accounts("Final accounts")


STEPS = [
    deploy,
    fund_traders,
    open_trade,
    move_price,
    close_winner,
    withdraw_winner,
    sweep_fees,
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
