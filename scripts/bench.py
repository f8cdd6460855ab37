"""Gas of every hot path -> reports/gas.json, and the deployed code size of every contract
against EIP-170 -> reports/codesize.json (`make bench`, i.e. `ape run bench`).

Deploys on the local network (ape-foundry starts Anvil), funds the actors once, then runs
each registered scenario from a chain snapshot of that base state, so scenarios are
independent and their order does not matter. A scenario prepares its own state and
returns the receipt of the ONE transaction it measures (or an int gas estimate).

To benchmark a new operation, add a function:

    @scenario("pool.deposit", "LP's second deposit")
    def _(b: Bench):
        ...                              # setup transactions (not measured)
        return b.system.pool.deposit(...)  # the measured receipt

Values are whole-transaction `receipt.gas_used` (21,000 base and calldata included).
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ape import accounts, chain, project
from rich.table import Table

from backstop.reporting import codesize, display, gas
from backstop.client.actors import fill, fund, set_price, signed_order, trade
from backstop.core.config import SystemConfig
from backstop.client.deploy import Market, System, deploy_risk_params, deploy_system
from backstop.client.speed import disable_post_transaction_trace
from backstop.core.units import quote, wad
from backstop.core.volatility import VolMarginParams
from backstop.keeper import Keeper
from backstop.risk import calibration, sizing


@dataclass
class Bench:
    system: System
    deployer: Any
    maker: Any
    trader: Any
    eth: Market
    segment: int

    def usd(self, x) -> int:
        return quote(x, self.system.decimals)


Scenario = Callable[[Bench], Any]
SCENARIOS: list[tuple[str, str, Scenario]] = []


def scenario(name: str, note: str = "") -> Callable[[Scenario], Scenario]:
    """Register a scenario measuring operation `name` (one key of reports/gas.json)."""

    def register(fn: Scenario) -> Scenario:
        if any(existing == name for existing, _, _ in SCENARIOS):
            raise ValueError(f"duplicate bench scenario {name}")
        SCENARIOS.append((name, note, fn))
        return fn

    return register


def scenario_named(name: str) -> Scenario:
    """The registered scenario measuring operation `name`."""
    for existing, _, fn in SCENARIOS:
        if existing == name:
            return fn
    raise KeyError(name)


# ---------------------------------------------------------------- base state


def setup() -> Bench:
    """Deploy and fund: maker and trader hold 100,000 collateral in "majors" and 100 in their
    wallets; a background pair already trades ETH-PERP, so market state (open interest,
    fees) is warm, as on a live market."""
    deployer, maker, trader, whale_a, whale_b = (accounts.test_accounts[i] for i in (0, 1, 2, 8, 9))
    system = deploy_system(deployer, SystemConfig(treasury=accounts.test_accounts[6].address))
    segment = system.segments["majors"]
    eth = system.markets["ETH-PERP"]
    b = Bench(system, deployer, maker, trader, eth, segment)
    for account in (maker, trader, whale_a, whale_b):
        fund(system, account, segment, b.usd(100_000))
        system.token.mint(account, b.usd(100), sender=account)
    trade(system, whale_a, whale_b, eth.id, wad(5), wad(3000))
    return b


def open_eth(b: Bench, size: int = wad(10), price: int = wad(3000)):
    """Maker long `size` ETH, trader short, at `price` (setup, not measured)."""
    return trade(b.system, b.maker, b.trader, b.eth.id, size, price)


# ---------------------------------------------------------------- scenarios: collateral


@scenario("vault.deposit", "second deposit into an existing account")
def _deposit(b: Bench):
    amount = b.usd(1_000)
    b.system.token.mint(b.maker, amount, sender=b.maker)
    b.system.token.approve(b.system.vault, amount, sender=b.maker)
    return b.system.vault.deposit(b.segment, amount, sender=b.maker)


@scenario("vault.withdraw", "no open position; wallet already holds tokens")
def _withdraw(b: Bench):
    return b.system.vault.withdraw(b.segment, b.usd(1_000), sender=b.maker)


@scenario("vault.withdraw_with_position", "IM check marks one ETH position")
def _withdraw_with_position(b: Bench):
    open_eth(b)
    return b.system.vault.withdraw(b.segment, b.usd(1_000), sender=b.maker)


# ---------------------------------------------------------------- scenarios: fills


@scenario("vault.fill_open", "both sides open fresh positions; signature check included")
def _fill_open(b: Bench):
    order = signed_order(b.system, b.maker, b.eth.id, wad(10), wad(3000))
    return fill(b.system, order, b.trader)


@scenario("vault.fill_open_first_in_market", "as fill_open, market state cold (first trade ever)")
def _fill_open_first(b: Bench):
    btc = b.system.markets["BTC-PERP"]
    order = signed_order(b.system, b.maker, btc.id, wad(1), wad(60000))
    return fill(b.system, order, b.trader)


@scenario("vault.fill_increase", "both increase existing positions with a new order")
def _fill_increase(b: Bench):
    open_eth(b)
    order = signed_order(b.system, b.maker, b.eth.id, wad(5), wad(3000))
    return fill(b.system, order, b.trader)


@scenario("vault.fill_partial", "second partial fill of the same order")
def _fill_partial(b: Bench):
    order = signed_order(b.system, b.maker, b.eth.id, wad(10), wad(3000))
    fill(b.system, order, b.trader, wad(4))
    return fill(b.system, order, b.trader, wad(4))


@scenario("vault.fill_reduce", "both reduce 10 -> 6 (partial close, PnL realized)")
def _fill_reduce(b: Bench):
    open_eth(b)
    order = signed_order(b.system, b.maker, b.eth.id, -wad(4), wad(3000), reduce_only=True)
    return fill(b.system, order, b.trader)


@scenario("vault.fill_close", "both close to zero")
def _fill_close(b: Bench):
    open_eth(b)
    order = signed_order(b.system, b.maker, b.eth.id, -wad(10), wad(3000), reduce_only=True)
    return fill(b.system, order, b.trader)


# ---------------------------------------------------------------- scenarios: orders, fees, oracle


@scenario("vault.cancel", "maker cancels an unfilled order")
def _cancel(b: Bench):
    order = signed_order(b.system, b.maker, b.eth.id, wad(10), wad(3000))
    return b.system.vault.cancel(order.as_tuple(), sender=b.maker)


@scenario("vault.sweep_fees", "segment with 2 markets, fees accrued")
def _sweep_fees(b: Bench):
    open_eth(b)
    return b.system.vault.sweep_fees(b.segment, sender=b.deployer)


@scenario("oracle.price", "eth_estimateGas of the view (not a transaction)")
def _oracle_price(b: Bench):
    return b.system.oracle.price.estimate_gas_cost(b.eth.id, sender=b.deployer)


# ---------------------------------------------------------------- scenarios: insurance pools


def lp_deposit(b: Bench, pool, amount: int):
    lp = accounts.test_accounts[4]
    b.system.token.mint(lp, amount, sender=lp)
    b.system.token.approve(pool, amount, sender=lp)
    return pool.deposit(amount, lp, sender=lp)


@scenario("pool.deposit", "LP's second deposit into the majors pool")
def _pool_deposit(b: Bench):
    pool = b.system.pools["majors"]
    lp_deposit(b, pool, b.usd(10_000))
    return lp_deposit(b, pool, b.usd(1_000))


@scenario("pool.request_redeem", "LP starts the 7-day cooldown")
def _pool_request(b: Bench):
    pool = b.system.pools["majors"]
    lp_deposit(b, pool, b.usd(10_000))
    lp = accounts.test_accounts[4]
    return pool.request_redeem(pool.balanceOf(lp) // 2, sender=lp)


@scenario("pool.redeem", "LP redeems inside the window after the cooldown")
def _pool_redeem(b: Bench):
    pool = b.system.pools["majors"]
    lp_deposit(b, pool, b.usd(10_000))
    lp = accounts.test_accounts[4]
    shares = pool.balanceOf(lp) // 2
    pool.request_redeem(shares, sender=lp)
    chain.pending_timestamp += 7 * 86400 + 1
    return pool.redeem(shares, lp, lp, sender=lp)


@scenario("pool.cover", "the pool alone pays a deficit (caller holds COVER_ROLE, like the vault)")
def _pool_cover(b: Bench):
    pool = b.system.pools["majors"]
    lp_deposit(b, pool, b.usd(10_000))
    pool.grantRole(pool.COVER_ROLE(), b.deployer, sender=b.deployer)
    # the real caller, the vault, always holds tokens: no zero-to-nonzero balance write
    b.system.token.mint(b.deployer, 1, sender=b.deployer)
    return pool.cover(b.usd(500), sender=b.deployer)


@scenario("pools.rebalance", "pool above its target: the surplus income goes half to the backstop, half to the treasury")
def _pools_rebalance(b: Bench):
    pool = b.system.pools["majors"]
    lp_deposit(b, pool, b.usd(10_000))
    pool.set_target_size(b.usd(9_000), sender=b.deployer)
    open_eth(b)
    b.system.vault.sweep_fees(b.segment, sender=b.deployer)  # fees arrive as unvested income: the surplus
    return pool.rebalance(sender=b.trader)


# ---------------------------------------------------------------- scenarios: liquidation


def leveraged_long(b: Bench, collateral: int = 3_200):
    """A fresh account long 10 ETH at 3,000 with `collateral` USDC, the maker short."""
    account = accounts.test_accounts[5]
    fund(b.system, account, b.segment, b.usd(collateral))
    trade(b.system, account, b.maker, b.eth.id, wad(10), wad(3000))
    return account


def crash_to(b: Bench, price: int) -> None:
    set_price(b.system, "ETH-PERP", price, b.deployer)


@scenario("engine.flag", "keeper starts the auction clock of a liquidatable account")
def _engine_flag(b: Bench):
    account = leveraged_long(b)
    crash_to(b, wad(2800))
    return b.system.engine.flag(account, b.segment, sender=b.trader)


@scenario("engine.liquidate_partial", "25% close factor, liquidator adds to an existing long")
def _engine_partial(b: Bench):
    account = leveraged_long(b)
    liquidator = accounts.test_accounts[8]  # long 5 ETH from the background trade
    crash_to(b, wad(2800))  # equity 1,200 < MM 1,400, above the 50% full-close tier
    b.system.engine.flag(account, b.segment, sender=liquidator)
    chain.pending_timestamp += 60
    crash_to(b, wad(2800))
    return b.system.engine.liquidate(account, b.eth.id, wad(10), sender=liquidator)


@scenario("engine.liquidate_bankrupt", "full close of a bankrupt account, the pool covers the deficit")
def _engine_bankrupt(b: Bench):
    lp_deposit(b, b.system.pools["majors"], b.usd(50_000))
    account = leveraged_long(b)
    liquidator = accounts.test_accounts[8]
    crash_to(b, wad(2600))  # equity -800
    b.system.engine.flag(account, b.segment, sender=liquidator)
    chain.pending_timestamp += 60
    crash_to(b, wad(2600))
    return b.system.engine.liquidate(account, b.eth.id, wad(10), sender=liquidator)


@scenario("engine.deleverage", "pools empty: a profitable short absorbs the deficit (ADL)")
def _engine_deleverage(b: Bench):
    account = leveraged_long(b)
    crash_to(b, wad(2600))
    return b.system.engine.deleverage(account, b.eth.id, b.maker, wad(10), sender=b.trader)


@scenario("engine.takeover", "auction over, nobody took it: the backstop's liquidator takes 10 ETH within its caps")
def _engine_takeover(b: Bench):
    lp_deposit(b, b.system.backstop, b.usd(400_000))  # 10% market cap: 40,000 of notional
    account = leveraged_long(b)
    crash_to(b, wad(2800))
    b.system.engine.flag(account, b.segment, sender=b.trader)
    chain.pending_timestamp += int(b.system.engine.params().auction_duration) + 1
    crash_to(b, wad(2800))
    return b.system.engine.takeover(account, b.eth.id, wad(10), sender=b.trader)


@scenario("engine.liquidate_batch", "10 accounts in one keeper transaction (LiquidationEngine.liquidate_batch)")
def _engine_batch(b: Bench):
    crowd = short_crowd(b, 10)
    crash_to(b, wad(3360))
    return b.system.engine.liquidate_batch([(a.address, b.eth.id, wad(1)) for a in crowd], sender=b.maker)


def _vol_margin_after_a_change(b: Bench):
    """RiskParams on ETH-PERP, seeded, then a -10% round whose poke raises the ratios: (risk, that receipt)."""
    risk = deploy_risk_params(b.system, b.deployer, {"ETH-PERP": VolMarginParams(floor=0.001)})
    chain.pending_timestamp += 60
    crash_to(b, wad(3000))
    risk.poke(b.eth.id, sender=b.trader)  # the first poke seeds the estimate
    chain.pending_timestamp += 3_600
    crash_to(b, wad(2700))  # -10%: the target rises above the floor, the ratios change
    return risk, risk.poke(b.eth.id, sender=b.trader)


@scenario("risk.poke", "RiskParams folds a new ETH round and writes new IM/MM into the vault's config word")
def _risk_poke(b: Bench):
    risk, receipt = _vol_margin_after_a_change(b)
    assert receipt.decode_logs(risk.MarginRatiosSet), "the bench poke must change the ratios"
    return receipt


@scenario("risk.poke_hold", "RiskParams folds a new ETH round inside the rate limit: the estimate moves, ratios hold")
def _risk_poke_hold(b: Bench):
    risk, _ = _vol_margin_after_a_change(b)
    chain.pending_timestamp += 60
    crash_to(b, wad(2650))
    receipt = risk.poke(b.eth.id, sender=b.trader)
    assert not receipt.decode_logs(risk.MarginRatiosSet), "inside min_interval the ratios must hold"
    return receipt


def short_crowd(b: Bench, n: int, collateral: int = 400) -> list:
    """`n` fresh accounts, each 1 ETH short at 3,000 against the trader (liquidatable at 3,360)."""
    crowd = []
    for _ in range(n):
        account = accounts.test_accounts.generate_test_account()
        account.balance = 10**20
        fund(b.system, account, b.segment, b.usd(collateral))
        trade(b.system, b.trader, account, b.eth.id, wad(1), wad(3000))
        crowd.append(account)
    return crowd


# ---------------------------------------------------------------- keeper latency and scan time


KEEPER_CROWD = 100
KEEPER_WATCHED = 1_000


def keeper_bench(b: Bench) -> dict:
    """Blocks from one oracle update to the liquidation of each of KEEPER_CROWD accounts, with blocks
    mined as a 1 s-block chain mines them (automine off: what the keeper sends in a block's handler
    lands in the next block), and the time of one handler run with KEEPER_WATCHED accounts watched."""
    crowd = short_crowd(b, KEEPER_CROWD)
    fund(b.system, b.maker, b.segment, b.usd(1_000_000))  # the keeper's margin account
    bot = Keeper(b.system, b.maker, gas_price_wei=0, start_block=chain.blocks.head.number + 1)
    bot.watch.add(b.segment, crowd)
    dummies = [f"0x{k:040x}" for k in range(1, KEEPER_WATCHED - KEEPER_CROWD + 1)]
    crash_to(b, wad(3360))
    update = int(chain.blocks.head.number)
    runs = []
    chain.provider.auto_mine = False
    try:
        head = update
        for _ in range(5):
            bot.watch.add(b.segment, dummies)  # scanned every run, as if none were flat
            runs.append(bot.run(head)["run_seconds"])
            chain.mine()
            head += 1
            bot.run(head)  # collects
            if bot.metrics.liquidations >= KEEPER_CROWD:
                break
    finally:
        chain.provider.auto_mine = True
    latencies = sorted(int(log.block_number) - update for log in b.system.engine.Liquidated.range(update, head + 1))
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    return {
        "accounts": KEEPER_CROWD, "liquidated": len(latencies), "watched": KEEPER_WATCHED,
        "latency_blocks_p50": pick(0.5), "latency_blocks_p99": pick(0.99),
        "first_run_seconds": round(runs[0], 3), "transactions": bot.metrics.sent,
    }


def report_keeper(b: Bench) -> None:
    snapshot = chain.snapshot()
    try:
        figures = keeper_bench(b)
    finally:
        chain.restore(snapshot)
    path = Path("reports/keeper.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")
    table = Table(title="Keeper: one oracle update makes every account liquidatable (1 s blocks)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key in ("accounts", "liquidated", "latency_blocks_p50", "latency_blocks_p99", "watched",
                "first_run_seconds", "transactions"):
        table.add_row(key, str(figures[key]))
    display.console.print()
    display.show(table)
    display.ok(f"wrote {path}")


def report_montecarlo() -> None:
    """Monte Carlo throughput of `make size`: one-year daily paths per second per segment (2 workers)."""
    calibrated = calibration.calibrate()
    figures = {}
    for seg in calibration.segments(calibrated):
        pps = sizing.paths_per_second(seg)
        figures[seg.name] = {"paths_per_second": round(pps), "seconds_per_100k": round(100_000 / pps, 2)}
    path = Path("reports/montecarlo.json")
    path.write_text(json.dumps(figures, indent=2) + "\n")
    table = Table(title="Monte Carlo fund sizing (one-year daily paths)")
    for column in ("segment", "paths/s", "s per 100,000"):
        table.add_column(column, justify="right")
    for name, f in figures.items():
        table.add_row(name, f"{f['paths_per_second']:,}", str(f["seconds_per_100k"]))
    display.console.print()
    display.show(table)
    display.ok(f"wrote {path}")


# ---------------------------------------------------------------- runner


def run(b: Bench, only: set[str] | None = None) -> gas.GasReport:
    report = gas.GasReport()
    for name, _, fn in SCENARIOS:
        if only and name not in only:
            continue
        snapshot = chain.snapshot()
        # every scenario is a new block 12 s after the setup's last one, not "whenever the wall clock says":
        # a fill then always settles funding (the once-per-block write a real fill pays) and the figures repeat
        chain.pending_timestamp = chain.blocks.head.timestamp + 12
        try:
            report.record(name, fn(b))
        finally:
            chain.restore(snapshot)
    return report


def main():
    disable_post_transaction_trace()
    display.step("Deploying on the local network and funding the actors")
    b = setup()
    # BENCH_ONLY=risk.poke,vault.fill_open: a quick look at a few scenarios while working on them; it prints
    # the table against reports/gas.json but writes nothing
    only = {name for name in os.environ.get("BENCH_ONLY", "").split(",") if name}
    display.step(f"Running {len(only) or len(SCENARIOS)} scenarios")
    report = run(b, only)
    if only:
        display.show(gas.table(report.as_dict(), gas.load(gas.DEFAULT_PATH), notes={n: d for n, d, _ in SCENARIOS}))
        return

    previous = gas.load(gas.DEFAULT_PATH)
    path = report.write(gas.DEFAULT_PATH)
    notes = {name: note for name, note, _ in SCENARIOS}
    display.console.print()
    display.show(gas.table(report.as_dict(), previous, notes=notes))
    over = gas.over_target(report.gas)
    if over:
        for name, (value, target) in over.items():
            display.console.print(f"[red]over target:[/] {name} {value:,} > {target:,}")
    else:
        display.ok("every operation within its target")
    display.ok(f"wrote {path}")
    report_keeper(b)
    report_montecarlo()
    report_codesize()


def report_codesize() -> None:
    """From the compiled contracts, not the chain: see backstop/codesize.py."""
    sizes = codesize.measure(project)
    display.console.print()
    display.show(codesize.table(sizes))
    for name, size in codesize.over_limit(sizes).items():
        display.console.print(f"[red]over EIP-170:[/] {name} {size.total:,} B > {size.limit:,} B")
    display.ok(f"wrote {codesize.write(sizes)}")
