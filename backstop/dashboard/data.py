"""The dashboard's data layer: pure reads of the chain into frozen dataclasses (no Dash, no layout).

Everything here only reads: contract views (at the latest block, or at a past block for the history) and event
logs. `read_segment(system, label, ...)` gathers one segment pool's figures in one `SegmentSnapshot`; the layout
(backstop.dashboard.app) only formats what it returns. What each figure means and how it is computed:
docs/dashboard.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable

from ape import chain
from eth_utils import is_address, to_checksum_address

from backstop.client.deploy import System
from backstop.client.pools import PoolView, pool_view, trailing_apy
from backstop.keeper import LENS_BATCH, AccountStatus, depositors, health
from backstop.risk.report import load_targets

APY_WINDOW = 7 * 86400  # trailing APY over the last 7 days (or the pool's whole life if shorter)
MIN_APY_WINDOW = 86400  # below a day of history a return is shown as such, not annualized
NEAREST = 10  # accounts shown in "nearest liquidation"
PLOT_NAMES = ("stress_nav.png", "stress_heatmap.png", "size_loss.png")  # what the simulator and `make size` write


# ---------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class Head:
    number: int
    hash: str
    timestamp: int


@dataclass(frozen=True)
class NavPoint:
    block: int
    timestamp: int
    nav: int  # managed_assets: quote units, incl. income still vesting
    assets_per_share: int  # quote units per 10**share_decimals shares (vested assets only)


@dataclass(frozen=True)
class Apy:
    value: float | None  # annualized, compounded; None when the window is shorter than MIN_APY_WINDOW
    period_return: float  # aps_end / aps_start - 1 over the window
    window: int  # seconds actually covered


@dataclass(frozen=True)
class Redemption:
    owner: str
    shares: int
    assets: int  # convertToAssets(shares) now
    unlock_at: int
    expires_at: int
    redeemable: int  # maxRedeem now (0 outside the window)
    state: str  # "cooling" | "open" | "expired"


@dataclass(frozen=True)
class Coverage:
    sized: bool  # reports/size.json has this segment
    target: int | None  # recommended target_size from `make size` (quote units of this system)
    stressed_loss: int | None  # ES 99.9% of a year's losses from `make size`
    ratio: Decimal | None  # pool NAV / target
    reach_ratio: Decimal | None  # (pool + backstop reach) / stressed loss
    onchain_target: int  # the pool's own target_size (set at deploy with --targets)
    source: str | None  # the size.json read


@dataclass(frozen=True)
class Headroom:
    backstop_capacity: int  # BackstopPool.draw_capacity(pool): what the segment's pool could still draw now
    window_start: int
    window_cap: int  # draw_state(pool): cap of the stored window
    window_drawn: int
    global_cap: int
    global_drawn: int
    cover_reach: int  # InsurancePool.cover_reach(): pool assets + backstop capacity
    uncovered: int  # sum of negative equity in the segment (what the pools would have to pay now)

    @property
    def adl_distance(self) -> int:
        """cover_reach minus the deficits open now: below zero, the pools cannot pay and ADL starts."""
        return self.cover_reach - self.uncovered


@dataclass(frozen=True)
class WaterfallEvent:
    block: int
    timestamp: int
    log_index: int
    tx: str
    contract: str  # "InsurancePool" | "BackstopPool" | "LiquidationEngine" | "MarginVault"
    kind: str  # the event name
    account: str | None
    fields: dict[str, Any]


@dataclass(frozen=True)
class Losses:
    """Where the segment's bad debt went, summed over its waterfall events: nothing is haircut silently."""

    requested: int  # Cover.requested: deficits the pool was asked to pay
    paid_by_pool: int  # Cover.paid_by_pool
    paid_by_backstop: int  # Cover.paid_by_backstop (the pool's Draw on the backstop)
    unpaid: int  # BadDebtCovered.unpaid: what the pool and the backstop could not pay (left to ADL)
    socialized: int  # Deleveraged.socialized_loss: what ADL took from the winners' profits
    deleveraged: int  # number of Deleveraged events


def losses(events: Iterable["WaterfallEvent"]) -> Losses:
    events = list(events)

    def total(kind: str, key: str) -> int:
        return sum(int(e.fields[key]) for e in events if e.kind == kind)

    return Losses(total("Cover", "requested"), total("Cover", "paid_by_pool"), total("Cover", "paid_by_backstop"),
                  total("BadDebtCovered", "unpaid"), total("Deleveraged", "socialized_loss"),
                  sum(e.kind == "Deleveraged" for e in events))


@dataclass(frozen=True)
class SegmentSnapshot:
    label: str
    segment: int
    decimals: int
    head: Head
    pool: PoolView  # with the LP's shares and request when `lp` was given
    backstop_lp: PoolView | None  # the LP's position in the shared backstop (when `lp` was given)
    apy: Apy
    history: list[NavPoint]
    redemptions: list[Redemption]
    coverage: Coverage
    headroom: Headroom
    nearest: list[AccountStatus]  # accounts with positions, lowest equity / MM first
    events: list[WaterfallEvent]  # newest first

    @property
    def pending_shares(self) -> int:
        return sum(r.shares for r in self.redemptions if r.state != "expired")

    @property
    def pending_assets(self) -> int:
        return sum(r.assets for r in self.redemptions if r.state != "expired")

    @property
    def losses(self) -> Losses:
        return losses(self.events)


@dataclass
class Cache:
    """Reads that never change once their block is final: keyed by block hash (a chain revert in a test, or a
    reorg, gives the same number another hash)."""

    nav: dict[tuple[str, str], NavPoint] = field(default_factory=dict)
    timestamps: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------- readers


def head() -> Head:
    block = chain.blocks.head
    return Head(int(block.number), _hex(block.hash), int(block.timestamp))


def parse_address(text: str | None) -> str | None:
    """A checksummed address, or None for an empty input; ValueError for anything else."""
    text = (text or "").strip()
    if not text:
        return None
    if not is_address(text):
        raise ValueError(f"not an address: {text!r} (expected 0x followed by 40 hexadecimal digits)")
    return to_checksum_address(text)


def pool_blocks(pool, start_block: int = 0, stop_block: int | None = None) -> list[int]:
    """Blocks in which `pool` emitted any event (its constructor's role grants included), ascending."""
    stop = chain.blocks.head.number if stop_block is None else stop_block
    logs = chain.provider.web3.eth.get_logs({"address": pool.address, "fromBlock": start_block, "toBlock": stop})
    return sorted({int(log["blockNumber"]) for log in logs})


def nav_history(pool, start_block: int = 0, cache: Cache | None = None) -> list[NavPoint]:
    """NAV (managed_assets) and assets per share after every block in which the pool emitted an event (deposits,
    covers, income, redeems), plus the head: the series only changes at those blocks."""
    cache = cache if cache is not None else Cache()
    now = chain.blocks.head
    numbers = pool_blocks(pool, start_block, int(now.number))
    if not numbers or numbers[-1] != int(now.number):
        numbers.append(int(now.number))
    points = []
    for number in numbers:
        block = now if number == int(now.number) else chain.blocks[number]
        key = (pool.address, _hex(block.hash))
        point = cache.nav.get(key)
        if point is None:
            point = NavPoint(number, int(block.timestamp), int(pool.managed_assets(block_id=number)),
                             int(pool.assets_per_share(block_id=number)))
            cache.nav[key] = point
        points.append(point)
    return points


def pool_apy(pool, history: list[NavPoint], window: int = APY_WINDOW) -> Apy:
    """backstop.client.pools.trailing_apy over the last `window` seconds, never reaching before the pool existed
    (its first event); a period return only when less than MIN_APY_WINDOW of history is available."""
    if not history:
        return Apy(None, 0.0, 0)
    end = history[-1]
    start = next((p for p in reversed(history) if p.timestamp <= end.timestamp - window), history[0])
    if start.timestamp <= end.timestamp - window:  # history reaches the whole window: let trailing_apy find it
        value = trailing_apy(pool, seconds=window, to_block=end.block)
        elapsed = window
    else:
        elapsed = end.timestamp - start.timestamp
        value = trailing_apy(pool, blocks=end.block - start.block, to_block=end.block) if elapsed > 0 else 0.0
    aps0 = _aps_at_or_before(history, end.timestamp - elapsed)
    period = float(Decimal(end.assets_per_share) / Decimal(aps0) - 1) if aps0 else 0.0
    return Apy(value if elapsed >= MIN_APY_WINDOW else None, period, elapsed)


def _aps_at_or_before(history: list[NavPoint], timestamp: int) -> int:
    found = history[0].assets_per_share
    for point in history:
        if point.timestamp <= timestamp:
            found = point.assets_per_share
    return found


def redemption_queue(pool, start_block: int = 0) -> list[Redemption]:
    """Every owner that ever asked to redeem (RedeemRequested), read back with pending_request: the requests still
    standing (cancelled or redeemed ones read as zero shares and are left out), soonest unlock first."""
    owners = {str(log.owner) for log in pool.RedeemRequested.range(start_block, chain.blocks.head.number + 1)}
    now = int(chain.blocks.head.timestamp)
    queue = []
    for owner in owners:
        shares, unlock_at, expires_at = (int(x) for x in pool.pending_request(owner))
        if shares == 0:
            continue
        state = "cooling" if now < unlock_at else "open" if now <= expires_at else "expired"
        queue.append(Redemption(owner, shares, int(pool.convertToAssets(shares)), unlock_at, expires_at,
                                int(pool.maxRedeem(owner)), state))
    return sorted(queue, key=lambda r: (r.unlock_at, r.owner))


def load_sizing(path: str | Path | None) -> dict[str, dict[str, int]] | None:
    """reports/size.json from `make size`: {segment: {"target_size", "es_999", "quote_decimals"}}, None if absent.
    Targets are read with backstop.risk.report.load_targets (the reader the deploy uses)."""
    if path is None or not Path(path).exists():
        return None
    targets = load_targets(path)
    raw = json.loads(Path(path).read_text())["segments"]
    return {label: {"target_size": targets[label], "es_999": int(raw[label]["es_999"]),
                    "quote_decimals": int(raw[label].get("quote_decimals", 6))} for label in targets}


def coverage(label: str, nav: int, cover_reach: int, decimals: int, onchain_target: int,
             sizing: dict[str, dict[str, int]] | None, source: str | None = None) -> Coverage:
    """NAV against the recommended target and the pools' reach against the stressed 99.9% loss, both from `make
    size` (rescaled when size.json was written for another number of quote decimals)."""
    entry = (sizing or {}).get(label)
    if entry is None:
        return Coverage(False, None, None, None, None, onchain_target, source)
    scale = Decimal(10) ** (decimals - entry["quote_decimals"])
    target = int(Decimal(entry["target_size"]) * scale)
    stressed = int(Decimal(entry["es_999"]) * scale)
    return Coverage(True, target, stressed, Decimal(nav) / Decimal(target) if target else None,
                    Decimal(cover_reach) / Decimal(stressed) if stressed else None, onchain_target, source)


def segment_accounts(system: System, segment: int, start_block: int = 0) -> list[str]:
    """Every account that deposited in `segment` (Deposit) or was handed a position there (PositionTransferred)."""
    owners = set(depositors(system, start_block).get(segment, set()))
    markets = {m.id for m in system.markets.values() if m.segment == segment}
    for log in system.vault.PositionTransferred.range(start_block, chain.blocks.head.number + 1):
        if int(log.market) in markets:
            owners.add(str(log.receiver))
    return sorted(owners)


def account_risks(system: System, segment: int, owners: Iterable[str]) -> list[AccountStatus]:
    """The keeper's AccountStatus of every owner, in batches of what VaultLens.health_of takes."""
    owners = list(owners)
    return [s for i in range(0, len(owners), LENS_BATCH) for s in health(system, owners[i:i + LENS_BATCH], segment)]


def health_ratio(status: AccountStatus) -> Decimal | None:
    """equity / MM, exact: below 1 the account is liquidatable, below 0 it is bankrupt. None without positions."""
    return Decimal(status.equity) / Decimal(status.mm) if status.mm else None


def nearest_liquidation(risks: Iterable[AccountStatus], n: int = NEAREST) -> list[AccountStatus]:
    """Accounts with positions (MM > 0), lowest equity / MM first."""
    return sorted((r for r in risks if r.mm > 0), key=lambda r: (health_ratio(r), r.owner))[:n]


def headroom(system: System, segment: int, pool, risks: Iterable[AccountStatus]) -> Headroom:
    start, cap, drawn = (int(x) for x in system.backstop.draw_state(pool.address))
    _, global_cap, global_drawn = (int(x) for x in system.backstop.global_draw_state())
    uncovered = sum(-r.equity for r in risks if r.equity < 0)
    return Headroom(int(system.backstop.draw_capacity(pool.address)), start, cap, drawn, global_cap, global_drawn,
                    int(pool.cover_reach()), uncovered)


def waterfall_events(system: System, segment: int, start_block: int = 0, cache: Cache | None = None
                     ) -> list[WaterfallEvent]:
    """The segment's loss waterfall, newest first: Cover (its pool), Draw (the backstop, this segment),
    Liquidated, TakenOver and Deleveraged (the engine, this segment's markets), BadDebtSettled (engine), BadDebtCovered and
    WithdrawalsGated (vault)."""
    cache = cache if cache is not None else Cache()
    stop = chain.blocks.head.number + 1
    label = next(k for k, v in system.segments.items() if v == segment)
    pool = system.pools[label]
    markets = {m.id for m in system.markets.values() if m.segment == segment}
    sources = [
        ("InsurancePool", pool.Cover.range(start_block, stop), None),
        ("BackstopPool", system.backstop.Draw.range(start_block, stop, search_topics={"member": pool.address}), None),
        ("LiquidationEngine", system.engine.Liquidated.range(start_block, stop), "market"),
        ("LiquidationEngine", system.engine.Deleveraged.range(start_block, stop), "market"),
        ("LiquidationEngine", system.engine.TakenOver.range(start_block, stop), "market"),
        ("LiquidationEngine", system.engine.BadDebtSettled.range(start_block, stop,
                                                                  search_topics={"segment": segment}), None),
        ("MarginVault", system.vault.BadDebtCovered.range(start_block, stop, search_topics={"segment": segment}),
         None),
        ("MarginVault", system.vault.WithdrawalsGated.range(start_block, stop, search_topics={"segment": segment}),
         None),
    ]
    events = []
    for contract, logs, by_market in sources:
        for log in logs:
            fields = {k: _plain(v) for k, v in dict(log.event_arguments).items()}
            if by_market and int(fields[by_market]) not in markets:
                continue
            block_hash = _hex(log.block_hash)
            if block_hash not in cache.timestamps:
                cache.timestamps[block_hash] = int(chain.blocks[int(log.block_number)].timestamp)
            events.append(WaterfallEvent(int(log.block_number), cache.timestamps[block_hash], int(log.log_index),
                                         _hex(log.transaction_hash), contract, log.event_name,
                                         fields.get("owner") or fields.get("recipient"), fields))
    return sorted(events, key=lambda e: (e.block, e.log_index), reverse=True)


def read_segment(system: System, label: str, lp: str | None = None, sizing: dict | None = None,
                 sizing_source: str | None = None, start_block: int = 0, cache: Cache | None = None
                 ) -> SegmentSnapshot:
    """Everything the dashboard shows for one segment pool (and optionally one LP), at the head."""
    cache = cache if cache is not None else Cache()
    segment = system.segments[label]
    pool = system.pools[label]
    decimals = system.decimals
    now = head()
    view = pool_view(pool, lp)
    history = nav_history(pool, start_block, cache)
    risks = account_risks(system, segment, segment_accounts(system, segment, start_block))
    room = headroom(system, segment, pool, risks)
    return SegmentSnapshot(
        label=label, segment=segment, decimals=decimals, head=now, pool=view,
        backstop_lp=pool_view(system.backstop, lp) if lp else None,
        apy=pool_apy(pool, history),
        history=history,
        redemptions=redemption_queue(pool, start_block),
        coverage=coverage(label, view.managed_assets, room.cover_reach, decimals, int(pool.target_size()), sizing,
                          sizing_source),
        headroom=room,
        nearest=nearest_liquidation(risks),
        events=waterfall_events(system, segment, start_block, cache),
    )


def plots(reports_dir: str | Path) -> list[str]:
    """File names of the simulator's and `make size`'s PNGs present in `reports_dir`."""
    return [name for name in PLOT_NAMES if (Path(reports_dir) / name).is_file()]


def _hex(value: Any) -> str:
    return value.hex() if isinstance(value, (bytes, bytearray)) else str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    return str(value) if not isinstance(value, (bool, list, tuple, dict)) else value
