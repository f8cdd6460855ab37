"""Reference model and invariant checker of the whole system (docs/design.md, "Invariants").

Two layers, both reading the chain through ONE JSON-RPC batch of `eth_call`s per check (no ape
per-call overhead; calldata is precomputed once):

* `check_invariants(system, actors, segments, markets) -> list[str]` — the stateless checks any
  test can call at any time (empty list = OK):
    (1) conservation to the wei: quote.balanceOf(vault) == Σ collateral + Σ accrued fees
        + Σ accrued penalties − Σ entry notional (MarginVault docstring), and every minted token
        is somewhere: vault + pools + backstop + engine + treasury + actors == totalSupply;
    (2) Σ position sizes per market == 0 and open_interest == Σ positive sizes;
    pool sanity: totalAssets <= managed assets <= token balance, Σ holder shares <= supply,
    maxRedeem == 0 outside a request's [unlock, expires] window (invariant 8).
  Accounts/markets not listed in `actors`/`markets` are not seen: list every account that
  ever touched the vault (conservation sums over them).

* `Tracker` — the stateful layer a fuzzer drives: it mirrors collateral, positions, entry
  notional, accrued fees/penalties and pool managed assets from the events of every
  transaction (MarginVault._trade's rounding, backstop.core.margin.apply_trade), and after
  every step checks the mirror against the chain to the wei plus the step-wise invariants:
    (3) fees are rounded up (fee == ceil(cost × bps / 10⁴)); the mirrored realized PnL equals
        the event's; mirror == chain (no unit created anywhere);
    (4) a liquidation/flag only succeeds on an account with equity < MM (read before the step);
        a partial liquidation never lowers equity/MM by more than the keeper fee it pays
        (Liquidated.keeper_fee): (eq2 + keeper_fee) × mm >= eq × mm2; (4b) the same for a
        full-close liquidation that leaves the account open;
    (6) a pool's assets per share only fall in a step whose transactions emit Cover (pools) /
        Draw (backstop) from that pool;
    (7) no free shares: every 4626 deposit mints ≤ assets × (S+V)/(T+1) and every redeem pays
        ≤ shares × (T+1)/(S+V) at the tx's own price; a depositor loses at most one share's
        worth (inflation attack);
    (8) a redeem/withdraw only succeeds inside its request's window;
    (9) a Cover from a segment pool (and a backstop Draw for a segment) only happens in a
        transaction whose BadDebtCovered is for that pool's segment; pool balances move only
        through their own events (exact managed-assets mirror);
    (11) liveness: every bankrupt account (equity < 0 with positions, or flat with negative
        collateral) has a permitted permissionless call that reduces its open notional or its
        unpaid deficit — eth_call simulations (from a funded keeper, one batch) of liquidate
        (full size and a tenth) per held market, deleverage against every opposite position,
        and for a flat account settle_bad_debt (must pay something) and the residual
        deleverage against every position of the segment. Dead states that are not
        violations: (a) flat, the pool's cover_reach (max_cover on older pools) is 0 and no
        actor has a profitable position with equity > 2 in the segment; (b) no held market
        has a fresh price; (c) the engine is paused (the vault's pause is reduce-only: liquidation goes on);
    (12) no contagion: per segment, segment_cash == Σ collateral + Σ accrued fees and
        penalties of its markets − Σ entry notional of its positions, to the wei, and
        Σ segment cash == the vault's token balance (less what was donated to it directly);
        a deleverage transaction never takes anyone but the deleveraged account from
        equity >= 0 to < 0 (the tx's meta names owner, segment and counterparty).
    (13) funding: a market's funding index moves only in a block with a Fill in that market,
        and then to the index every Fill of the block reports (accrued at most once per
        block); its premium never leaves the market's price band (fills are inside it);
        positions join the reported index (the mirror applies it, so (3) checks it to the wei).
    Views: health_of never reverts (a market without a fresh price is valued at
    OracleAdapter.price_range, against the account); `State.stale` = segments where some
    actor holds a market whose oracle.price reverts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from eth_abi import decode, encode
from eth_utils import to_checksum_address

# module-local short names of the ABI word helpers (one copy, in backstop.core.abi)
from backstop.core.abi import address_of as _addr, selector, topic, word_int as _i, word_uint as _u
from backstop.core.funding import funding_adjustment
from backstop.core.margin import apply_trade, fee_of, scale_of, trade_cost, upnl_at_mark
from backstop.core.units import BPS, VIRTUAL_SHARES, WAD, mul_div

# JSON-RPC batches live in the client layer (the keeper uses them too); re-exported here for the fuzzers
from backstop.client.rpc import Rpc, RpcError  # noqa: E402,F401


# ---------------------------------------------------------------- chain state


@dataclass
class State:
    block: int = 0
    timestamp: int = 0
    coll: dict = field(default_factory=dict)  # (owner, segment) -> collateral
    health: dict = field(default_factory=dict)  # (owner, segment) -> (coll, equity, im, mm, notional)
    stale: set = field(default_factory=set)  # segments with a position on a market without a fresh price
    price: dict = field(default_factory=dict)  # market -> oracle.price (None: stale / bad answer)
    cash: dict = field(default_factory=dict)  # segment -> (segment_cash, withdrawals gated until)
    cover_reach: dict = field(default_factory=dict)  # segment -> what its pool (+ backstop) can pay now
    max_cover: dict = field(default_factory=dict)  # segment -> what a cover could pay in this block
    paused: dict = field(default_factory=dict)  # "vault" / "engine" -> bool
    view_errors: list = field(default_factory=list)  # views that must not revert but did
    pos: dict = field(default_factory=dict)  # (owner, market) -> (size, entry)
    oi: dict = field(default_factory=dict)
    fees: dict = field(default_factory=dict)
    pens: dict = field(default_factory=dict)
    bal: dict = field(default_factory=dict)  # token holder -> balance
    supply: int = 0
    flagged: dict = field(default_factory=dict)  # (owner, segment) -> flagged_at
    pool: dict = field(default_factory=dict)  # pool address -> dict(total, supply, aps, managed)
    shares: dict = field(default_factory=dict)  # (pool, holder) -> balance
    request: dict = field(default_factory=dict)  # (pool, holder) -> (shares, unlock, expires)
    max_redeem: dict = field(default_factory=dict)  # (pool, holder) -> maxRedeem
    funding: dict = field(default_factory=dict)  # market -> (index, premium, last fill time)
    deployed: int = 0  # backstop margin lent to its liquidator of last resort (in managed assets, not in its balance)

    def value(self, pool: str, holder: str) -> int:
        """convertToAssets(balanceOf(holder)) — pool_shares._to_assets, rounded down."""
        p = self.pool[pool]
        return mul_div(self.shares[(pool, holder)], p["total"] + 1, p["supply"] + VIRTUAL_SHARES, False)


class Reader:
    """Reads everything the invariants need in one batch of eth_calls (calldata precomputed)."""

    def __init__(self, rpc: Rpc, system, actors: Iterable[Any], segments: dict | None = None,
                 markets: dict | None = None, pool_holders: Iterable[Any] | None = None):
        self.rpc = rpc
        self.system = system
        self.actors = [_addr(a) for a in actors]
        # the backstop's liquidator of last resort holds a margin account like any actor (docs/pools.md)
        liquidator = getattr(system, "liquidator", None)
        self.liquidator = _addr(liquidator) if liquidator is not None else None
        if self.liquidator is not None and self.liquidator not in self.actors:
            self.actors.append(self.liquidator)
        self.segments = dict(segments if segments is not None else system.segments)
        self.markets = dict(markets if markets is not None else system.markets)
        self.market_ids = sorted(m.id for m in self.markets.values())
        self.vault = _addr(system.vault)
        self.lens = _addr(system.lens)
        self.engine = _addr(system.engine)
        self.token = _addr(system.token)
        self.oracle = _addr(system.oracle)
        self.market_segment = {m.id: m.segment for m in self.markets.values()}
        self.backstop = _addr(system.backstop)
        self.pools = {label: _addr(p) for label, p in system.pools.items()}
        self.pool_segment = {addr: self.segments[label] for label, addr in self.pools.items() if label in self.segments}
        self.all_pools = list(self.pools.values()) + [self.backstop]
        self.treasury = _addr(system.treasury)
        self.holders = list(dict.fromkeys(
            [self.vault, self.engine, *self.all_pools, self.treasury, *self.actors]))
        self.pool_holders = [_addr(a) for a in (pool_holders if pool_holders is not None else actors)]
        self._build()

    def _call(self, key, to: str, data: bytes, kind: str):
        self.queries.append((key, kind, {"to": to, "data": "0x" + data.hex()}))

    def _build(self):
        self.queries = []
        health_sel = selector("health_of(address[],uint256)")
        for seg in self.segments.values():
            self._call(("health", seg), self.lens, health_sel + encode(["address[]", "uint256"], [self.actors, seg]), "health")
        pos_sel = selector("position(address,uint256)")
        flag_sel = selector("flagged_at(address,uint256)")
        coll_sel = selector("collateral(address,uint256)")
        for a in self.actors:
            for seg in self.segments.values():
                self._call(("coll", a, seg), self.vault, coll_sel + encode(["address", "uint256"], [a, seg]), "i")
            for m in self.market_ids:
                self._call(("pos", a, m), self.vault, pos_sel + encode(["address", "uint256"], [a, m]), "ii")
            for seg in self.segments.values():
                self._call(("flagged", a, seg), self.engine, flag_sel + encode(["address", "uint256"], [a, seg]), "u")
        for name in ("open_interest", "accrued_fees", "accrued_penalties"):
            s = selector(f"{name}(uint256)")
            for m in self.market_ids:
                self._call((name, m), self.lens, s + encode(["uint256"], [m]), "u")
        funding_sel = selector("funding(uint256)")
        for m in self.market_ids:
            self._call(("funding", m), self.lens, funding_sel + encode(["uint256"], [m]), "iiu")
        price_sel = selector("price(uint256)")
        for m in self.market_ids:
            self._call(("price", m), self.oracle, price_sel + encode(["uint256"], [m]), "u?")
        cash_sel = selector("segment_cash(uint256)")
        for seg in self.segments.values():
            self._call(("cash", seg), self.lens, cash_sel + encode(["uint256"], [seg]), "uu")
        for label, p in self.pools.items():
            if label in self.segments:
                # cover_reach() when the pools have it (newer pools), else max_cover()
                self._call(("reach", self.segments[label]), p, selector("cover_reach()"), "u?")
                self._call(("max_cover", self.segments[label]), p, selector("max_cover()"), "u")
        self._call(("paused", "vault"), self.vault, selector("paused()"), "u")
        self._call(("paused", "engine"), self.engine, selector("paused()"), "u")
        bal_sel = selector("balanceOf(address)")
        for h in self.holders:
            self._call(("bal", h), self.token, bal_sel + encode(["address"], [h]), "u")
        self._call(("supply",), self.token, selector("totalSupply()"), "u")
        self._call(("deployed",), self.backstop, selector("deployed()"), "u")
        for p in self.all_pools:
            for name in ("totalAssets", "totalSupply", "assets_per_share", "managed_assets"):
                self._call((name, p), p, selector(f"{name}()"), "u")
            for h in self.pool_holders:
                self._call(("shares", p, h), p, bal_sel + encode(["address"], [h]), "u")
                self._call(("request", p, h), p, selector("pending_request(address)") + encode(["address"], [h]), "uuu")
                self._call(("maxRedeem", p, h), p, selector("maxRedeem(address)") + encode(["address"], [h]), "u")

    def read(self, block: int | None = None, prefix: Sequence[tuple[str, list]] = ()) -> tuple[State, list]:
        """Read the state (at `block`, default latest) plus `prefix` requests in the same batch."""
        tag = "latest" if block is None else hex(block)
        reqs = list(prefix) + [("eth_getBlockByNumber", [tag, False])]
        reqs += [("eth_call", [q[2], tag]) for q in self.queries]
        results = self.rpc.batch(reqs)
        pre = results[: len(prefix)]
        blk = results[len(prefix)]
        out = results[len(prefix) + 1:]
        st = State(block=int(blk["number"], 16), timestamp=int(blk["timestamp"], 16))
        pool_fields = {"totalAssets": "total", "totalSupply": "supply", "assets_per_share": "aps", "managed_assets": "managed"}
        for (key, kind, _), res in zip(self.queries, out):
            name = key[0]
            if isinstance(res, RpcError):
                if kind == "u?":  # oracle.price of a stale / bad feed; cover_reach of older pools
                    if name == "price":
                        st.price[key[1]] = None
                    continue
                if name == "health":  # views value a bad feed at OracleAdapter.price_range: never revert
                    st.view_errors.append(f"(views) health_of segment {key[1]} reverted: {str(res)[:160]}")
                    continue
                raise AssertionError(f"view reverted: {key}: {res}")
            raw = bytes.fromhex(res[2:])
            if name == "coll":
                st.coll[(key[1], key[2])] = _i(raw)
            elif kind == "health":
                (rows,) = decode(["(int256,int256,uint256,uint256,uint256)[]"], raw)
                for a, row in zip(self.actors, rows):
                    st.health[(a, key[1])] = tuple(row)
            elif name == "pos":
                st.pos[(key[1], key[2])] = (_i(raw[:32]), _i(raw[32:64]))
            elif name == "flagged":
                st.flagged[(key[1], key[2])] = _u(raw)
            elif name == "funding":
                st.funding[key[1]] = (_i(raw[:32]), _i(raw[32:64]), _u(raw[64:96]))
            elif name == "price":
                st.price[key[1]] = _u(raw)
            elif name == "cash":
                st.cash[key[1]] = (_u(raw[:32]), _u(raw[32:64]))
            elif name == "reach":
                st.cover_reach[key[1]] = _u(raw)
            elif name == "max_cover":
                st.cover_reach.setdefault(key[1], _u(raw))
                st.max_cover[key[1]] = _u(raw)
            elif name == "paused":
                st.paused[key[1]] = _u(raw) != 0
            elif name == "open_interest":
                st.oi[key[1]] = _u(raw)
            elif name == "accrued_fees":
                st.fees[key[1]] = _u(raw)
            elif name == "accrued_penalties":
                st.pens[key[1]] = _u(raw)
            elif name == "bal":
                st.bal[key[1]] = _u(raw)
            elif name == "supply":
                st.supply = _u(raw)
            elif name == "deployed":
                st.deployed = _u(raw)
            elif name in pool_fields:
                st.pool.setdefault(key[1], {})[pool_fields[name]] = _u(raw)
            elif name == "shares":
                st.shares[(key[1], key[2])] = _u(raw)
            elif name == "request":
                st.request[(key[1], key[2])] = (_u(raw[:32]), _u(raw[32:64]), _u(raw[64:96]))
            elif name == "maxRedeem":
                st.max_redeem[(key[1], key[2])] = _u(raw)
        for (a, m), (size, _) in st.pos.items():
            if size != 0 and st.price.get(m, 0) is None:
                st.stale.add(self.market_segment[m])
        return st, pre


def static_checks(r: Reader, st: State, vault_donated: int = 0) -> list[str]:
    """Invariants that hold in every state (no history needed)."""
    errors: list[str] = []
    # (1) conservation, to the wei
    collateral = sum(st.coll.values())
    entries = sum(p[1] for p in st.pos.values())
    fees = sum(st.fees.values())
    pens = sum(st.pens.values())
    claims = collateral + fees + pens - entries
    if st.bal[r.vault] != claims + vault_donated:
        errors.append(f"(1) vault balance {st.bal[r.vault]} != claims {claims} "
                      f"(collateral {collateral} + fees {fees} + penalties {pens} - entry {entries}); "
                      f"diff {st.bal[r.vault] - claims}, donated {vault_donated}")
    errors += st.view_errors
    # (12) no contagion: each segment's cash is exactly its own claims; the cash of all
    # segments is the vault's balance (less what was donated to the vault directly)
    for seg in r.segments.values():
        markets = [m for m in r.market_ids if r.market_segment[m] == seg]
        own = (sum(v for (a, s), v in st.coll.items() if s == seg)
               + sum(st.fees[m] + st.pens[m] for m in markets)
               - sum(st.pos[(a, m)][1] for a in r.actors for m in markets))
        cash = st.cash[seg][0]
        if cash != own:
            errors.append(f"(12) segment {seg} cash {cash} != its claims {own} (diff {cash - own})")
    total_cash = sum(c[0] for c in st.cash.values())
    if total_cash > st.bal[r.vault] or (vault_donated == 0 and total_cash != st.bal[r.vault]):
        errors.append(f"(12) Σ segment cash {total_cash} vs vault balance {st.bal[r.vault]} (donated {vault_donated})")
    everywhere = sum(st.bal.values())
    if everywhere != st.supply:
        errors.append(f"(1) tokens everywhere {everywhere} != total minted {st.supply} (diff {everywhere - st.supply})")
    # (2) every long has a short; open interest == Σ longs
    for m in r.market_ids:
        sizes = [st.pos[(a, m)][0] for a in r.actors]
        if sum(sizes) != 0:
            errors.append(f"(2) market {m}: Σ sizes = {sum(sizes)}")
        longs = sum(s for s in sizes if s > 0)
        if st.oi[m] != longs:
            errors.append(f"(2) market {m}: open interest {st.oi[m]} != Σ longs {longs}")
        for a in r.actors:
            if (st.pos[(a, m)][0] == 0) != (st.pos[(a, m)][1] == 0) and st.pos[(a, m)][0] == 0:
                errors.append(f"(2) {a} market {m}: flat position keeps entry {st.pos[(a, m)][1]}")
    # pools: internal accounting never exceeds what is held; (8) maxRedeem only inside window
    for p in r.all_pools:
        info = st.pool[p]
        lent = st.deployed if p == r.backstop else 0
        if not info["total"] <= info["managed"] <= st.bal[p] + lent:
            errors.append(f"pool {p}: totalAssets {info['total']} <= managed {info['managed']} <= balance {st.bal[p]}"
                          f" + lent {lent} fails")
        held = sum(st.shares[(p, h)] for h in r.pool_holders)
        if held > info["supply"]:
            errors.append(f"pool {p}: holders' shares {held} > totalSupply {info['supply']}")
        for h in r.pool_holders:
            shares, unlock, expires = st.request[(p, h)]
            inside = shares > 0 and unlock <= st.timestamp <= expires
            expected = min(shares, st.shares[(p, h)]) if inside else 0
            if st.max_redeem[(p, h)] != expected:
                errors.append(f"(8) pool {p} holder {h}: maxRedeem {st.max_redeem[(p, h)]} != {expected} "
                              f"(request {shares} [{unlock}, {expires}] at {st.timestamp})")
    return errors


_readers: dict = {}


def check_invariants(system, actors, segments=None, markets=None, rpc: Rpc | None = None) -> list[str]:
    """Stateless invariants of the deployed `system` over `actors` (see module docstring)."""
    rpc = rpc or Rpc.from_ape()
    # keyed by node and deployment, not by id(system): ids are reused, and a sweep re-deploys the same
    # addresses on a fresh chain (or another worker's node) run after run
    deployment = (rpc.uri, _addr(system.vault), _addr(system.engine), _addr(system.token))
    key = (deployment, tuple(_addr(a) for a in actors), tuple(sorted((segments or system.segments).items())),
           tuple(sorted((markets or system.markets).keys())))
    reader = _readers.get(key)
    if reader is None:
        reader = Reader(rpc, system, actors, segments, markets)
        _readers[key] = reader
    st, _ = reader.read()
    return static_checks(reader, st)


# ---------------------------------------------------------------- events

T_FILL = topic("Fill(bytes32,address,address,uint256,int256,uint256,uint256,uint256,int256,int256,int256)")
T_VDEPOSIT = topic("Deposit(address,uint256,uint256)")
T_VWITHDRAW = topic("Withdraw(address,uint256,uint256)")
T_SWEPT = topic("FeesSwept(uint256,uint256,uint256)")
T_TRANSFERRED = topic("PositionTransferred(address,address,uint256,int256,uint256,uint256,uint256,int256,int256)")
T_BADDEBT = topic("BadDebtCovered(address,uint256,uint256,uint256,uint256)")
T_LIQUIDATED = topic("Liquidated(address,address,uint256,uint256,uint256,uint256,uint256,uint256,uint256,bool)")
T_DELEVERAGED = topic("Deleveraged(address,address,uint256,uint256,uint256,uint256,uint256,address)")
T_FLAGGED = topic("Flagged(address,uint256,address)")
T_PDEPOSIT = topic("Deposit(address,address,uint256,uint256)")
T_PWITHDRAW = topic("Withdraw(address,address,address,uint256,uint256)")
T_COVER = topic("Cover(uint256,uint256,uint256,uint256)")
T_INCOME = topic("IncomeNotified(uint256,uint256)")
T_DRAW = topic("Draw(address,uint256,uint256,address)")
T_TOPUP = topic("TopUp(address,uint256,uint256)")
T_REBALANCED = topic("Rebalanced(uint256,uint256,uint256,uint256)")
T_LFUNDED = topic("LiquidatorFunded(address,uint256)")
T_LSETTLED = topic("LiquidatorSettled(address,uint256,uint256,uint256,uint256)")
T_BINCOME = topic("BackstopIncome(address,uint256)")


@dataclass
class Log:
    address: str
    topics: list[bytes]
    data: bytes

    def word(self, k: int) -> bytes:
        return self.data[32 * k: 32 * k + 32]

    def topic_addr(self, k: int) -> str:
        return to_checksum_address(self.topics[k][12:])


def parse_logs(receipt: dict) -> list[Log]:
    return [
        Log(to_checksum_address(lg["address"]), [bytes.fromhex(t[2:]) for t in lg["topics"]], bytes.fromhex(lg["data"][2:]))
        for lg in receipt.get("logs", [])
    ]


# ---------------------------------------------------------------- stateful tracker


@dataclass
class Tx:
    """One transaction of a step, as the fuzzer sent it."""

    kind: str
    sender: str
    hash: str
    meta: dict = field(default_factory=dict)
    receipt: dict | None = None

    @property
    def ok(self) -> bool:
        return self.receipt is not None and int(self.receipt["status"], 16) == 1

    @property
    def block(self) -> int:
        return int(self.receipt["blockNumber"], 16)


class Tracker:
    """Mirror of vault and pool accounting driven by events, plus the step-wise invariants."""

    def __init__(self, reader: Reader, known: Iterable[str] = (), liveness_keeper: Any = None):
        self.r = reader
        # (11) liveness: candidate keeper calls are simulated from this funded account
        self.liveness_keeper = _addr(liveness_keeper) if liveness_keeper is not None else None
        self.counts: dict[str, int] = {}
        self.known = set(known)  # invariant tags tolerated (known, pinned contract bugs)
        self.decimals = int(reader.system.vault.quote_decimals())
        self.scale = scale_of(self.decimals)
        self.fee_bps = {}
        self.band_bps: dict[int, int] = {}  # the widest band a market has had: premiums stay inside it
        self.market_segment = {}
        for m in reader.markets.values():
            params = reader.system.lens.market(m.id)
            self.fee_bps[m.id] = (int(params.maker_fee_bps), int(params.taker_fee_bps))
            self.band_bps[m.id] = int(params.price_band_bps)
            self.market_segment[m.id] = m.segment
        self.checks = 0
        self.tolerated: dict[str, int] = {}
        self.state: State | None = None

    # -- lifecycle

    def reset(self, st: State):
        """Start mirroring from the chain state `st` (start of an example)."""
        self.state = st
        self.coll = dict(st.coll)
        self.pos = dict(st.pos)
        self.fees = dict(st.fees)
        self.pens = dict(st.pens)
        self.managed = {p: st.pool[p]["managed"] for p in self.r.all_pools}
        self.deployed = st.deployed
        self.donated = {p: st.bal[p] - st.pool[p]["managed"] + (st.deployed if p == self.r.backstop else 0)
                        for p in self.r.all_pools}
        self.vault_donated = st.bal[self.r.vault] - sum(c[0] for c in st.cash.values())

    def donate(self, pool: str, amount: int):
        if pool == self.r.vault:
            self.vault_donated += amount
        else:
            self.donated[pool] += amount

    def _bump(self, name: str, k: int = 1):
        self.counts[name] = self.counts.get(name, 0) + k

    def step(self, txs: list[Tx]) -> list[str]:
        """Fetch receipts and state in one batch, apply events, check everything."""
        pending = [t for t in txs if t.receipt is None]
        # receipts and the state at "latest" in one batch (automine: the last tx's block)
        prefix = [("eth_getTransactionReceipt", [t.hash]) for t in pending]
        new, receipts = self.r.read(None, prefix)
        for t, rc in zip(pending, receipts):
            if isinstance(rc, RpcError) or rc is None:
                raise AssertionError(f"no receipt for {t.kind} {t.hash}: {rc}")
            t.receipt = rc
        if txs and max(t.block for t in txs) != new.block:
            new, _ = self.r.read(max(t.block for t in txs))
        # apply in chain order: with automine off several transactions share a block, and the
        # node orders them (by fee, then arrival), not the order the fuzzer sent them in
        txs = sorted(txs, key=lambda t: (t.block, int(t.receipt["transactionIndex"], 16)))
        errors = self._apply_and_check(self.state, new, txs)
        self.state = new
        self.checks += 1
        return self._filter(errors)

    def _filter(self, errors: list[str]) -> list[str]:
        out = []
        for e in errors:
            tag = e.split(" ", 1)[0]
            if tag in self.known:
                self.tolerated[tag] = self.tolerated.get(tag, 0) + 1
            else:
                out.append(e)
        return out

    # -- mirror

    def _trade(self, owner: str, market: int, delta: int, cost: int, fee: int) -> int:
        size, entry = self.pos.get((owner, market), (0, 0))
        size, entry, realized = apply_trade(size, entry, delta, cost)
        self.pos[(owner, market)] = (size, entry)
        seg = self.market_segment[market]
        self.coll[(owner, seg)] = self.coll.get((owner, seg), 0) + realized - fee
        return realized

    def _apply_and_check(self, old: State, new: State, txs: list[Tx]) -> list[str]:
        r = self.r
        errors: list[str] = []
        cover_pools: set[str] = set()
        pool_set = set(r.all_pools)
        n_ok = sum(t.ok for t in txs)
        fill_index: dict[int, dict[int, set[int]]] = {}  # market -> block -> indices its Fills reported
        last_in_block = {}
        for t in txs:
            last_in_block[t.block] = t.hash
        for t in txs:
            if not t.ok:
                continue
            logs = parse_logs(t.receipt)
            bad_debt_segments = {_u(lg.topics[2]) for lg in logs if lg.address == r.vault and lg.topics[0] == T_BADDEBT}
            for lg in logs:
                t0 = lg.topics[0]
                if lg.address == r.vault:
                    if t0 == T_FILL:
                        maker, taker = lg.topic_addr(2), lg.topic_addr(3)
                        market, maker_delta, price = _u(lg.word(0)), _i(lg.word(1)), _u(lg.word(2))
                        maker_fee, taker_fee = _u(lg.word(3)), _u(lg.word(4))
                        maker_realized, taker_realized = _i(lg.word(5)), _i(lg.word(6))
                        cost = trade_cost(abs(maker_delta), price, self.decimals)
                        fees_cost = cost
                        signed = cost if maker_delta > 0 else -cost
                        # both sides join the funding index the event reports (vault docs/margin.md)
                        signed -= funding_adjustment(maker_delta, _i(lg.word(7)), scale_of(self.decimals))
                        fill_index.setdefault(market, {}).setdefault(t.block, set()).add(_i(lg.word(7)))
                        mbps, tbps = self.fee_bps[market]
                        if maker_fee != fee_of(fees_cost, mbps) or taker_fee != fee_of(fees_cost, tbps):
                            errors.append(f"(3) fill fees {maker_fee}/{taker_fee} != ceil of {cost} x {mbps}/{tbps} bps")
                        got_m = self._trade(maker, market, maker_delta, signed, maker_fee)
                        got_t = self._trade(taker, market, -maker_delta, -signed, taker_fee)
                        if (got_m, got_t) != (maker_realized, taker_realized):
                            errors.append(f"(3) fill realized {maker_realized}/{taker_realized} != model {got_m}/{got_t}")
                        self.fees[market] += maker_fee + taker_fee
                    elif t0 == T_VDEPOSIT:
                        key = (lg.topic_addr(1), _u(lg.topics[2]))
                        self.coll[key] = self.coll.get(key, 0) + _u(lg.word(0))
                    elif t0 == T_VWITHDRAW:
                        key = (lg.topic_addr(1), _u(lg.topics[2]))
                        self.coll[key] = self.coll.get(key, 0) - _u(lg.word(0))
                    elif t0 == T_SWEPT:
                        seg = _u(lg.topics[1])
                        for m, s in self.market_segment.items():
                            if s == seg:
                                self.fees[m] = 0
                                self.pens[m] = 0
                    elif t0 == T_TRANSFERRED:
                        owner, receiver, market = lg.topic_addr(1), lg.topic_addr(2), _u(lg.topics[3])
                        owner_delta, price, penalty, keeper_fee, owner_realized = (
                            _i(lg.word(0)), _u(lg.word(1)), _u(lg.word(2)), _u(lg.word(3)), _i(lg.word(4)))
                        cost = trade_cost(abs(owner_delta), price, self.decimals)
                        signed = cost if owner_delta > 0 else -cost
                        signed -= funding_adjustment(owner_delta, _i(lg.word(5)), scale_of(self.decimals))
                        got = self._trade(owner, market, owner_delta, signed, penalty + keeper_fee)
                        self._trade(receiver, market, -owner_delta, -signed, 0)
                        seg = self.market_segment[market]
                        self.coll[(receiver, seg)] = self.coll.get((receiver, seg), 0) + keeper_fee
                        self.pens[market] += penalty
                        if got != owner_realized:
                            errors.append(f"(3) transfer realized {owner_realized} != model {got}")
                    elif t0 == T_BADDEBT:
                        key = (lg.topic_addr(1), _u(lg.topics[2]))
                        deficit, paid, unpaid = _u(lg.word(0)), _u(lg.word(1)), _u(lg.word(2))
                        if paid + unpaid != deficit:
                            errors.append(f"(1) BadDebtCovered paid {paid} + unpaid {unpaid} != deficit {deficit}")
                        self.coll[key] = self.coll.get(key, 0) + paid
                elif lg.address in pool_set:
                    p = lg.address
                    if t0 == T_PDEPOSIT:
                        self.managed[p] += _u(lg.word(0))
                    elif t0 == T_PWITHDRAW:
                        self.managed[p] -= _u(lg.word(0))
                    elif t0 == T_INCOME:
                        self.managed[p] += _u(lg.word(0)) - _u(lg.word(1))
                    elif t0 == T_BINCOME:
                        self.managed[p] += _u(lg.word(0))
                    elif t0 == T_COVER:
                        paid_by_pool = _u(lg.word(1))
                        self.managed[p] -= paid_by_pool
                        cover_pools.add(p)
                        seg = r.pool_segment.get(p)
                        if seg not in bad_debt_segments:
                            errors.append(f"(9) Cover by pool of segment {seg} in a tx settling segments {sorted(bad_debt_segments)}")
                    elif t0 == T_DRAW:
                        paid = _u(lg.word(1))
                        self.managed[p] -= paid
                        cover_pools.add(p)
                        # a member of another deployment sharing the backstop settles in a vault not read here
                        seg = r.pool_segment.get(lg.topic_addr(1))
                        if seg is not None and seg not in bad_debt_segments:
                            errors.append(f"(9) backstop Draw for segment {seg} in a tx settling segments {sorted(bad_debt_segments)}")
                        if paid and p != r.backstop:
                            errors.append(f"(9) Draw emitted by {p}, not the backstop")
                    elif t0 == T_TOPUP:  # the backstop refills a member's bad debt below its floor
                        self.managed[p] -= _u(lg.word(1))
                        cover_pools.add(p)
                    elif t0 == T_REBALANCED:
                        # surplus out (to the backstop's income and the treasury), a top-up in; never a loss (16)
                        self.managed[p] += _u(lg.word(2)) - _u(lg.word(0)) - _u(lg.word(1))
                    elif t0 == T_LFUNDED:
                        self.deployed += _u(lg.word(0))
                    elif t0 == T_LSETTLED:
                        released, gain, loss = _u(lg.word(0)), _u(lg.word(2)), _u(lg.word(3))
                        self.deployed -= released
                        self.managed[p] += gain - loss
                        if loss:
                            cover_pools.add(p)
            errors += self._tx_checks(old, new, t, logs, len(txs),
                                      t.block == new.block and last_in_block[t.block] == t.hash, n_ok)

        # mirror == chain
        for key, c in new.coll.items():
            if self.coll.get(key, 0) != c:
                errors.append(f"(3) collateral {key}: chain {c} != model {self.coll.get(key, 0)}")
        for key, h in new.health.items():
            if h[0] != new.coll[key]:
                errors.append(f"health_of collateral {key}: {h[0]} != collateral() {new.coll[key]}")
        for key, p in new.pos.items():
            if self.pos.get(key, (0, 0)) != p:
                errors.append(f"(3) position {key}: chain {p} != model {self.pos.get(key, (0, 0))}")
        for m in r.market_ids:
            if new.fees[m] != self.fees[m] or new.pens[m] != self.pens[m]:
                errors.append(f"(3) market {m} accrued fees/penalties chain {new.fees[m]}/{new.pens[m]} "
                              f"!= model {self.fees[m]}/{self.pens[m]}")
        for p in r.all_pools:
            if new.pool[p]["managed"] != self.managed[p]:
                errors.append(f"(9) pool {p} managed assets chain {new.pool[p]['managed']} != model {self.managed[p]}")
            lent = self.deployed if p == r.backstop else 0
            if new.bal[p] != self.managed[p] - lent + self.donated[p]:
                errors.append(f"(9) pool {p} token balance {new.bal[p]} != managed {self.managed[p]} - lent {lent}"
                              f" + donations {self.donated[p]}")
            # (6) assets per share only fall with a Cover/Draw/TopUp/takeover loss from that pool
            if new.pool[p]["aps"] < old.pool[p]["aps"] and p not in cover_pools:
                errors.append(f"(6) pool {p} assets/share fell {old.pool[p]['aps']} -> {new.pool[p]['aps']} without Cover")
        errors += self._funding_checks(old, new, fill_index)
        errors += static_checks(r, new, self.vault_donated)
        errors += self.liveness(new)
        return errors

    def _funding_checks(self, old: State, new: State, fill_index: dict[int, dict[int, set[int]]]) -> list[str]:
        errors: list[str] = []
        for m in self.r.market_ids:
            blocks = fill_index.get(m, {})
            for block, indices in blocks.items():
                if len(indices) != 1:
                    errors.append(f"(13) market {m}: fills of block {block} report indices {sorted(indices)}")
            if blocks:
                final = min(blocks[max(blocks)])
                if new.funding[m][0] != final:
                    errors.append(f"(13) market {m}: stored funding index {new.funding[m][0]} != last Fill's {final}")
            elif new.funding[m] != old.funding[m]:
                errors.append(f"(13) market {m}: funding word changed {old.funding[m]} -> {new.funding[m]} without a Fill")
            band = self.band_bps.get(m)
            if band is not None and abs(new.funding[m][1]) * BPS > band * WAD + BPS:
                errors.append(f"(13) market {m}: premium {new.funding[m][1]} outside the {band} bps band")
        return errors

    # -- (11) liveness

    def bankrupt(self, st: State) -> list[tuple[str, int]]:
        """Accounts with equity < 0 holding positions, or flat with negative collateral."""
        out = []
        for (a, seg), h in st.health.items():
            open_ = any(st.pos[(a, m)][0] != 0 for m in self.r.market_ids if self.r.market_segment[m] == seg)
            if (open_ and h[1] < 0) or (not open_ and st.coll[(a, seg)] < 0):
                out.append((a, seg))
        return out

    def liveness(self, st: State) -> list[str]:
        """(11) every bankrupt account has a permitted permissionless call that reduces its open
        notional or its unpaid deficit: eth_call simulations of liquidate / deleverage /
        settle_bad_debt from a funded keeper, one batch for all bankrupt accounts of the step.
        Legitimate dead states: (a) flat, nothing the pools can pay and no profitable position
        with equity > 2 in the segment; (b) every held market lacks a fresh price; (c) engine paused."""
        r, keeper = self.r, self.liveness_keeper
        if keeper is None:
            return []
        accounts = [(a, seg) for a, seg in self.bankrupt(st) if a != keeper]
        if not accounts:
            return []
        if st.paused.get("engine"):
            self._bump("liveness.paused")
            return []
        tag = hex(st.block)
        liq_sel = selector("liquidate(address,uint256,uint256)")
        adl_sel = selector("deleverage(address,uint256,address,uint256)")
        settle_sel = selector("settle_bad_debt(address,uint256)")
        plans = []  # (account, kind, deficit or None)
        reqs = []
        for a, seg in accounts:
            markets = [m for m in r.market_ids if r.market_segment[m] == seg]
            held = [m for m in markets if st.pos[(a, m)][0] != 0]
            if held:
                if all(st.price.get(m) is None for m in held):
                    self._bump("liveness.dead_no_price")
                    continue
                for m in held:
                    size = abs(st.pos[(a, m)][0])
                    for sz in dict.fromkeys((size, max(size // 10, 1))):
                        reqs.append(("eth_call", [{"from": keeper, "to": r.engine, "gas": hex(8_000_000),
                                                   "data": "0x" + (liq_sel + encode(["address", "uint256", "uint256"], [a, m, sz])).hex()}, tag]))
                        plans.append(((a, seg), "liquidate", None))
                    for cp in r.actors:
                        if cp != a and st.pos[(cp, m)][0] * st.pos[(a, m)][0] < 0:
                            reqs.append(("eth_call", [{"from": keeper, "to": r.engine, "gas": hex(8_000_000),
                                                       "data": "0x" + (adl_sel + encode(["address", "uint256", "address", "uint256"], [a, m, cp, size])).hex()}, tag]))
                            plans.append(((a, seg), "deleverage", None))
            else:
                deficit = -st.coll[(a, seg)]
                reqs.append(("eth_call", [{"from": keeper, "to": r.engine, "gas": hex(8_000_000),
                                           "data": "0x" + (settle_sel + encode(["address", "uint256"], [a, seg])).hex()}, tag]))
                plans.append(((a, seg), "settle", deficit))
                for m in markets:
                    for cp in r.actors:
                        if cp != a and st.pos[(cp, m)][0] != 0:
                            reqs.append(("eth_call", [{"from": keeper, "to": r.engine, "gas": hex(8_000_000),
                                                       "data": "0x" + (adl_sel + encode(["address", "uint256", "address", "uint256"], [a, m, cp, 1])).hex()}, tag]))
                            plans.append(((a, seg), "residual", None))
        results = r.rpc.batch(reqs)
        self._bump("liveness.accounts", len({p[0] for p in plans}))
        self._bump("liveness.sims", len(reqs))
        live: dict = {}
        reasons: dict = {}
        for (acct, kind, deficit), res in zip(plans, results):
            live.setdefault(acct, False)
            if isinstance(res, RpcError):
                reasons.setdefault(acct, {}).setdefault(kind, str(res)[:120])
                continue
            if kind == "settle" and _u(bytes.fromhex(res[2:66])) >= deficit:
                reasons.setdefault(acct, {}).setdefault(kind, "paid nothing")
                continue
            live[acct] = True
        errors = []
        for acct, ok in live.items():
            if ok:
                continue
            a, seg = acct
            markets = [m for m in r.market_ids if r.market_segment[m] == seg]
            if not any(st.pos[(a, m)][0] != 0 for m in markets):
                # (a) truly unpayable: the pools pay nothing and nobody has profit to give
                givers = [cp for cp in r.actors for m in markets
                          if cp != a and st.pos[(cp, m)][0] != 0 and st.price.get(m) is not None
                          and st.health[(cp, seg)][1] > 2
                          and upnl_at_mark(*st.pos[(cp, m)], st.price[m], self.scale, st.funding[m][0]) > 0]
                if st.cover_reach.get(seg, 0) == 0 and not givers:
                    self._bump("liveness.dead_unpayable")
                    continue
                if st.max_cover.get(seg, 0) == 0 and st.cover_reach.get(seg, 0) > 0:
                    # (d) the pool's per-block cover limit is used up: settle_bad_debt pays next block
                    self._bump("liveness.wait_next_block")
                    continue
            self._bump("liveness.violations")
            errors.append(f"(11) bankrupt account {a} seg {seg} (health {st.health[acct]}, positions "
                          f"{[(m, st.pos[(a, m)]) for m in markets if st.pos[(a, m)][0]]}, cover reach "
                          f"{st.cover_reach.get(seg)}) has no permissionless call that reduces it: {reasons.get(acct)}")
        return errors

    def _batch_checks(self, old: State, new: State, t: Tx, logs: list[Log]) -> list[str]:
        """liquidate_batch never reverts (a bad item is skipped), closes nothing while the engine is paused,
        and every item it closes was liquidatable at the start of the step (4)."""
        errors: list[str] = []
        r = self.r
        if not t.ok:
            errors.append("(4c) liquidate_batch reverted: a bad item must be skipped, not fatal")
        for lg in logs:
            if lg.address != r.engine or lg.topics[0] != T_LIQUIDATED:
                continue
            if old.paused.get("engine"):
                errors.append("(11c) liquidate_batch closed a position while the engine is paused")
            owner, market = lg.topic_addr(1), _u(lg.topics[3])
            seg = r.market_segment[market]
            if seg in old.stale or seg in new.stale or (owner, seg) not in old.health:
                continue
            _, equity, _, mm, _ = old.health[(owner, seg)]
            if mm == 0 or equity >= mm:
                errors.append(f"(4) liquidate_batch closed {owner} seg {seg} with equity {equity} >= MM {mm}")
        return errors

    def _tx_checks(self, old: State, new: State, t: Tx, logs: list[Log], n_txs: int, last: bool,
                   n_ok: int = 1) -> list[str]:
        """Per-transaction invariants (4), (7), (8), (12b); (7) needs the state at the tx's own
        block (the last transaction of its block)."""
        errors: list[str] = []
        r = self.r
        # the engine's pause stops liquidation / ADL / flags and settlement; the vault's pause is a
        # reduce-only mode (issue 9.5): liquidation goes on, withdrawals and risk-adding fills stop
        if t.kind in ("liquidate", "deleverage", "flag") and old.paused.get("engine"):
            errors.append(f"(11c) {t.kind} succeeded while the engine is paused")
        if t.kind == "withdraw" and old.paused.get("vault"):
            errors.append("(11c) withdraw succeeded while the vault is paused")
        if t.kind == "settle" and old.paused.get("engine"):
            errors.append(f"(11c) settle_bad_debt succeeded while the engine is paused")
        if t.kind in ("liquidate", "flag"):
            owner, seg = t.meta["owner"], t.meta["segment"]
            if seg in old.stale or seg in new.stale or t.meta.get("prices_moved"):
                return errors
            _, equity, _, mm, _ = old.health[(owner, seg)]
            if mm == 0 or equity >= mm:
                errors.append(f"(4) {t.kind} of {owner} seg {seg} succeeded with equity {equity} >= MM {mm}")
            if t.kind == "liquidate" and n_txs == 1 and mm > 0 and equity > 0:
                _, eq2, _, mm2, _ = new.health[(owner, seg)]
                liq = [lg for lg in logs if lg.address == r.engine and lg.topics[0] == T_LIQUIDATED]
                full = any(lg.word(6)[-1] == 1 for lg in liq)
                # the ratio may fall by the keeper fee floor the account pays, never more
                keeper_fee = sum(_u(lg.word(5)) for lg in liq)
                if mm2 > 0 and (eq2 + keeper_fee) * mm < equity * mm2:
                    tag = "(4b)" if full else "(4)"
                    errors.append(f"{tag} liquidation lowered margin ratio {equity}/{mm} -> {eq2}/{mm2} "
                                  f"beyond the keeper fee {keeper_fee} (full_close={full}, account still open)")
        if t.kind == "liquidate_batch":
            errors += self._batch_checks(old, new, t, logs)
        if t.kind == "deleverage" and t.ok and n_ok == 1 and "owner" in t.meta:
            # (12b) no contagion through ADL: nobody but the deleveraged account goes below zero
            owner, seg = t.meta["owner"], t.meta["segment"]
            if seg not in old.stale and seg not in new.stale:
                for a in r.actors:
                    if a == owner or (a, seg) not in old.health:
                        continue
                    before, after = old.health[(a, seg)][1], new.health[(a, seg)][1]
                    if before >= 0 and after < 0:
                        who = "counterparty" if a == t.meta.get("counterparty") else "bystander"
                        errors.append(f"(12) deleverage of {owner} pushed {who} {a} seg {seg} below zero equity "
                                      f"{before} -> {after}")
        ts = t.receipt.get("blockTimestamp", new.timestamp)
        ts = int(ts, 16) if isinstance(ts, str) else int(ts)
        for lg in logs:
            if lg.address == r.vault and lg.topics[0] == T_VWITHDRAW:
                # (12) a gate only extends: a withdrawal never succeeds before the gate seen
                # at the start of the step has passed
                seg = _u(lg.topics[2])
                if old.cash.get(seg, (0, 0))[1] > ts:
                    errors.append(f"(12) withdrawal from segment {seg} at {ts} while gated until {old.cash[seg][1]}")
        for lg in logs:
            if lg.address not in r.all_pools:
                continue
            p = lg.address
            info = new.pool[p]
            if lg.topics[0] == T_PWITHDRAW:
                owner = lg.topic_addr(3)
                req = old.request.get((p, owner))
                if req is None or not (req[0] > 0 and req[1] <= ts <= req[2]):
                    errors.append(f"(8) pool {p} paid {owner} at {ts} outside its request {req}")
                elif _u(lg.word(1)) > req[0]:
                    errors.append(f"(8) pool {p} redeemed {_u(lg.word(1))} > requested {req[0]}")
            if not last:
                continue
            if lg.topics[0] == T_PDEPOSIT:
                assets, shares = _u(lg.word(0)), _u(lg.word(1))
                total, supply = info["total"] - assets, info["supply"] - shares
                # (7) shares <= assets * (S + V) / (T + 1) at the tx's own price
                if shares * (total + 1) > assets * (supply + VIRTUAL_SHARES):
                    errors.append(f"(7) deposit {assets} minted {shares} shares > fair at T={total} S={supply}")
                # deposits are priced on managed assets (unvested income included: a newcomer buys
                # the incumbents' unvested income at full value), so that is what it holds
                value = mul_div(shares, info["managed"] + 1, info["supply"] + VIRTUAL_SHARES, False)
                one_share = (info["managed"] - assets + 1) // (supply + VIRTUAL_SHARES) + 2
                if assets - value > one_share:
                    errors.append(f"(7) depositor lost {assets - value} > {one_share} on a {assets} deposit (inflation?)")
            elif lg.topics[0] == T_PWITHDRAW:
                owner = lg.topic_addr(3)
                assets, shares = _u(lg.word(0)), _u(lg.word(1))
                total, supply = info["total"] + assets, info["supply"] + shares
                if assets * (supply + VIRTUAL_SHARES) > shares * (total + 1):
                    errors.append(f"(7) redeem of {shares} shares paid {assets} > fair at T={total} S={supply}")
        return errors
