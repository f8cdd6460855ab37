"""The crash story of `make demo`, reusable: the dashboard (`make dashboard`) and its browser test run it too.

On a deployed `System` with a `Cast` of actors (the deployer, an LP, the keeper and six traders/makers):

  LPs fund the majors and alts insurance pools and the shared backstop -> traders and makers
  deposit, the keeper funds a margin account in each segment -> traders open leveraged
  positions in both segments against makers' EIP-712 signed orders -> SOL (alts) gaps down
  40% in one oracle update -> the keeper (backstop.keeper.liquidate_all, run after every
  step and every block) takes the bankrupt account at once, at mark, and the alts pool plus
  the backstop pay its deficit -> it flags the solvent one and waits while the Dutch auction
  discount grows -> the winners (the makers who were short SOL) close and withdraw in full,
  to the wei -> the majors segment is untouched -> conservation (check_invariants) -> summary.

    cast = Cast.from_accounts(accounts.test_accounts)
    system = deploy(cast)                    # narrated; or any System deployed with deploy_system
    story = run(Story(system, cast))         # every step of STEPS, the keeper after each one

Each step is a small function of the shared `Story` state, run in order from `STEPS`; `EPILOGUE` holds the
extra steps the dashboard runs after it (an LP asks to redeem, so the redemption queue is not empty). A broken
promise (a winner short-paid, the other segment touched, an invariant violated) raises `BrokenPromise`.
Narration goes to `backstop.reporting.display.console`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ape import chain
from rich.table import Table

from backstop.client.actors import fill, fund, set_price, signed_order
from backstop.client.deploy import System, deploy_system
from backstop.client.pools import PoolView, pool_view
from backstop.core.config import SystemConfig
from backstop.core.units import ceil_div, from_wad, notional, quote, wad
from backstop.keeper import Report, liquidate_all, scan
from backstop.reporting import display
from backstop.sim.model import check_invariants

# whole USDC
LP_DEPOSITS = {"majors": 50_000, "alts": 20_000, "backstop": 100_000}  # alts pool < the deficit: the backstop helps
KEEPER_DEPOSIT = 10_000  # per segment: a liquidation hands the position to the keeper, which needs margin for it
DEPOSITS = {"max": 30_000, "carl": 8_000, "mia": 20_000, "ann": 10_000, "noah": 5_000, "bob": 10_000}
SEGMENT_OF = {"max": "majors", "carl": "majors", "mia": "alts", "ann": "alts", "noah": "alts", "bob": "alts"}
# (maker, taker, market, maker's size, price): the maker signs, the taker fills and takes the other side
BOOK = [
    ("max", "carl", "ETH-PERP", -10, 3_000),  # carl long 10 ETH
    ("max", "carl", "BTC-PERP", 0.5, 60_000),  # carl short 0.5 BTC
    ("mia", "ann", "SOL-PERP", -600, 150),  # ann long 600 SOL on 10,000: 9x
    ("noah", "bob", "SOL-PERP", -160, 150),  # bob long 160 SOL on 10,000: 2.4x
]
GAP_MARKET = "SOL-PERP"
GAP_PCT = 40  # one oracle update
BLOCK_TIME = 120  # seconds per demo block during the auction (0% -> 5% over 600 s)
TARGET_DISCOUNT = wad("0.02")  # the demo keeper waits for this auction discount on a solvent account
WINNERS = ("mia", "noah")
PLOTS = ("reports/stress_nav.png", "reports/size_loss.png")
KNOWN_LIBRARY_WARNINGS = (r".*has an incomplete definition.*",)  # pydantic-settings, from ape's config models


def quiet_library_warnings() -> None:
    """The known library warnings only (call inside a catch_warnings): anything new still shows."""
    for pattern in KNOWN_LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)


@dataclass
class Ledger:
    """What the keeper's transactions emitted, for the summary."""

    liquidations: list[dict] = field(default_factory=list)
    covers: list[dict] = field(default_factory=list)
    bad_debt: list[dict] = field(default_factory=list)
    draws: list[dict] = field(default_factory=list)
    adl: int = 0


class BrokenPromise(RuntimeError):
    """The story found a promise broken: a winner short-paid, the other segment touched, an invariant violated."""


@dataclass(frozen=True)
class Cast:
    """Who plays: `actors` maps each name of DEPOSITS (traders and makers) to an account."""

    deployer: Any
    treasury: Any
    lp: Any
    keeper: Any
    actors: dict[str, Any]

    @classmethod
    def from_accounts(cls, test_accounts: Sequence[Any]) -> "Cast":
        """The demo's casting: accounts 0-3 deployer, treasury, LP, keeper; 4-9 the traders and makers."""
        if len(test_accounts) < 4 + len(DEPOSITS):
            raise ValueError(f"the story needs {4 + len(DEPOSITS)} accounts, got {len(test_accounts)}")
        return cls(test_accounts[0], test_accounts[1], test_accounts[2], test_accounts[3],
                   dict(zip(DEPOSITS, test_accounts[4:4 + len(DEPOSITS)])))


class Story:
    """The deployed system, the cast and what the steps learn along the way."""

    def __init__(self, system: System, cast: Cast) -> None:
        self.cast = cast
        self.deployer, self.treasury, self.lp, self.keeper = cast.deployer, cast.treasury, cast.lp, cast.keeper
        self.actors: dict[str, Any] = dict(cast.actors)
        self.system: System = system
        self.redeem_requests: dict[str, int] = {}  # pool label -> shares the LP asked to redeem (EPILOGUE)
        self.keeper_on = False
        self.ledger = Ledger()
        self.pools_before: dict[str, PoolView] = {}
        self.majors_before: dict[str, Any] = {}
        self.withdrawn: dict[str, int] = {}
        self.expected: dict[str, int] = {}
        self.gap_price = 0

    def usd(self, x) -> int:
        return quote(x, self.system.decimals)

    def fmt(self, amount: int) -> str:
        return display.fmt_quote(amount, self.system.decimals)

    def seg(self, label: str) -> int:
        return self.system.segments[label]

    def pool(self, label: str):
        return self.system.backstop if label == "backstop" else self.system.pools[label]

    def in_segment(self, label: str, keeper: bool = True) -> dict[str, Any]:
        found = {n: a for n, a in self.actors.items() if SEGMENT_OF[n] == label}
        return {**found, "keeper": self.keeper} if keeper else found

    def all_accounts(self) -> list[Any]:
        return [self.deployer, self.treasury, self.lp, self.keeper, *self.actors.values()]

    def show_accounts(self, label: str, title: str) -> None:
        display.show(display.account_table(self.system, self.in_segment(label), self.seg(label), title))


# ---------------------------------------------------------------- keeper


def keeper_block(d: Story) -> Report:
    """One keeper pass over both segments with liquidate_all. The demo keeper is patient with solvent
    accounts: it flags them (starting their auction clock) and withholds them until the discount reaches
    TARGET_DISCOUNT; a bankrupt account is taken at once, because its discount would be paid by the pool."""
    engine, total = d.system.engine, Report()
    for label, segment in d.system.segments.items():
        owners = list(d.in_segment(label, keeper=False).values())
        waiting = set()
        for status in scan(d.system, owners, segment):
            if status.bankrupt or not status.liquidatable:
                continue
            if int(engine.flagged_at(status.owner, segment)) == 0:
                engine.flag(status.owner, segment, sender=d.keeper)
                display.note(f"keeper flags {name_of(d, status.owner)} (equity/MM {status.margin_ratio:.2f}): "
                             "auction clock starts")
            if int(engine.auction_discount(status.owner, segment)) < TARGET_DISCOUNT:
                waiting.add(status.owner)
        ready = [o for o in owners if o.address not in waiting]
        report = liquidate_all(d.system, d.keeper, ready, segment, adl_pool=owners)
        total.actions += report.actions
    record(d, total)
    return total


def record(d: Story, report: Report) -> None:
    """Show and keep the events of the keeper's transactions; a run of partial liquidations of one account
    (the close factor) is shown as one line."""
    runs: dict[str, list[dict]] = {}
    for action in report.actions:
        if action.kind == "error":
            display.note(f"[yellow]keeper {action.kind}: {action.error}[/]")
        if action.kind == "deleverage":
            d.ledger.adl += 1
        if action.receipt is None or action.kind == "flag":
            continue
        for log in action.receipt.decode_logs():
            fields = dict(log.event_arguments)
            if log.event_name == "Liquidated":
                d.ledger.liquidations.append(fields)
                runs.setdefault(fields["owner"], []).append(fields)
                continue
            kept = {"Cover": d.ledger.covers, "BadDebtCovered": d.ledger.bad_debt, "Draw": d.ledger.draws}
            if log.event_name in kept:
                kept[log.event_name].append(fields)
                text = ", ".join(f"{k}={_fmt_field(d, k, v)}" for k, v in fields.items())
                display.note(f"{log.event_name}: {text}")
    for owner, logs in runs.items():
        show_liquidations(d, owner, logs)


def show_liquidations(d: Story, owner: str, logs: list[dict]) -> None:
    size = sum(int(x["size"]) for x in logs)
    prices = sorted(int(x["price"]) for x in logs)
    discounts = sorted(int(x["discount"]) for x in logs)
    price = display.fmt_wad(prices[0], 4) if prices[0] == prices[-1] else \
        f"{display.fmt_wad(prices[0], 4)}-{display.fmt_wad(prices[-1], 4)}"
    discount = f"{from_wad(discounts[0]) * 100:.2f}%" if discounts[0] == discounts[-1] else \
        f"{from_wad(discounts[0]) * 100:.2f}-{from_wad(discounts[-1]) * 100:.2f}%"
    base = next(m.label for m in d.system.markets.values() if m.id == int(logs[0]["market"])).split("-")[0]
    display.note(f"Liquidated {name_of(d, owner)} x{len(logs)} call(s): {display.fmt_wad(size)} {base} to "
                 f"{name_of(d, logs[0]['liquidator'])} at {price} (mark {display.fmt_wad(int(logs[0]['mark']), 2)}, "
                 f"discount {discount}), penalty {d.fmt(sum(int(x['penalty']) for x in logs))}, keeper fee "
                 f"{d.fmt(sum(int(x['keeper_fee']) for x in logs))}, closed in full: {bool(logs[-1]['full_close'])}")


def _fmt_field(d: Story, key: str, value) -> str:
    if isinstance(value, int) and key in ("requested", "paid_by_pool", "paid_by_backstop", "unpaid", "deficit",
                                          "paid", "penalty", "keeper_fee"):
        return d.fmt(value)
    if isinstance(value, int) and key in ("size", "price", "mark"):
        return display.fmt_wad(value, 4)
    if isinstance(value, int) and key == "discount":
        return f"{from_wad(value) * 100:.2f}%"
    if isinstance(value, str) and value.startswith("0x"):
        return name_of(d, value)
    return str(value)


def name_of(d: Story, address: str) -> str:
    names = {a.address: n for n, a in d.actors.items()} | {d.keeper.address: "keeper", d.system.vault.address: "vault"}
    names |= {pool.address: f"{label} pool" for label, pool in d.system.pools.items()}
    return names.get(str(address), display.short(address))


def next_block(d: Story, seconds: int) -> None:
    chain.pending_timestamp += seconds
    chain.mine()


# ---------------------------------------------------------------- steps


def deploy(cast: Cast, config: SystemConfig | None = None) -> System:
    """The story's first step, narrated: deploy the whole system with the one deployment path."""
    display.step("Anvil is up (ape-foundry started it); deploy token, oracle, vault, engine, pools and markets")
    if not Path(".build/__local__.json").exists():
        display.note("first run: ape compiles the Vyper contracts before deploying them (about a minute)")
    system = deploy_system(cast.deployer, config or SystemConfig(treasury=cast.treasury.address))
    segments = {label: [m for m, mk in system.markets.items() if mk.segment == i]
                for label, i in system.segments.items()}
    display.ok(f"vault {display.short(system.vault.address)}, engine {display.short(system.engine.address)}; "
               + "; ".join(f"segment '{s}': {', '.join(ms)}" for s, ms in segments.items()))
    return system


def fund_pools(d: Story) -> None:
    display.step("LPs fund the majors and alts insurance pools and the shared backstop (ERC-4626 shares)")
    for label, amount in LP_DEPOSITS.items():
        pool = d.pool(label)
        d.system.token.mint(d.lp, d.usd(amount), sender=d.lp)
        d.system.token.approve(pool, d.usd(amount), sender=d.lp)
        pool.deposit(d.usd(amount), d.lp, sender=d.lp)
    display.show(pools_table(d, "Pools funded"))


def pools_table(d: Story, title: str, before: dict[str, PoolView] | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("pool", "NAV before", "NAV", "assets per share before", "assets per share"):
        if before is not None or "before" not in column:
            table.add_column(column, justify="left" if column == "pool" else "right")
    for label in LP_DEPOSITS:
        now = pool_view(d.pool(label))
        row = [label]
        if before is not None:
            row += [d.fmt(before[label].managed_assets)]
        row += [d.fmt(now.managed_assets)]
        if before is not None:
            row += [f"{before[label].price:.6f}"]
        row += [f"{now.price:.6f}"]
        table.add_row(*row)
    return table


def fund_accounts(d: Story) -> None:
    display.step(f"Traders and makers deposit margin; the keeper deposits {KEEPER_DEPOSIT:,} USDC in EACH segment "
                 "(a liquidation hands it the position, which needs margin)")
    for name, account in d.actors.items():
        fund(d.system, account, d.seg(SEGMENT_OF[name]), d.usd(DEPOSITS[name]))
    for segment in d.system.segments.values():
        fund(d.system, d.keeper, segment, d.usd(KEEPER_DEPOSIT))
    display.ok(", ".join(f"{n} {DEPOSITS[n]:,} ({SEGMENT_OF[n]})" for n in DEPOSITS)
               + f", keeper {KEEPER_DEPOSIT:,} + {KEEPER_DEPOSIT:,}")
    d.keeper_on = True


def open_positions(d: Story) -> None:
    display.step("Makers sign EIP-712 orders, traders fill them on chain: leveraged positions in both segments")
    for maker, taker, label, size, price in BOOK:
        market = d.system.markets[label]
        order = signed_order(d.system, d.actors[maker], market.id, wad(size), wad(price))
        receipt = fill(d.system, order, d.actors[taker])
        side = "sells" if size < 0 else "buys"
        display.note(f"{maker} signs: {side} {abs(size)} {label} at {price:,} (nonce {order.nonce}, sig "
                     f"{order.signature[:4].hex()}…); {taker} fills ({receipt.gas_used:,} gas)")
    for label in d.system.segments:
        d.show_accounts(label, f"Segment '{label}' after the fills")


def gap(d: Story) -> None:
    market = d.system.markets[GAP_MARKET]
    before = int(d.system.oracle.price(market.id))
    d.gap_price = before * (100 - GAP_PCT) // 100
    display.step(f"{GAP_MARKET} gaps down {GAP_PCT}% in ONE oracle update: {display.fmt_wad(before, 2)} -> "
                 f"{display.fmt_wad(d.gap_price, 2)} (segment '{market.spec.segment}' only)")
    d.pools_before = {label: pool_view(d.pool(label)) for label in LP_DEPOSITS}
    d.majors_before = majors_state(d)
    set_price(d.system, GAP_MARKET, d.gap_price, d.deployer)
    d.show_accounts("alts", "Alts at the gap (before any keeper acts)")
    for status in scan(d.system, list(d.in_segment("alts", keeper=False).values()), d.seg("alts")):
        kind = "bankrupt (equity < 0)" if status.bankrupt else "liquidatable, still solvent"
        display.ok(f"{name_of(d, status.owner)}: equity {d.fmt(status.equity)} < MM {d.fmt(status.mm)}: {kind}")


def first_keeper_block(d: Story) -> None:
    display.step("Next block: the keeper takes the bankrupt account at once, at mark (waiting would only grow a "
                 "discount the pool pays), and flags the solvent one")
    next_block(d, 12)
    keeper_block(d)
    if not d.ledger.covers:
        raise BrokenPromise("no Cover: the pool did not pay the bankrupt account's deficit")


def pool_pays(d: Story) -> None:
    display.step("The waterfall: the alts pool pays the deficit, the backstop draws the rest")
    cover = {k: sum(c[k] for c in d.ledger.covers) for k in ("requested", "paid_by_pool", "paid_by_backstop",
                                                           "unpaid")}
    display.ok(f"Cover: requested {d.fmt(cover['requested'])}, paid by the alts pool {d.fmt(cover['paid_by_pool'])},"
               f" by the backstop {d.fmt(cover['paid_by_backstop'])}, unpaid {d.fmt(cover['unpaid'])}")
    deficit = sum(b["deficit"] for b in d.ledger.bad_debt)
    paid = sum(b["paid"] for b in d.ledger.bad_debt)
    display.ok(f"BadDebtCovered: deficit {d.fmt(deficit)}, paid {d.fmt(paid)}")
    display.show(pools_table(d, "Pool NAV around the cover (the majors pool is not touched)", d.pools_before))
    if cover["unpaid"] or paid != deficit:
        raise BrokenPromise("part of the deficit stayed unpaid: the winners would be short-paid")


def auction(d: Story) -> None:
    display.step(f"The Dutch auction on the solvent account: one block every {BLOCK_TIME} s, the discount grows; "
                 f"the keeper takes it at {from_wad(TARGET_DISCOUNT):.0%}")
    market = d.system.markets[GAP_MARKET]
    segment = market.segment
    owners = [a for a in d.in_segment("alts", keeper=False).values() if int(d.system.engine.flagged_at(a, segment))]
    for _ in range(int(d.system.engine.params().auction_duration) // BLOCK_TIME + 1):  # until the auction's end
        if not owners:
            break
        next_block(d, BLOCK_TIME)
        for owner in owners:
            size = abs(int(d.system.vault.position(owner, market.id)[0]))
            clock = int(d.system.engine.auction_discount(owner, segment))
            amount, price, profit, _, fee = d.system.engine.liquidation_quote(owner, market.id, size)
            display.note(f"t+{int(chain.blocks.head.timestamp) - int(d.system.engine.flagged_at(owner, segment))} s "
                         f"{name_of(d, owner)}: clock discount {from_wad(clock) * 100:.2f}%, quote: "
                         f"{display.fmt_wad(amount)} {GAP_MARKET.split('-')[0]} at {display.fmt_wad(price, 4)} (mark "
                         f"{display.fmt_wad(d.gap_price, 2)}), keeper profit {d.fmt(profit)} + fee {d.fmt(fee)}")
        keeper_block(d)
        owners = [o for o in owners if int(d.system.engine.flagged_at(o, segment))]
    d.show_accounts("alts", "Alts after the keeper")


def winners_withdraw(d: Story) -> None:
    display.step("The winners (makers short SOL) buy back from the position holders at mark and withdraw in full")
    market = d.system.markets[GAP_MARKET]
    segment = market.segment
    for name in WINNERS:
        winner = d.actors[name]
        expected = d.usd(DEPOSITS[name]) + close_at_mark(d, winner, market)
        collateral = int(d.system.vault.collateral(winner, segment))
        before = int(d.system.token.balanceOf(winner))
        d.system.vault.withdraw(segment, collateral, sender=winner)
        received = int(d.system.token.balanceOf(winner)) - before
        d.withdrawn[name], d.expected[name] = received, expected
        mark = "[green]==[/]" if received == expected else "[red]!=[/]"
        display.ok(f"{name}: expected {d.fmt(expected)} ({expected} units) {mark} received {d.fmt(received)} "
                   f"({received} units)")
        if received != expected:
            raise BrokenPromise(f"winner {name} short-paid: expected {expected}, received {received}")
    d.show_accounts("alts", "Alts after the winners' exit")


def close_at_mark(d: Story, winner, market) -> int:
    """The winner buys back its short from whoever holds longs (keeper first), each signing a reduce-only
    order at mark. Returns the winner's realized PnL net of its taker fees, computed here from the prices
    (not read back from the vault), so the withdrawal can be checked to the wei."""
    mark = int(d.system.oracle.price(market.id))
    size, entry = (int(x) for x in d.system.vault.position(winner, market.id))
    remaining = -size
    open_notional = abs(entry)  # quote units the short sold for when it opened
    closed_cost = 0
    fees = 0
    bps = d.system.markets[GAP_MARKET].spec.taker_fee_bps
    for holder in [d.keeper, *[a for a in d.in_segment("alts", keeper=False).values() if a != winner]]:
        held = int(d.system.vault.position(holder, market.id)[0])
        take = min(remaining, held) if held > 0 else 0
        if take == 0:
            continue
        order = signed_order(d.system, holder, market.id, -take, mark, reduce_only=True)
        fill(d.system, order, winner)
        cost = notional(take, mark, d.system.decimals)
        closed_cost += cost
        fees += ceil_div(cost * bps, 10_000)  # fees round up, against the payer
        display.note(f"{name_of(d, winner)} buys {display.fmt_wad(take)} {market.label} "
                     f"from {name_of(d, holder)} at mark")
        remaining -= take
        if remaining == 0:
            break
    if remaining:
        raise BrokenPromise(f"{name_of(d, winner)} could not close: {remaining} left")
    return open_notional - closed_cost - fees


def majors_state(d: Story) -> dict[str, Any]:
    segment = d.seg("majors")
    owners = d.in_segment("majors")
    healths = d.system.lens.health_of(list(owners.values()), segment)
    view = pool_view(d.pool("majors"))
    state = {f"{n} equity": int(h.equity) for n, h in zip(owners, healths)}
    state |= {f"{n} collateral": int(h.collateral) for n, h in zip(owners, healths)}
    state |= {"majors pool NAV": view.managed_assets, "majors pool assets/share": view.assets_per_share,
              "majors segment cash": int(d.system.lens.segment_cash(segment)[0])}
    return state


def other_segment_untouched(d: Story) -> None:
    display.step("The other segment (majors) is untouched: same pool NAV, same equity, same cash, to the wei")
    after = majors_state(d)
    table = Table(title="Majors: before the gap vs now", title_justify="left")
    for column in ("", "before the gap", "now", ""):
        table.add_column(column, justify="right" if column else "left")
    for key, value in d.majors_before.items():
        same = "[green]unchanged[/]" if after[key] == value else "[red]CHANGED[/]"
        fmt = d.fmt  # assets per share is quote units per whole share too
        table.add_row(key, fmt(value), fmt(after[key]), same)
    display.show(table)
    changed = [k for k, v in d.majors_before.items() if after[k] != v]
    if changed:
        raise BrokenPromise(f"the crash in alts touched majors: {changed}")


def conservation(d: Story) -> None:
    display.step("Conservation: backstop.sim.model.check_invariants over every account (vault, pools, segments)")
    errors = check_invariants(d.system, d.all_accounts())
    for error in errors:
        display.note(f"[red]{error}[/]")
    if errors:
        raise BrokenPromise(f"{len(errors)} invariant(s) violated")
    display.ok("check_invariants(...) == []: every unit is accounted for, every long has a short, "
               "each segment's cash is its own")


def summary(d: Story) -> None:
    display.step("Summary")
    table = Table(title="The crash, in numbers (USDC)", title_justify="left")
    for column in ("", "majors", "alts"):
        table.add_column(column, justify="left" if not column else "right")
    deposits = {s: sum(DEPOSITS[n] for n in DEPOSITS if SEGMENT_OF[n] == s) for s in d.system.segments}
    table.add_row("trader deposits", *(f"{deposits[s]:,}" for s in d.system.segments))
    table.add_row("trader PnL (incl. fees)", *(display.fmt_signed_quote(trader_pnl(d, s), d.system.decimals)
                                                for s in d.system.segments))
    owners = {x["owner"] for x in d.ledger.liquidations}
    alts = {"liquidations": f"{len(owners)} accounts ({len(d.ledger.liquidations)} calls)",
            "bad debt": d.fmt(sum(b["deficit"] for b in d.ledger.bad_debt)),
            "pool paid": d.fmt(sum(c["paid_by_pool"] for c in d.ledger.covers)),
            "backstop drawn": d.fmt(sum(c["paid_by_backstop"] for c in d.ledger.covers)),
            "ADL": str(d.ledger.adl),
            "keeper earned (discounts + fees)": d.fmt(keeper_earned(d, "alts")),
            "winners paid (expected)": f"{d.fmt(sum(d.withdrawn.values()))} ({d.fmt(sum(d.expected.values()))})"}
    for key, value in alts.items():
        majors = {"liquidations": "0 accounts", "ADL": "0", "winners paid (expected)": "—",
                  "keeper earned (discounts + fees)": d.fmt(keeper_earned(d, "majors"))}.get(key, "0.00")
        table.add_row(key, majors, value)
    navs = {label: f"{d.fmt(d.pools_before[label].managed_assets)} -> {d.fmt(pool_view(d.pool(label)).managed_assets)}"
            for label in LP_DEPOSITS}
    table.add_row("pool NAV before -> after", navs["majors"], navs["alts"])
    table.add_row("backstop NAV before -> after", "shared", navs["backstop"])
    display.show(table)
    plots = [p for p in PLOTS if Path(p).exists()]
    display.note("plots: " + (", ".join(plots) if plots else "none written yet (reports/ has no stress plots)"))


def keeper_earned(d: Story, segment: str) -> int:
    (health,) = d.system.lens.health_of([d.keeper], d.seg(segment))
    return int(health.equity) - d.usd(KEEPER_DEPOSIT)


def trader_pnl(d: Story, segment: str) -> int:
    """Equity now plus what was withdrawn, minus what was deposited, over the segment's traders."""
    names = [n for n in DEPOSITS if SEGMENT_OF[n] == segment]
    healths = d.system.lens.health_of([d.actors[n] for n in names], d.seg(segment))
    return sum(int(h.equity) + d.withdrawn.get(n, 0) - d.usd(DEPOSITS[n]) for n, h in zip(names, healths))


STEPS: list[Callable[[Story], None]] = [
    fund_pools,
    fund_accounts,
    open_positions,
    gap,
    first_keeper_block,
    pool_pays,
    auction,
    winners_withdraw,
    other_segment_untouched,
    conservation,
    summary,
]


def lp_heads_for_exit(d: Story, label: str = "alts", fraction_bps: int = 5000) -> None:
    """After the crash the LP asks to redeem part of its shares in `label`'s pool: the request cools down for the
    pool's cooldown, then is redeemable during its window (the dashboard's redemption queue)."""
    pool = d.pool(label)
    shares = int(pool.balanceOf(d.lp)) * fraction_bps // 10_000
    display.step(f"The LP asks to redeem {fraction_bps / 100:.0f}% of its {label} pool shares "
                 "(a cooldown, then a window)")
    receipt = pool.request_redeem(shares, sender=d.lp)
    (log,) = [x for x in receipt.decode_logs() if x.event_name == "RedeemRequested"]
    d.redeem_requests[label] = shares
    display.ok(f"{shares:,} shares requested: redeemable from {int(log.unlock_at)} until {int(log.expires_at)} "
               f"(unix seconds)")


EPILOGUE: list[Callable[[Story], None]] = [lp_heads_for_exit]


# ---------------------------------------------------------------- one backstop, two protocols (make demo only)

# protocol B: a second vault deployment whose pools join the story's backstop (docs/pools.md §3)
B_LP_DEPOSITS = {"majors": 10_000, "alts": 2_000}
B_BOOK = ("mia", "ann", "SOL-PERP", -400, 150)  # in B: ann long 400 SOL on B_DEPOSIT, mia short
B_DEPOSIT = 10_000


def protocol_state(system: System, owners: Sequence[Any]) -> dict[str, Any]:
    """What a crash elsewhere must not move: every segment pool's managed assets, supply and exit price, every
    segment's cash, every owner's equity per segment."""
    state: dict[str, Any] = {}
    for label, pool in system.pools.items():
        state[f"pool {label}"] = (int(pool.managed_assets()), int(pool.totalSupply()), int(pool.totalAssets()))
    for label, segment in system.segments.items():
        state[f"cash {label}"] = tuple(int(x) for x in system.lens.segment_cash(segment))
        for owner, health in zip(owners, system.lens.health_of(list(owners), segment)):
            state[f"equity {label} {owner}"] = int(health.equity)
    return state


def second_protocol(d: Story) -> None:
    """A second protocol (its own vault, engine, oracle and pools) joins the story's backstop as a member; a 40% SOL
    gap in it is paid by its own alts pool, then by the shared backstop within its member cap, and protocol A is
    untouched to the wei."""
    display.step("A second protocol (its own vault, engine, oracle and pools) joins the SAME backstop as a member")
    a = d.system
    b = deploy_system(d.deployer, SystemConfig(treasury=d.treasury.address), backstop=a.backstop)
    members = {label: int(a.backstop.member_cap_bps(pool)) for label, pool in b.pools.items()}
    display.ok(f"protocol B: vault {display.short(b.vault.address)}; its pools are members with caps "
               + ", ".join(f"{label} {bps / 100:.0f}%" for label, bps in members.items())
               + " of the backstop per day (global cap 50% for all members)")
    for label, amount in B_LP_DEPOSITS.items():
        b.token.mint(d.lp, d.usd(amount), sender=d.lp)
        b.token.approve(b.pools[label], d.usd(amount), sender=d.lp)
        b.pools[label].deposit(d.usd(amount), d.lp, sender=d.lp)
    maker, taker, label, size, price = B_BOOK
    alts = b.segments["alts"]
    for account in (d.actors[maker], d.actors[taker], d.keeper):
        fund(b, account, alts, d.usd(B_DEPOSIT))
    market = b.markets[label]
    fill(b, signed_order(b, d.actors[maker], market.id, wad(size), wad(price)), d.actors[taker])
    owners = [d.keeper, *d.actors.values()]
    a_before = protocol_state(a, owners)
    backstop_before = int(a.backstop.managed_assets())
    gap_price = int(b.oracle.price(market.id)) * (100 - GAP_PCT) // 100
    display.step(f"{label} gaps {GAP_PCT}% in protocol B only: {taker} (long {abs(size)} on {B_DEPOSIT:,}) is bankrupt")
    set_price(b, label, gap_price, d.deployer)
    next_block(d, 12)
    report = liquidate_all(b, d.keeper, [d.actors[taker]], alts, adl_pool=[d.actors[maker]])
    draws = [dict(log.event_arguments) for action in report.actions if action.receipt is not None
             for log in action.receipt.decode_logs(a.backstop.Draw)]
    covers = [dict(log.event_arguments) for action in report.actions if action.receipt is not None
              for log in action.receipt.decode_logs(b.pools["alts"].Cover)]
    if not covers or not draws or any(x["member"] != b.pools["alts"].address for x in draws):
        raise BrokenPromise("protocol B's deficit was not covered by its pool and then by the shared backstop")
    drawn = sum(int(x["paid"]) for x in draws)
    display.ok(f"B's alts pool paid {d.fmt(sum(int(c['paid_by_pool']) for c in covers))}, the shared backstop "
               f"drew {d.fmt(drawn)} for B's alts pool (member {display.short(b.pools['alts'].address)}); "
               f"backstop NAV {d.fmt(backstop_before)} -> {d.fmt(int(a.backstop.managed_assets()))}")
    changed = [k for k, v in protocol_state(a, owners).items() if a_before[k] != v]
    if changed:
        raise BrokenPromise(f"the crash in protocol B touched protocol A: {changed}")
    holders = {a.vault, b.vault, a.backstop, *a.pools.values(), *b.pools.values(), d.treasury, d.lp, *owners}
    if a.liquidator is not None:
        holders.add(a.liquidator)
    held = sum(int(a.token.balanceOf(h)) for h in {x.address for x in holders})
    if held != int(a.token.totalSupply()):
        raise BrokenPromise(f"conservation across both protocols: held {held} != minted {int(a.token.totalSupply())}")
    display.ok(f"protocol A untouched, to the wei: {len(a_before)} figures (pool NAVs, supplies, exit prices, "
               "segment cash, every account's equity); every minted token is held by someone, across both protocols")


NETWORK: list[Callable[[Story], None]] = [second_protocol]


def run(story: Story, steps: Sequence[Callable[[Story], None]] = STEPS) -> Story:
    """Run `steps` in order. The keeper runs after every step too (nothing to do unless something broke), except
    after the gap (the next step is the keeper's first block, narrated on its own) and after the last step."""
    steps = list(steps)
    for run_step in steps:
        run_step(story)
        if story.keeper_on and run_step not in (gap, steps[-1]):
            keeper_block(story)
    return story
