"""The keeper that wins a crash: one handler run per block, every liquidatable account liquidated in the next.

A run (`Keeper.run`) does, in a handful of JSON-RPC round trips whatever the book size:
1. learn new accounts from the block's events and scan every active one (backstop.keeper.watch);
2. price every candidate position with `engine.liquidation_quote` (one batch) and keep what pays after gas
   and fits the keeper's free margin;
3. send the work as `engine.liquidate_batch` transactions (MAX_BATCH items each) without waiting for their
   receipts, with locally managed nonces, so two batches land in the same block; an item that lost a race
   or went stale is skipped by the engine, never fatal;
4. collect the receipts of earlier sends: liquidations, profit, misses and latency go to `Metrics`; a
   transaction the node dropped is re-broadcast, one that reverted is counted;
5. hand the rare waterfall tail (bad debt left on a flat account, a deficit the pools cannot pay, an
   auction nobody took) to the sequential policy `liquidate_all` (flag, settle, takeover, ADL), then unwind
   the backstop liquidator's inventory and rebalance pools outside their band.
No exception of a run escapes as long as the node answers: a revert, a lost race or a dropped transaction
is a metric, not a crash (silverback stops a bot after a few handler exceptions).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from ape import chain
from ape.api import AccountAPI
from ape.exceptions import ApeException
from eth_abi import decode, encode

from backstop.client.deploy import System
from backstop.client.rpc import Rpc, RpcError
from backstop.core.abi import address_of, selector, topic, word_uint
from backstop.core.units import WAD
from backstop.keeper.liquidator import (
    AccountStatus,
    Report,
    auction_over,
    gas_cost_in_quote,
    liquidate_all,
    rebalance_pools,
    unwind_inventory,
)
from backstop.keeper.watch import Watchlist, positions

MAX_BATCH = 64  # LiquidationEngine.MAX_BATCH
# gas of one batched item, measured in `make bench` (a full close with a pool cover is the dearest);
# the transaction's own 21,000 + calldata come on top
GAS_PER_ITEM = 260_000
GAS_PER_BATCH = 60_000
POKE_GAS = 250_000  # RiskParams.poke, with the Configurator write
RETRY_AFTER_BLOCKS = 3  # a send not mined after this many blocks is checked and re-broadcast if dropped

_QUOTE = selector("liquidation_quote(address,uint256,uint256)")
_POKE = selector("poke(uint256)")
_BATCH = selector("liquidate_batch((address,uint256,uint256)[])")
_LIQUIDATED = topic("Liquidated(address,address,uint256,uint256,uint256,uint256,uint256,uint256,uint256,bool)")


@dataclass(frozen=True)
class Order:
    """One liquidate_batch item, with the quote that justified it."""

    owner: str
    market: int
    size: int
    segment: int
    profit: int  # discount profit at mark + keeper fee top-up, quote units
    notional: int  # quote units taken over at mark


@dataclass
class Sent:
    tx_hash: str
    nonce: int
    raw: bytes
    orders: list[Order]
    block: int  # head when sent
    retries: int = 0


@dataclass
class Metrics:
    """What the keeper did since it started (a silverback handler returns `summary()`)."""

    runs: int = 0
    watched: int = 0
    active: int = 0
    liquidatable: int = 0
    liquidations: int = 0  # items that closed something
    misses: int = 0  # items the engine skipped (another keeper was first, the account recovered...)
    unprofitable: int = 0  # candidates left because their quote did not pay for their gas
    unfunded: int = 0  # candidates left because the keeper's free margin could not carry them
    profit: int = 0  # quote units: discount at mark + keeper fees of every liquidation
    sent: int = 0
    reverted: int = 0
    retried: int = 0
    errors: int = 0  # node errors caught in a run
    fallbacks: int = 0  # waterfall-tail actions (flag, settle, deleverage) sent sequentially
    pokes: int = 0  # RiskParams.poke transactions (volatility margin)
    latency_blocks: list[int] = field(default_factory=list)  # liquidation block - first block seen liquidatable
    last_run_seconds: float = 0.0
    last_error: str = ""

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latency_blocks)
        pick = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]) if lat else (lambda q: None)
        return {
            "watched": self.watched, "active": self.active, "liquidatable": self.liquidatable,
            "liquidations": self.liquidations, "misses": self.misses, "unprofitable": self.unprofitable,
            "unfunded": self.unfunded, "profit": self.profit, "sent": self.sent, "reverted": self.reverted,
            "retried": self.retried, "errors": self.errors, "fallbacks": self.fallbacks, "pokes": self.pokes,
            "latency_p50": pick(0.5), "latency_p99": pick(0.99), "run_seconds": round(self.last_run_seconds, 4),
        }


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


class Keeper:
    """A liquidation keeper for one deployment and one signer (see the module docstring)."""

    def __init__(self, system: System, signer: AccountAPI, *, rpc: Rpc | None = None, min_profit: int = 0,
                 gas_price_wei: int | None = None, native_price_wad: int | None = None, start_block: int = 0,
                 fallback: bool = True, poke_risk: bool = True):
        self.system, self.signer = system, signer
        self.rpc = rpc or Rpc.from_ape()
        self.address = address_of(signer)
        self.min_profit = min_profit
        self.gas_price_wei, self.native_price_wad = gas_price_wei, native_price_wad
        self.fallback = fallback
        self.poke_risk = poke_risk
        self.watch = Watchlist(next_block=start_block)
        self.metrics = Metrics()
        self.pending: dict[str, Sent] = {}
        self.first_seen: dict[tuple[str, int], int] = {}  # (owner, segment) -> block first seen liquidatable
        self.skipped: dict[tuple[str, int], int] = {}  # consecutive runs whose item for the account closed 0
        self._nonce: int | None = None
        self._engine = address_of(system.engine)
        self._markets = {s: [m for m in system.markets.values() if m.segment == s] for s in system.segments.values()}
        self._segment_of = {m.id: m.segment for m in system.markets.values()}
        self._params = {m.id: system.lens.market(m.id) for m in system.markets.values()}

    # ------------------------------------------------------------ one run

    def run(self, block_number: int | None = None) -> dict[str, Any]:
        """One handler run at `block_number` (default: the head); returns `Metrics.summary()`."""
        began = time.perf_counter()
        head = int(chain.blocks.head.number) if block_number is None else block_number
        self.metrics.runs += 1
        try:
            self._collect(head)
            if self.poke_risk and self.system.risk is not None:
                self._poke_risk(head)
            self.watch.learn(self.system, self.rpc, head)
            statuses = self.watch.scan(self.system, self.rpc)
            liquidatable = [s for rows in statuses.values() for s in rows if s.liquidatable]
            self._note_seen(liquidatable, head)
            orders = self._orders(liquidatable)
            for start in range(0, len(orders), MAX_BATCH):
                self._send(orders[start:start + MAX_BATCH], head)
            if self.fallback:
                self._waterfall_tail(statuses)
                self._pools_at_work()
        except (RpcError, ApeException, ValueError, OSError) as err:  # the node, not an account: try next block
            self.metrics.errors += 1
            self.metrics.last_error = str(err)[:200]
        self.metrics.watched, self.metrics.active = self.watch.watched, sum(map(len, self.watch.active.values()))
        self.metrics.last_run_seconds = time.perf_counter() - began
        return self.metrics.summary()

    # ------------------------------------------------------------ choosing work

    def _note_seen(self, liquidatable: Sequence[AccountStatus], head: int) -> None:
        self.metrics.liquidatable = len(liquidatable)
        now = {(s.owner, s.segment) for s in liquidatable}
        for key in now:
            self.first_seen.setdefault(key, head)
        for key in [k for k in self.first_seen if k not in now]:
            del self.first_seen[key]

    def _candidates(self, liquidatable: Sequence[AccountStatus]) -> list[tuple[AccountStatus, int, int]]:
        """(status, market, |size|) of every open position of a liquidatable account, worst accounts first."""
        if not liquidatable:
            return []
        in_flight = {(o.owner, o.market) for sent in self.pending.values() for o in sent.orders}
        pairs = [(s.owner, m.id) for s in liquidatable for m in self._markets.get(s.segment, [])
                 if s.owner != self.address and (s.owner, m.id) not in in_flight]
        sizes = positions(self.system, self.rpc, pairs)
        by_owner = {(s.owner, s.segment): s for s in liquidatable}
        out = []
        for (owner, market), size in sizes.items():
            if size != 0:
                out.append((by_owner[(owner, self._segment_of[market])], market, abs(size)))
        return sorted(out, key=lambda c: c[0].margin_ratio)

    def _orders(self, liquidatable: Sequence[AccountStatus]) -> list[Order]:
        """The candidates whose quote pays for their gas and that the keeper's free margin can carry."""
        candidates = self._candidates(liquidatable)
        if not candidates:
            return []
        quotes = self.rpc.batch([
            ("eth_call", [{"from": self.address, "to": self._engine,
                           "data": _hex(_QUOTE + encode(["address", "uint256", "uint256"], [s.owner, m, size]))},
                          "latest"])
            for s, m, size in candidates
        ])
        gas_cost = gas_cost_in_quote(self.system, GAS_PER_ITEM, self._gas_price(), self._native_price())
        room = self._free_margin({s.segment for s, _, _ in candidates})
        orders = []
        for (status, market, size), reply in zip(candidates, quotes):
            if isinstance(reply, RpcError):
                self.metrics.misses += 1  # healthy again, stale price...: the quote reverts like liquidate
                continue
            amount, price, profit, _full, keeper_fee = decode(["uint256", "uint256", "uint256", "bool", "uint256"],
                                                              bytes.fromhex(reply[2:]))
            if amount == 0:
                continue
            earned = int(profit) + int(keeper_fee)
            if earned - gas_cost < self.min_profit:
                self.metrics.unprofitable += 1
                continue
            notional = int(amount) * int(price) // self.system_scale
            margin = notional * int(self._params[market].im_ratio) // WAD
            if margin > room.get(status.segment, 0):
                self.metrics.unfunded += 1
                continue
            room[status.segment] -= margin
            orders.append(Order(status.owner, market, size, status.segment, earned, notional))
        return orders

    @property
    def system_scale(self) -> int:
        """base size x price (WAD) // scale = quote units (MarginVault.notional_scale)."""
        if not hasattr(self, "_scale"):
            self._scale = int(self.system.vault.notional_scale())
        return self._scale

    def _free_margin(self, segments: set[int]) -> dict[int, int]:
        lens = self.system.lens
        return {s: max(int(lens.free_margin(self.address, s)), 0) for s in segments}

    def _gas_price(self) -> int:
        if self.gas_price_wei is not None:
            return self.gas_price_wei
        try:
            return int(chain.provider.gas_price)
        except Exception:  # pragma: no cover - a provider without eth_gasPrice
            return 0

    def _native_price(self) -> int:
        if self.native_price_wad is not None:
            return self.native_price_wad
        market = self.system.markets.get("ETH-PERP")
        return 0 if market is None else int(self.system.oracle.price(market.id))

    def _poke_risk(self, head: int) -> None:
        """Fold every market's new oracle round into RiskParams (volatility margin): a poke that would revert
        (no new round, a stale feed, an unconfigured market) is simulated in one batch and not sent."""
        risk = address_of(self.system.risk)
        markets = sorted(m.id for m in self.system.markets.values())
        sims = self.rpc.batch([("eth_call", [{"from": self.address, "to": risk,
                                              "data": _hex(_POKE + encode(["uint256"], [m]))}, "latest"])
                               for m in markets])
        for market, sim in zip(markets, sims):
            if isinstance(sim, RpcError):
                continue
            txn = self.system.risk.poke.as_transaction(market, sender=self.signer, nonce=self._next_nonce(),
                                                       gas=POKE_GAS)
            self._broadcast(txn, [], head)
            self.metrics.pokes += 1

    # ------------------------------------------------------------ sending

    def _next_nonce(self) -> int:
        if self._nonce is None:
            self._nonce = int(self.rpc.request("eth_getTransactionCount", [self.address, "pending"]), 16)
        return self._nonce

    def _send(self, orders: list[Order], head: int) -> None:
        items = [(o.owner, o.market, o.size) for o in orders]
        gas = GAS_PER_BATCH + GAS_PER_ITEM * len(items)
        txn = self.system.engine.liquidate_batch.as_transaction(items, sender=self.signer, nonce=self._next_nonce(),
                                                                gas=gas)
        self._broadcast(txn, orders, head)

    def _broadcast(self, txn: Any, orders: list[Order], head: int) -> None:
        """Sign locally and send without waiting; the receipt is collected by a later run."""
        nonce = int(txn.nonce)
        signed = self.signer.sign_transaction(txn)
        raw = signed.serialize_transaction()
        try:
            tx_hash = self.rpc.request("eth_sendRawTransaction", [_hex(raw)])
        except RpcError as err:
            self._nonce = None  # re-read: another process may have used the signer
            raise err
        self._nonce = nonce + 1
        self.pending[tx_hash] = Sent(tx_hash, nonce, raw, orders, head)
        self.metrics.sent += 1

    def _collect(self, head: int) -> None:
        """Receipts of earlier sends: metrics, and a re-broadcast of what the node dropped."""
        if not self.pending:
            return
        hashes = list(self.pending)
        receipts = self.rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
        for tx_hash, receipt in zip(hashes, receipts):
            sent = self.pending[tx_hash]
            if isinstance(receipt, RpcError) or receipt is None:
                if head - sent.block >= RETRY_AFTER_BLOCKS * (sent.retries + 1):
                    self._rebroadcast(sent)
                continue
            del self.pending[tx_hash]
            self._account(sent, receipt)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every send is mined and accounted (scripts and tests; a bot just runs next block).
        Anvil's automine mines a raw transaction shortly after eth_sendRawTransaction returns."""
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            self._collect(int(chain.blocks.head.number))
            if self.pending:
                time.sleep(0.02)

    def _rebroadcast(self, sent: Sent) -> None:
        known = self.rpc.request("eth_getTransactionByHash", [sent.tx_hash])
        sent.retries += 1
        if known is not None:
            return  # still in the mempool: waiting for a block
        try:
            self.rpc.request("eth_sendRawTransaction", [_hex(sent.raw)])
            self.metrics.retried += 1
        except RpcError:  # nonce used by another send meanwhile: that work is lost, re-planned next run
            del self.pending[sent.tx_hash]
            self._nonce = None

    def _account(self, sent: Sent, receipt: dict) -> None:
        block = int(receipt["blockNumber"], 16)
        if int(receipt["status"], 16) != 1:
            self.metrics.reverted += 1
            return
        closed = {}
        for log in receipt["logs"]:
            if log["address"].lower() != self._engine.lower() or log["topics"][0] != _hex(_LIQUIDATED):
                continue
            owner = "0x" + log["topics"][1][-40:]
            market = word_uint(bytes.fromhex(log["topics"][3][2:]))
            closed[(owner.lower(), market)] = True
        for order in sent.orders:
            key = (order.owner, order.segment)
            if (order.owner.lower(), order.market) in closed:
                self.metrics.liquidations += 1
                self.metrics.profit += order.profit
                self.metrics.latency_blocks.append(block - self.first_seen.get(key, sent.block))
                self.skipped.pop(key, None)
            else:
                self.metrics.misses += 1
                self.skipped[key] = self.skipped.get(key, 0) + 1

    # ------------------------------------------------------------ the waterfall's tail

    def _waterfall_tail(self, statuses: dict[int, list[AccountStatus]]) -> None:
        """Bad debt on flat accounts, deficits beyond the pools, auctions nobody took: the sequential policy.
        Only with nothing in flight, so its ape-managed nonces never collide with ours."""
        if self.pending:
            return
        for segment, rows in statuses.items():
            tail = [s.owner for s in rows if self._needs_waterfall(s)]
            if not tail:
                continue
            report: Report = liquidate_all(self.system, self.signer, tail, segment,
                                           adl_pool=sorted(self.watch.active.get(segment, ())))
            self.metrics.fallbacks += len(report.actions)
            self._nonce = None

    def _pools_at_work(self) -> None:
        """Unwind the backstop liquidator's inventory and rebalance the pools: sequential and rare (a takeover,
        a pool outside its band), so only with nothing in flight, like the waterfall's tail."""
        if self.pending:
            return
        for segment in self.system.segments.values():
            self.metrics.fallbacks += len(unwind_inventory(self.system, self.signer, segment).actions)
        self.metrics.fallbacks += len(rebalance_pools(self.system, self.signer).actions)
        self._nonce = None

    def _needs_waterfall(self, status: AccountStatus) -> bool:
        if status.owner == self.address:
            return False
        if status.mm == 0:
            return status.collateral < 0  # flat with bad debt: settle, then residual ADL
        if not status.liquidatable:
            return False
        if status.bankrupt and self.skipped.get((status.owner, status.segment), 0) > 0:
            return True  # the liquidation did not close it: the pools cannot pay, ADL's turn
        return self.skipped.get((status.owner, status.segment), 0) >= 2 and auction_over(
            self.system, status.owner, status.segment)


# ---------------------------------------------------------------- the keeper's margin account


def ensure_margin(system: System, signer: AccountAPI, target: int, *, segments: Sequence[int] | None = None
                  ) -> dict[int, int]:
    """Top the signer's free margin up to `target` quote units in each segment (default: all).

    A liquidator takes the positions over, so it needs a margin account that meets IM afterwards in every
    segment it works in; without one each item of its batches is skipped by the engine. The deposit comes
    from the signer's wallet (on a local chain the mock token is minted first); a wallet that holds too
    little is refused with the amount it lacks. Returns {segment: deposited}."""
    chosen = list(system.segments.values()) if segments is None else list(segments)
    needs = {s: max(target - int(system.lens.free_margin(signer, s)), 0) for s in chosen}
    total = sum(needs.values())
    if total == 0:
        return needs
    if system.local:
        system.token.mint(signer, total, sender=signer)
    balance = int(system.token.balanceOf(signer))
    if balance < total:
        raise ValueError(f"keeper: wallet holds {balance} quote units, its margin needs {total} more")
    system.token.approve(system.vault, total, sender=signer)
    for segment, amount in needs.items():
        if amount:
            system.vault.deposit(segment, amount, sender=signer)
    return needs
