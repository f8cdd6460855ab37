"""Stateful fuzzer of the whole system: hypothesis RuleBasedStateMachine on Anvil.

Actors by role: a maker (quotes most orders), three traders (small / medium / whale accounts),
an attacker (tiny margin, pool inflation and donation games, self-dealing), two competing
keepers (flag / liquidate / deleverage / settle), an LP (segment pools and the backstop), the
deployer (publishes oracle prices) and the treasury (receives fees).

Every step is one or a few raw transactions (see fastpath.py); after every step one JSON-RPC
batch fetches the receipts and the whole state and backstop.sim.model.Tracker checks every
invariant (mirror of collateral/positions/fees/pool assets to the wei + docs/design.md invariants 1-9, the
(11) liveness simulations and (12) per-segment cash / no contagion of backstop/model.py).
Reverting transactions are part of the sequences; invariants must hold after them too.
Pools at work (issue 13): `rebalance` (the risk admin moves a pool's band / surplus routing, a
keeper rebalances), `takeover` (an auction nobody took goes to the backstop's liquidator of last
resort within its caps, set by `set_takeover_caps` or the rule itself, else ADL) and `unwind`
(keepers liquidate the liquidator's account, mark it, reclaim it); the waterfall's "auction"
depth tries the takeover before ADL. tests/fuzz/pools_model.py adds the invariants (14)-(16)
of these flows (the liquidator's book, refills and surpluses, the Stress event) to every check.
`block_burst` puts 2-4 keeper transactions in one block (automine off, evm_mine) against the
per-block cover limit that `set_cover_limit` sets; the Tracker applies a step's transactions
in (block, transaction index) order.

Budget (see the report in the test's output):
  ci   (default)          FUZZ_CI_EXAMPLES x FUZZ_CI_STEPS   (70 x 100, >= 5,000 steps asserted)
  soak (HYPOTHESIS_PROFILE=soak) FUZZ_EXAMPLES x FUZZ_STEPS_PER_EXAMPLE, or a total FUZZ_STEPS
       (examples = ceil(FUZZ_STEPS / steps per example)); run N workers with tests/fuzz/soak.py.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import replace

import pytest
from ape import chain
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from backstop.client.deploy import deploy_risk_params
from backstop.core.abi import address_of, topic, word_uint
from backstop.core.units import WAD, MAX_UINT256 as MAX_UINT
from backstop.sim.model import T_BADDEBT, T_COVER, T_LIQUIDATED, T_TRANSFERRED, RpcError, parse_logs
from fastpath import ORDER_TYPE, OrderSigner, Sender, calldata
from pools_model import (T_LSETTLED, T_MARKED, T_MEMBER_DRAW, T_REBALANCED, T_RECLAIMED, T_STRESS, T_TAKEN, T_TOPUP,
                         PoolsReader, PoolsTracker)

pytestmark = pytest.mark.fuzz

MAX_EXPIRY = 2**64
# known contract bugs (pinned in test_regressions.py) the fuzzer tolerates and counts instead of failing on
# Empty: nothing open. Example: FUZZ_KNOWN="(4b)" tolerated full-close liquidations lowering the ratio
# of an account that stays open (found against engine b79f812, fixed in 4247406, pinned by
# test_regressions.py::test_regression_full_close_lowers_margin_ratio).
KNOWN = set(filter(None, os.environ.get("FUZZ_KNOWN", "").split(",")))

# loss-waterfall events counted in the summary (the engine's Deleveraged has 9 fields)
T_DELEVERAGED9 = topic("Deleveraged(address,address,uint256,uint256,uint256,uint256,uint256,address,uint256)")
T_SETTLED = topic("BadDebtSettled(address,uint256,uint256)")
T_GATED = topic("WithdrawalsGated(uint256,uint256)")

DEL_SIG = "deleverage(address,uint256,address,uint256)"
LIQ_SIG = "liquidate(address,uint256,uint256)"
TAKEOVER_SIG = "takeover(address,uint256,uint256)"
# BackstopLiquidator.set_caps presets: market, total, loss limit (bps of the backstop), loss window (s)
CAPS = {"default": (1000, 2000, 750, 8 * 3600), "generous": (5000, 9000, 3000, 8 * 3600),
        "tight": (100, 200, 10, 3600), "off": (0, 0, 0, 3600)}


CI_EXAMPLES, CI_STEPS = 70, 100  # examples end early now and then: ~93 steps each on average


def budget() -> tuple[int, int]:
    """(examples, steps per example) for the active hypothesis profile."""
    profile = settings()
    if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "soak":
        steps = int(os.environ.get("FUZZ_STEPS_PER_EXAMPLE", profile.stateful_step_count))
        if os.environ.get("FUZZ_STEPS"):
            # generous: examples end early when they run out of data; the step budget stops the run
            return math.ceil(1.5 * int(os.environ["FUZZ_STEPS"]) / steps) + 1, steps
        return int(os.environ.get("FUZZ_EXAMPLES", profile.max_examples)), steps
    return int(os.environ.get("FUZZ_CI_EXAMPLES", CI_EXAMPLES)), int(os.environ.get("FUZZ_CI_STEPS", CI_STEPS))


class Ctx:
    """Everything the machine needs, built once per test (class attribute of the machine)."""

    def __init__(self, system, rpc, roles, keys):
        self.system, self.rpc = system, rpc
        self.roles = {k: address_of(v) for k, v in roles.items()}
        r = self.roles
        self.traders = [r["maker"], r["trader"], r["other"], r["whale"], r["attacker"], r["keeper"], r["keeper2"]]
        self.keepers = [r["keeper"], r["keeper2"]]
        self.pool_holders = [r["lp"], r["attacker"], r["whale"]]
        self.actors = list(dict.fromkeys(self.traders + self.pool_holders + [r["deployer"]]))
        self.markets = sorted(system.markets.values(), key=lambda m: m.id)
        self.segments = sorted(system.segments.values())
        self.pools = [address_of(system.pools[label]) for label in sorted(system.pools, key=system.segments.get)]
        self.pools.append(address_of(system.backstop))
        self.seg_pool = {system.segments[label]: address_of(p) for label, p in system.pools.items()}
        self.feeds = {m.id: address_of(m.feed) for m in self.markets}
        self.feed_scale = {m.id: 10 ** (18 - m.spec.feed_decimals) for m in self.markets}
        self.base_price = {m.id: int(m.spec.price * 10**m.spec.feed_decimals) * self.feed_scale[m.id] for m in self.markets}
        self.unit = 10**system.decimals
        self.vault, self.engine, self.token = address_of(system.vault), address_of(system.engine), address_of(system.token)
        self.liquidator = address_of(system.liquidator)  # the backstop's liquidator of last resort
        self.configurator = address_of(system.configurator)
        self.risk = address_of(system.risk) if system.risk is not None else None
        self.sender = Sender(rpc)
        self.signer = OrderSigner(chain.chain_id, self.vault, keys)
        # the liquidator's margin accounts are read (and conserved) like every actor's
        self.reader = PoolsReader(rpc, system, self.actors, pool_holders=self.pool_holders)
        # the deployer never trades: funded in setup, it is the keeper of the (11) liveness simulations
        self.tracker = PoolsTracker(self.reader, known=KNOWN, liveness_keeper=r["deployer"])
        self.stats = {"examples": 0, "steps": 0, "txs": 0, "reverted": 0, "checks": 0, "sub_checks": 0,
                      "rules": {}, "tx_kinds": {}, "events": {},
                      "outcomes": {}, "reached": {}}
        self.cover_limit: dict = {}  # segment pool -> max_cover_per_block of this example
        self.published_at = 0
        self.step_budget: int | None = None

    def send(self, kind, sender, to, signature, *args, **meta):
        return self.sender.send(kind, sender, to, signature, *args, **meta)

    def setup(self):
        """Fund every actor once (the base state every example restores to)."""
        u, r, txs = self.unit, self.roles, []
        for a in self.actors:
            txs.append(self.send("mint", a, self.token, "mint(address,uint256)", a, 10**9 * u))
            for spender in [self.vault, *self.pools]:
                txs.append(self.send("approve", a, self.token, "approve(address,uint256)", spender, MAX_UINT))
        collateral = {"maker": 300_000, "trader": 5_000, "other": 25_000, "whale": 1_000_000,
                      "attacker": 2_000, "keeper": 150_000, "keeper2": 150_000}
        for role, amount in collateral.items():
            for seg in self.segments:
                txs.append(self.send("deposit", r[role], self.vault, "deposit(uint256,uint256)", seg, amount * u))
        for seg in self.segments:  # the liveness keeper: can take over any position the machine opens
            txs.append(self.send("deposit", r["deployer"], self.vault, "deposit(uint256,uint256)", seg, 5_000_000 * u))
        # the majors pool and the backstop start funded; the alts pool starts empty (first depositor games)
        txs.append(self.send("pool_deposit", r["lp"], self.pools[0], "deposit(uint256,address)", 50_000 * u, r["lp"]))
        txs.append(self.send("pool_deposit", r["lp"], self.pools[-1], "deposit(uint256,address)", 200_000 * u, r["lp"]))
        bad = [t.kind for t in txs if not t.ok]
        assert not bad, f"setup reverted: {bad}"
        self.published_at = int(self.rpc.request("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)


class BackstopMachine(RuleBasedStateMachine):
    ctx: Ctx = None  # set by the test

    # ------------------------------------------------------------ lifecycle

    @initialize()
    def start(self):
        c = self.ctx
        self.snapshot = None
        if c.step_budget is not None and c.stats["steps"] >= c.step_budget:
            self.done = True
            return
        self.done = False
        self.snapshot = chain.snapshot()
        c.stats["examples"] += 1
        self.price = dict(c.base_price)
        self.txs = []
        self.nonce = 0
        self.orders = []  # (order tuple, signature) of this example, for replays and cancels
        limits = self._calls([(p, "max_cover_per_block()") for p in c.pools[:-1]])
        c.cover_limit = {p: v for p, v in zip(c.pools[:-1], limits)}
        st0, _ = c.reader.read()
        if st0.timestamp - c.published_at > 1800:  # long soak: the base state's feeds would go stale
            self.txs += [self._publish(m) for m in self.price]
        c.tracker.reset(st0)

    def teardown(self):
        if self.snapshot is not None:
            chain.restore(self.snapshot)

    @invariant()
    def check(self):
        if self.done:
            return
        c = self.ctx
        txs, self.txs = self.txs, []
        errors = c.tracker.step(txs)
        self._debug(txs)
        c.stats["checks"] += 1
        self._record(txs)
        assert not errors, "invariant broken after " + ", ".join(t.kind + ("" if t.ok else "(reverted)") for t in txs) + ":\n  " + "\n  ".join(errors)

    def _debug(self, txs):
        """FUZZ_DEBUG=kind,kind: print why transactions of these kinds reverted (replayed)."""
        c = self.ctx
        if os.environ.get("FUZZ_DEBUG"):
            for t in txs:
                if not t.ok and t.kind in os.environ["FUZZ_DEBUG"].split(","):
                    tx = c.rpc.request("eth_getTransactionByHash", [t.hash])
                    try:
                        c.rpc.request("eth_call", [{"from": tx["from"], "to": tx["to"], "data": tx["input"]},
                                                   hex(int(t.receipt["blockNumber"], 16) - 1)])
                        reason = "(no revert on replay)"
                    except Exception as exc:  # noqa: BLE001
                        reason = str(exc)[:160]
                    print(f"[debug] {t.kind} reverted: {reason}")

    def _record(self, txs):
        """Transaction and loss-waterfall event counts of checked transactions."""
        c = self.ctx
        stats, ev = c.stats, c.stats["events"]
        stats["txs"] += len(txs)
        stats["reverted"] += sum(not t.ok for t in txs)
        reached = stats["reached"]

        def reach(name, k=1):
            reached[name] = reached.get(name, 0) + k

        blocks: dict = {}
        for t in txs:
            blocks[t.block] = blocks.get(t.block, 0) + 1
        reach("multi_tx_blocks", sum(1 for n in blocks.values() if n > 1))
        covered: dict = {}  # (block, pool) -> paid by the pool so far
        for t in sorted(txs, key=lambda t: (t.block, int(t.receipt["transactionIndex"], 16))):
            if not t.ok:
                seg = t.meta.get("segment")
                if t.kind == "withdraw" and seg in self.state.cash and self.state.cash[seg][1] > self.state.timestamp:
                    reach("withdraw_while_gated_reverted")
                continue
            logs = parse_logs(t.receipt)
            for lg in logs:
                t0 = lg.topics[0]
                if t0 == T_COVER and lg.address in c.pools[:-1]:
                    requested, by_pool = word_uint(lg.word(0)), word_uint(lg.word(1))
                    if by_pool:
                        reach("pool_cover")
                    key = (t.block, lg.address)
                    covered[key] = covered.get(key, 0) + by_pool
                    limit = c.cover_limit.get(lg.address)
                    if by_pool < requested and limit is not None and limit < MAX_UINT and covered[key] >= limit:
                        reach("cover_limit_hit")
                elif t0 == T_MEMBER_DRAW and lg.address == c.pools[-1] and word_uint(lg.word(1)):
                    reach("backstop_draw")
                elif t0 == T_TOPUP and lg.address == c.pools[-1] and word_uint(lg.word(1)):
                    reach("top_up_paid")
                    if word_uint(lg.word(1)) < word_uint(lg.word(0)):
                        reach("top_up_capped")
                elif t0 == T_REBALANCED and lg.address in c.pools[:-1]:
                    if word_uint(lg.word(0)) + word_uint(lg.word(1)):
                        reach("surplus_out")
                        if word_uint(lg.word(0)) and word_uint(lg.word(1)):
                            reach("surplus_split")
                elif t0 == T_STRESS and lg.address in c.pools[:-1]:
                    reach("stress_on" if word_uint(lg.word(0)) else "stress_off")
                elif t0 == T_TAKEN and lg.address == c.engine:
                    reach("takeover")
                elif t0 == T_MARKED and lg.address == c.liquidator and word_uint(lg.word(2)):
                    reach("mark_loss")
                elif t0 == T_RECLAIMED and lg.address == c.liquidator:
                    reach("reclaim")
                elif t0 == T_LSETTLED and lg.address == c.pools[-1]:
                    reach("liquidator_gain" if word_uint(lg.word(2)) else "liquidator_loss" if word_uint(lg.word(3))
                          else "liquidator_even")
                elif t0 == T_LIQUIDATED and lg.address == c.engine and lg.topic_addr(1) == c.liquidator:
                    reach("unwind")
                elif t0 == T_GATED and lg.address == c.vault:
                    reach("withdrawal_gate")
                elif t0 == T_DELEVERAGED9 and lg.address == c.engine:
                    cp = lg.topic_addr(2)
                    residual = any(x.topics[0] == T_TRANSFERRED and x.address == c.vault and x.topic_addr(1) == cp
                                   for x in logs)
                    reach("adl_residual" if residual else "adl_position")
        for t in txs:
            key = t.kind if t.ok else t.kind + "!"
            stats["tx_kinds"][key] = stats["tx_kinds"].get(key, 0) + 1
            if not t.ok:
                continue
            for lg in parse_logs(t.receipt):
                t0, names = lg.topics[0], []
                if t0 == T_COVER and lg.address in c.pools:
                    names = ["Cover"] + (["Cover.by_backstop"] if word_uint(lg.word(2)) else []) + \
                            (["Cover.unpaid"] if word_uint(lg.word(3)) else [])
                elif t0 == T_MEMBER_DRAW and lg.address == c.pools[-1]:
                    names = ["Draw"] + (["Draw.paid"] if word_uint(lg.word(1)) else []) + \
                            (["Draw.capped"] if word_uint(lg.word(1)) < word_uint(lg.word(0)) else [])
                elif t0 == T_DELEVERAGED9 and lg.address == c.engine:
                    names = ["Deleveraged"] + (["Deleveraged.socialized"] if word_uint(lg.word(3)) else [])
                elif t0 == T_BADDEBT and lg.address == c.vault:
                    names = ["BadDebtCovered"] + (["BadDebtCovered.unpaid"] if word_uint(lg.word(2)) else [])
                elif t0 == T_SETTLED and lg.address == c.engine:
                    names = ["BadDebtSettled"] + (["BadDebtSettled.unpaid"] if word_uint(lg.word(0)) else [])
                elif t0 == T_LIQUIDATED and lg.address == c.engine:
                    names = ["Liquidated"]
                for n in names:
                    ev[n] = ev.get(n, 0) + 1

    def _substep(self):
        """Check the transactions sent so far inside a multi-transaction rule (an extra
        invariant check: later transactions of the rule then start from a checked state)."""
        if not self.txs:
            return
        c = self.ctx
        txs, self.txs = self.txs, []
        errors = c.tracker.step(txs)
        self._debug(txs)
        c.stats["sub_checks"] += 1
        self._record(txs)
        assert not errors, "invariant broken after " + ", ".join(t.kind + ("" if t.ok else "(reverted)") for t in txs) + \
            " (inside a waterfall rule):\n  " + "\n  ".join(errors)

    def _calls(self, calls):
        """eth_call (to, signature, *args) at latest in one batch: ints (None if reverted)."""
        res = self.ctx.rpc.batch([("eth_call", [{"to": to, "data": calldata(sig, *args)}, "latest"]) for to, sig, *args in calls])
        return [None if isinstance(r, RpcError) else int(r[:66], 16) for r in res]

    def _count(self, name):
        stats = self.ctx.stats
        stats["steps"] += 1
        stats["rules"][name] = stats["rules"].get(name, 0) + 1

    # ------------------------------------------------------------ helpers

    @property
    def state(self):
        return self.ctx.tracker.state

    def _publish(self, market_id, answer=None):
        c = self.ctx
        answer = self.price[market_id] // c.feed_scale[market_id] if answer is None else answer
        return c.send("publish", c.roles["deployer"], c.feeds[market_id], "set_answer(int256)", answer)

    def _pick(self, candidates, index, fallback):
        return candidates[index % len(candidates)] if candidates else fallback[index % len(fallback)]

    def _liquidatable(self, seg=None):
        out = []
        for (owner, s), h in self.state.health.items():
            if (seg is None or s == seg) and h[3] > 0 and h[1] < h[3]:
                out.append((owner, s))
        return out

    def _open(self, owner, segment=None):
        c = self.ctx
        return [m.id for m in c.markets if self.state.pos[(owner, m.id)][0] != 0 and (segment is None or m.segment == segment)]

    def _mark(self, market_id):
        return self.price[market_id]

    def _time_travel(self, seconds):
        # the test chain's clock is frozen (tests/conftest.py): time moves only by an explicit timestamp
        head = self.ctx.rpc.request("eth_getBlockByNumber", ["latest", False])
        self.ctx.rpc.request("evm_mine", [int(head["timestamp"], 16) + seconds])

    # ------------------------------------------------------------ collateral

    @rule(who=st.integers(0, 6), seg=st.integers(0, 1), amount=st.integers(0, 200_000), raw=st.booleans())
    def deposit(self, who, seg, amount, raw):
        if self.done:
            return
        self._count("deposit")
        c = self.ctx
        value = amount if raw else amount * c.unit  # raw: dust and zero amounts
        self.txs.append(c.send("deposit", c.traders[who], c.vault, "deposit(uint256,uint256)", c.segments[seg], value))

    @rule(who=st.integers(0, 6), seg=st.integers(0, 1), ppm=st.integers(0, 1_200_000))
    def withdraw(self, who, seg, ppm):
        if self.done:
            return
        self._count("withdraw")
        c = self.ctx
        owner, s = c.traders[who], c.segments[seg]
        amount = max(self.state.coll[(owner, s)], 0) * ppm // 1_000_000
        self.txs.append(c.send("withdraw", owner, c.vault, "withdraw(uint256,uint256)", s, amount, segment=s))

    # ------------------------------------------------------------ orders

    @rule(
        maker=st.integers(0, 6), taker=st.integers(0, 6), market=st.integers(0, 2), buy=st.booleans(),
        size_exp=st.integers(0, 60), price_bps=st.one_of(st.integers(-150, 150), st.integers(-1100, 1100)),
        fill_ppm=st.one_of(st.just(1_000_000), st.integers(1, 1_100_000)),
        variant=st.sampled_from(["plain"] * 8 + ["reduce_only", "expired", "bad_sig", "replay", "cancelled", "stale_order"]),
    )
    def fill(self, maker, taker, market, buy, size_exp, price_bps, fill_ppm, variant):
        if self.done:
            return
        self._count("fill")
        c = self.ctx
        # the maker is usually the market maker; anyone can sign
        maker_addr = c.traders[0] if maker < 3 else c.traders[maker]
        taker_addr = c.traders[taker]
        m = c.markets[market].id
        mark = self._mark(m)
        notional = 10 * WAD * (12**size_exp) // (10**size_exp)  # 10 .. ~560k quote, log-uniform
        size = max(notional * WAD // mark, 1)
        if variant == "reduce_only":
            held = self.state.pos[(maker_addr, m)][0]
            if held != 0:
                size = abs(held) * fill_ppm // 1_000_000 or abs(held)
                buy = held < 0
        price = mark * (10_000 + price_bps) // 10_000
        self.nonce += 1
        expiry = 1 if variant == "expired" else MAX_EXPIRY
        order = (maker_addr, m, size if buy else -size, price, self.nonce + 10**9 * c.stats["examples"], expiry, variant == "reduce_only")
        signature = c.signer.sign(order, c.traders[1] if variant == "bad_sig" else None)
        if variant == "stale_order" and self.orders:
            order, signature = self.orders[fill_ppm % len(self.orders)]
        if variant == "cancelled":
            self.txs.append(c.send("cancel", maker_addr, c.vault, f"cancel({ORDER_TYPE})", order))
        amount = max(abs(order[2]) * min(fill_ppm, 1_100_000) // 1_000_000, 1)
        self.txs.append(c.send("fill", taker_addr, c.vault, f"fill({ORDER_TYPE},bytes,uint256)", order, signature, amount))
        if variant == "replay":
            self.txs.append(c.send("fill", taker_addr, c.vault, f"fill({ORDER_TYPE},bytes,uint256)", order, signature, amount))
        self.orders.append((order, signature))

    # hypothesis picks rules uniformly: two more entry points make trading ~3x as frequent
    @rule(maker=st.integers(0, 6), taker=st.integers(0, 6), market=st.integers(0, 2), buy=st.booleans(),
          size_exp=st.integers(0, 50), price_bps=st.integers(-100, 100))
    def fill_plain(self, maker, taker, market, buy, size_exp, price_bps):
        self.fill(maker, taker, market, buy, size_exp, price_bps, 1_000_000, "plain")

    @rule(maker=st.integers(0, 6), taker=st.integers(0, 6), market=st.integers(0, 2), buy=st.booleans(),
          size_exp=st.integers(20, 55), fill_ppm=st.integers(1, 1_000_000))
    def fill_partial(self, maker, taker, market, buy, size_exp, fill_ppm):
        self.fill(maker, taker, market, buy, size_exp, 0, fill_ppm, "plain")

    @rule(who=st.integers(1, 4), market=st.integers(0, 2), buy=st.booleans(), lev_ppm=st.integers(300_000, 990_000),
          maker=st.sampled_from([0, 3]))
    def open_leveraged(self, who, market, buy, lev_ppm, maker):
        """A trader takes (up to) the most risk IM allows, against the maker or the whale."""
        if self.done:
            return
        self._count("open_leveraged")
        c = self.ctx
        owner, m = c.traders[who], c.markets[market]
        h = self.state.health.get((owner, m.segment))
        if h is None or m.segment in self.state.stale:
            return
        room = (h[1] - h[2]) * 10 * lev_ppm // 10**6  # (equity - IM) / im_ratio, in quote units
        mark = self._mark(m.id)
        size = room * 10**(36 - 6 + 18 - 18) // mark if c.unit == 10**6 else room * WAD // mark
        if size <= 0:
            return
        self.nonce += 1
        counterparty = c.traders[maker]
        order = (counterparty, m.id, -size if buy else size, mark, self.nonce + 10**9 * c.stats["examples"], MAX_EXPIRY, False)
        self.txs.append(c.send("fill", owner, c.vault, f"fill({ORDER_TYPE},bytes,uint256)", order, c.signer.sign(order), size))

    @rule(market=st.integers(0, 2), pick=st.integers(0, 100),
          ratio=st.sampled_from([1.05, 0.95, 0.8, 0.55, 0.4, 0.1, -0.05, -0.3, -1.0]))
    def shock(self, market, pick, ratio):
        """Move a price so that one open account lands at equity = ratio x MM (liquidatable, full-close
        tier, bankrupt, or deep enough that pool + backstop cannot pay)."""
        if self.done:
            return
        self._count("shock")
        c = self.ctx
        m = c.markets[market]
        st_ = self.state
        holders = [a for a in c.traders if st_.pos[(a, m.id)][0] != 0 and (a, m.segment) in st_.health]
        if not holders or m.segment in st_.stale:
            return
        owner = holders[pick % len(holders)]
        coll, equity, im, mm, _ = st_.health[(owner, m.segment)]
        size = st_.pos[(owner, m.id)][0] / WAD
        mark = self._mark(m.id) / WAD
        unit = c.unit
        r = 0.05
        mm_other = mm / unit - abs(size) * mark * r
        # equity(P) = equity + size (P - mark);  MM(P) = mm_other + |size| r P
        denom = size - ratio * abs(size) * r
        if denom == 0:
            return
        price = (ratio * mm_other - equity / unit + size * mark) / denom
        price = min(max(price, mark * 0.3), mark * 3)
        self.price[m.id] = max(int(price * WAD), 10**15)
        self.txs.append(self._publish(m.id))

    @rule(who=st.integers(1, 4), market=st.integers(0, 2), buy=st.booleans(), lev_ppm=st.integers(500_000, 990_000),
          ratio=st.sampled_from([0.95, 0.8, 0.4, 0.1, -0.05, -0.3, -1.0, -3.0]))
    def blowup(self, who, market, buy, lev_ppm, ratio):
        """Open a leveraged position and gap the price against it in the same step."""
        if self.done:
            return
        self.open_leveraged(who, market, buy, lev_ppm, 3)
        self.ctx.stats["steps"] -= 1
        self._count("blowup")
        # re-read positions after the fill so that the shock aims at the new exposure
        c = self.ctx
        c.tracker.state, _ = c.reader.read()
        self.shock(market, who - 1, ratio)
        self.ctx.stats["steps"] -= 1

    @rule(keeper=st.integers(0, 1), size_ppm=st.one_of(st.just(10**6), st.integers(1, 10**6)))
    def keeper_sweep(self, keeper, size_ppm):
        """A keeper liquidates every liquidatable account it sees (several transactions)."""
        if self.done:
            return
        self._count("keeper_sweep")
        c = self.ctx
        first = True
        for owner, seg in self._liquidatable()[:3]:
            for m in self._open(owner, seg)[:2]:
                size = max(abs(self.state.pos[(owner, m)][0]) * size_ppm // 10**6, 1)
                self.txs.append(c.send("liquidate", c.keepers[keeper], c.engine, "liquidate(address,uint256,uint256)",
                                       owner, m, size, owner=owner, segment=seg, prices_moved=not first))
                first = False

    @rule(who=st.integers(0, 2), pool=st.integers(0, 2), when=st.sampled_from(["early", "open", "open", "last", "late"]),
          ppm=st.one_of(st.just(10**6), st.integers(1, 10**6)))
    def redeem_on_time(self, who, pool, when, ppm):
        """Travel to a pending request's window edge (or just outside it) and redeem."""
        if self.done:
            return
        self._count("redeem_on_time")
        c = self.ctx
        holder, p = c.pool_holders[who], c.pools[pool]
        shares, unlock, expires = self.state.request[(p, holder)]
        if shares == 0:  # no request yet: file one now (cooldown 7 d, window 2 d) and use it
            shares = max(self.state.shares[(p, holder)] * ppm // 10**6, 1)
            tx = c.send("request_redeem", holder, p, "request_redeem(uint256)", shares)
            self.txs.append(tx)
            if not tx.ok:
                return
            ts = tx.receipt.get("blockTimestamp")
            ts = int(ts, 16) if isinstance(ts, str) else int(ts)
            cooldown, window = 7 * 86400, 2 * 86400
            unlock, expires = ts + cooldown, ts + cooldown + window
            c.tracker.state.request[(p, holder)] = (shares, unlock, expires)  # seen by the (8) check
        target = {"early": unlock - 2, "open": (unlock + expires) // 2, "last": expires - 1, "late": expires + 1}[when]
        if target - 3 > self.state.timestamp + 1:
            self.ctx.rpc.request("evm_setNextBlockTimestamp", [target - 3])
        self.txs += [self._publish(mid) for mid in self.price]  # blocks target-3 .. target-1
        self.txs.append(c.send("pool_redeem", holder, p, "redeem(uint256,address,address)",
                               max(shares * ppm // 10**6, 1), holder, holder))

    # ------------------------------------------------------------ oracle and time

    @rule(market=st.integers(0, 2), bps=st.one_of(st.integers(-400, 400), st.integers(-3500, 3500)))
    def move_price(self, market, bps):
        """A price update (gaps up to 35%: the dYdX YFI / Mango class of moves)."""
        if self.done:
            return
        self._count("move_price")
        m = self.ctx.markets[market].id
        self.price[m] = max(self.price[m] * (10_000 + bps) // 10_000, 10**15)
        self.txs.append(self._publish(m))

    @rule(market=st.integers(0, 2), bps=st.integers(-2500, 2500), seconds=st.integers(1, 7_200),
          forecast_exp=st.one_of(st.none(), st.integers(30, 64)), duration=st.integers(1, 7 * 86_400))
    def poke_margin(self, market, bps, seconds, forecast_exp, duration):
        """Volatility margin: a new oracle round (after `seconds`), maybe a forecast (any size, even a
        hostile one), then RiskParams.poke. Rule checked here: every account of the segment that met IM
        (equity >= IM) before the poke still has equity >= MM after it (docs/margin.md, rate limit)."""
        if self.done:
            return
        self._count("poke_margin")
        c = self.ctx
        market_ = c.markets[market]
        self._time_travel(seconds)
        self.price[market_.id] = max(self.price[market_.id] * (10_000 + bps) // 10_000, 10**15)
        self.txs.append(self._publish(market_.id))
        if forecast_exp is not None:
            variance = min(2**forecast_exp, 2**64 - 1)  # WAD per second: 1e-9 .. beyond the cap
            self.txs.append(c.send("push_forecast", c.roles["keeper2"], c.risk, "push_forecast(uint256,uint256,uint256)",
                                   market_.id, variance, duration))
        self._substep()
        at_im = [key for key, h in self.state.health.items() if key[1] == market_.segment and h[2] > 0 and h[1] >= h[2]]
        self.txs.append(c.send("poke", c.roles["keeper"], c.risk, "poke(uint256)", market_.id))
        self._substep()
        for key in at_im:
            _, equity, _, mm, _ = self.state.health[key]
            assert equity >= mm, f"poke made {key} liquidatable: equity {equity} < MM {mm} after meeting IM before"
        self.ctx.stats["reached"]["poke_at_im_accounts"] = self.ctx.stats["reached"].get("poke_at_im_accounts", 0) + len(at_im)

    @rule(market=st.integers(0, 2), knee=st.sampled_from([0, 1, 5, 50, 500, 2**16 - 1]))
    def set_size_knee(self, market, knee):
        """The risk admin changes a market's size knee (a timelocked operation on a live network,
        tests/governance): margin of big positions jumps at once; the waterfall must absorb what follows."""
        if self.done:
            return
        self._count("set_size_knee")
        c = self.ctx
        m = c.markets[market].id
        params = list(c.system.lens.market(m))[:8]
        params[7] = knee
        self.txs.append(c.send("set_size_knee", c.roles["deployer"], c.configurator,
                               "set_market_params(uint256,(uint256,uint256,uint256,uint256,uint256,uint256,uint256,uint256))",
                               m, tuple(int(x) for x in params)))

    @rule(market=st.integers(0, 2), bad=st.sampled_from(["zero", "negative", "huge"]))
    def bad_answer(self, market, bad):
        """A feed publishes garbage; every read of it must revert until the next good answer."""
        if self.done:
            return
        self._count("bad_answer")
        m = self.ctx.markets[market].id
        answer = {"zero": 0, "negative": -1, "huge": 10**30}[bad]
        self.txs.append(self._publish(m, answer))

    @rule(seconds=st.integers(3601, 3 * 3600))
    def stale_feeds(self, seconds):
        """Time passes beyond the 3,600 s heartbeat without a publication: feeds go stale."""
        if self.done:
            return
        self._count("stale_feeds")
        self._time_travel(seconds)

    @rule()
    def republish(self):
        if self.done:
            return
        self._count("republish")
        self.txs += [self._publish(m) for m in self.price]

    @rule(seconds=st.one_of(st.integers(1, 900), st.integers(86_400, 10 * 86_400)), publish=st.booleans())
    def time_travel(self, seconds, publish):
        """Auction time (seconds to minutes) or pool time (cooldowns, windows, vesting: days)."""
        if self.done:
            return
        self._count("time_travel")
        self._time_travel(seconds)
        if publish:
            self.txs += [self._publish(m) for m in self.price]

    # ------------------------------------------------------------ keepers

    @rule(keeper=st.integers(0, 1), pick=st.integers(0, 1000), seg=st.integers(0, 1))
    def flag(self, keeper, pick, seg):
        if self.done:
            return
        self._count("flag")
        c = self.ctx
        owner, s = self._pick(self._liquidatable(), pick, [(a, c.segments[seg]) for a in c.traders])
        self.txs.append(c.send("flag", c.keepers[keeper], c.engine, "flag(address,uint256)", owner, s, owner=owner, segment=s))

    @rule(keeper=st.integers(0, 1), pick=st.integers(0, 1000), market=st.integers(0, 2),
          size_ppm=st.one_of(st.just(10**6), st.integers(1, 2 * 10**6)), aim=st.sampled_from(["liquidatable"] * 4 + ["any"]),
          race=st.booleans())
    def liquidate(self, keeper, pick, market, size_ppm, aim, race):
        """Two keepers compete; liquidating a healthy account must revert (invariant 4)."""
        if self.done:
            return
        self._count("liquidate")
        c = self.ctx
        cands = self._liquidatable() if aim == "liquidatable" else []
        owner, seg = self._pick(cands, pick, [(a, c.markets[market].segment) for a in c.traders])
        markets = self._open(owner, seg) or [c.markets[market].id]
        m = markets[market % len(markets)]
        held = abs(self.state.pos[(owner, m)][0])
        size = max(held * size_ppm // 10**6, 1)
        first = c.keepers[keeper]
        self.txs.append(c.send("liquidate", first, c.engine, "liquidate(address,uint256,uint256)", owner, m, size,
                               owner=owner, segment=seg))
        if race:  # the other keeper's transaction lands in the next block
            self.txs.append(c.send("liquidate", c.keepers[1 - keeper], c.engine, "liquidate(address,uint256,uint256)",
                                   owner, m, size, owner=owner, segment=seg, prices_moved=True))

    @rule(keeper=st.integers(0, 1), picks=st.lists(st.integers(0, 1000), min_size=1, max_size=4),
          market=st.integers(0, 2), size_ppm=st.one_of(st.just(10**6), st.integers(1, 2 * 10**6)))
    def liquidate_batch(self, keeper, picks, market, size_ppm):
        """A keeper's batch mixing liquidatable and healthy accounts: it never reverts, and each item it
        closes was liquidatable (invariant 4, checked per Liquidated event)."""
        if self.done:
            return
        self._count("liquidate_batch")
        c = self.ctx
        cands = self._liquidatable()
        items = []
        for pick in picks:
            owner, seg = self._pick(cands, pick, [(a, c.markets[market].segment) for a in c.traders])
            markets = self._open(owner, seg) or [c.markets[market].id]
            m = markets[(pick + market) % len(markets)]
            items.append((owner, m, max(abs(self.state.pos[(owner, m)][0]) * size_ppm // 10**6, 1)))
        self.txs.append(c.send("liquidate_batch", c.keepers[keeper], c.engine,
                               "liquidate_batch((address,uint256,uint256)[])", items))

    @rule(keeper=st.integers(0, 1), pick=st.integers(0, 1000), cpick=st.integers(0, 1000), market=st.integers(0, 2),
          size_ppm=st.integers(1, 2 * 10**6))
    def deleverage(self, keeper, pick, cpick, market, size_ppm):
        if self.done:
            return
        self._count("deleverage")
        c = self.ctx
        st_ = self.state
        # bankrupt with positions (position path) or flat with bad debt (residual path)
        bankrupt = c.tracker.bankrupt(st_)
        owner, seg = self._pick(bankrupt or self._liquidatable(), pick, [(a, c.markets[market].segment) for a in c.traders])
        markets = self._open(owner, seg) or [mk.id for mk in c.markets if mk.segment == seg]
        m = markets[market % len(markets)]
        size = st_.pos[(owner, m)][0]
        if size:
            opposite = [a for a in c.traders if a != owner and st_.pos[(a, m)][0] * size < 0]
        else:  # flat: any position in the market may give up profit
            opposite = [a for a in c.traders if a != owner and st_.pos[(a, m)][0] != 0]
        counterparty = self._pick(opposite, cpick, c.traders)
        amount = max(abs(size) * size_ppm // 10**6, 1)
        self.txs.append(c.send("deleverage", c.keepers[keeper], c.engine, DEL_SIG,
                               owner, m, counterparty, amount, owner=owner, segment=seg, counterparty=counterparty))

    @rule(keeper=st.integers(0, 1), who=st.integers(0, 6), seg=st.integers(0, 1))
    def settle_bad_debt(self, keeper, who, seg):
        if self.done:
            return
        self._count("settle_bad_debt")
        c = self.ctx
        st_ = self.state
        negative = [(a, s) for (a, s), v in st_.coll.items() if v < 0]
        # flat accounts with bad debt first (what settle_bad_debt is for), then any negative one
        flat = [(a, s) for (a, s) in negative if st_.health.get((a, s), (0, 0, 0, 0, 0))[3] == 0
                and not self._open(a, s)]
        owner, s = self._pick(flat or negative, who, [(a, c.segments[seg]) for a in c.traders])
        self.txs.append(c.send("settle", c.keepers[keeper], c.engine, "settle_bad_debt(address,uint256)", owner, s))

    @rule(keeper=st.integers(0, 1), who=st.integers(0, 6), seg=st.integers(0, 1))
    def unflag(self, keeper, who, seg):
        if self.done:
            return
        self._count("unflag")
        c = self.ctx
        flagged = [k for k, v in self.state.flagged.items() if v]
        owner, s = self._pick(flagged, who, [(a, c.segments[seg]) for a in c.traders])
        self.txs.append(c.send("unflag", c.keepers[keeper], c.engine, "unflag(address,uint256)", owner, s))

    @rule(seg=st.integers(0, 1))
    def sweep_fees(self, seg):
        """Fees and penalties become pool income (vesting) and treasury revenue."""
        if self.done:
            return
        self._count("sweep_fees")
        c = self.ctx
        self.txs.append(c.send("sweep", c.roles["keeper"], c.vault, "sweep_fees(uint256)", c.segments[seg]))

    # ------------------------------------------------------------ loss waterfall

    def _outcome(self, depth, what):
        key = f"{depth}:{what}"
        self.ctx.stats["outcomes"][key] = self.ctx.stats["outcomes"].get(key, 0) + 1

    def _best_counterparties(self, owner, market_id):
        """Opposite positions ranked by engine.adl_score (best first; only profitable ones)."""
        c, st_ = self.ctx, self.state
        held = st_.pos[(owner, market_id)][0]
        opposite = [a for a in c.traders if a != owner and st_.pos[(a, market_id)][0] * held < 0]
        if not opposite:
            return []
        scores = self._calls([(c.engine, "adl_score(address,uint256)", a, market_id) for a in opposite])
        ranked = sorted(((sc, a) for sc, a in zip(scores, opposite) if sc), key=lambda x: -x[0])
        return [a for _, a in ranked]

    def _deleverage_all(self, keeper, owner, market_id, rounds=3):
        """ADL: close owner's position against the best-ranked counterparties, one per transaction."""
        c = self.ctx
        for _ in range(rounds):
            held = self.state.pos[(owner, market_id)][0]
            if held == 0:
                return
            ranked = self._best_counterparties(owner, market_id)
            if not ranked:
                return
            tx = c.send("deleverage", c.keepers[keeper], c.engine, DEL_SIG, owner, market_id, ranked[0], abs(held),
                        owner=owner, segment=self._segment_of(market_id),
                        counterparty=ranked[0])
            self.txs.append(tx)
            self._substep()
            if not tx.ok:
                return

    def _segment_of(self, market_id):
        return next(m.segment for m in self.ctx.markets if m.id == market_id)

    def _residual_adl(self, keeper, owner, seg, rounds=3):
        """Residual ADL: a flat account still in deficit takes profit from the best-ranked
        profitable position of its segment (either side), one transaction per round."""
        c = self.ctx
        for _ in range(rounds):
            st_ = self.state
            if st_.coll[(owner, seg)] >= 0 or self._open(owner, seg):
                return
            cands = [(a, m.id) for m in c.markets if m.segment == seg for a in c.traders
                     if a != owner and st_.pos[(a, m.id)][0] != 0]
            if not cands:
                return
            scores = self._calls([(c.engine, "adl_score(address,uint256)", a, mid) for a, mid in cands])
            ranked = sorted(((sc, a, mid) for sc, (a, mid) in zip(scores, cands) if sc), key=lambda x: -x[0])
            if not ranked:
                return
            _, cp, mid = ranked[0]
            tx = c.send("deleverage", c.keepers[keeper], c.engine, DEL_SIG, owner, mid, cp, 1,
                        owner=owner, segment=seg, counterparty=cp)
            self.txs.append(tx)
            self._substep()
            if not tx.ok:
                return

    def _drain(self, pool):
        """The LP redeems all its shares of a pool after the cooldown (leaves it (nearly) empty)."""
        c = self.ctx
        before = self.ctx.stats["rules"].get("redeem_on_time", 0)
        self.redeem_on_time(0, pool, "open", 10**6)
        c.stats["rules"]["redeem_on_time"] = before
        c.stats["steps"] -= 1
        self._substep()

    @rule(who=st.sampled_from([1, 2, 2, 3, 4]), market=st.integers(0, 2), buy=st.booleans(),
          cap=st.sampled_from([20_000, 60_000, 150_000, 400_000, 1_000_000]),
          depth=st.sampled_from(["pool", "backstop", "adl", "adl", "auction"]), frac=st.integers(1, 99),
          drain=st.sampled_from([None, None, None, None, 0, 1, 2]), keeper=st.integers(0, 1))
    def waterfall(self, who, market, buy, cap, depth, frac, drain, keeper, name="waterfall"):
        """A leveraged trader against a well-funded counterparty, a price gap through the bankruptcy
        price aimed at one layer of the loss waterfall (segment pool, backstop draw within its cap,
        ADL beyond both, or an auction that nobody takes), then the keepers: liquidate, and
        deleverage against the best adl_score counterparty when the engine asks for it."""
        if self.done:
            return
        self._count(name)
        c = self.ctx
        m = c.markets[market]
        seg, mid = m.segment, m.id
        owner = c.traders[who]
        counterparty = c.traders[0] if who == 3 else c.traders[3]
        if drain is not None:
            self._drain(drain)
        self.txs += [self._publish(x) for x in self.price]  # fresh feeds (no stale / garbage answer)
        self._substep()
        # 1. open: up to 95% of the IM room, at most `cap` quote notional
        st_ = self.state
        h = st_.health.get((owner, seg))
        if h is None or seg in st_.stale:
            return self._outcome(depth, "stale")
        free = min(h[0], h[1]) - h[2]
        if free * 10 < cap * c.unit // 4:
            # an account left with bad debt (or its margin used up) by an earlier episode: the
            # trader refunds it so that the waterfall can open a position again
            top_up = cap * c.unit // 10 - free
            self.txs.append(c.send("deposit", owner, c.vault, "deposit(uint256,uint256)", seg, top_up))
            self._substep()
            self._outcome(depth, "refunded")
            st_ = self.state
            h = st_.health[(owner, seg)]
        mark = self._mark(mid)
        room = (min(h[0], h[1]) - h[2]) * 10 * 95 // 100
        notional = min(room, cap * c.unit)
        size = notional * (WAD // c.unit) * WAD // mark
        if size > 0:
            self.nonce += 1
            order = (counterparty, mid, -size if buy else size, mark, self.nonce + 10**9 * c.stats["examples"], MAX_EXPIRY, False)
            self.txs.append(c.send("fill", owner, c.vault, f"fill({ORDER_TYPE},bytes,uint256)", order, c.signer.sign(order), size))
            self._substep()
        st_ = self.state
        held = st_.pos[(owner, mid)][0]
        if held == 0 or seg in st_.stale:
            return self._outcome(depth, "no_position")
        # 2. gap the price: equity(P) = E + held (P - mark) / NOTIONAL_SCALE lands at -deficit
        _, equity, _, mm, _ = st_.health[(owner, seg)]
        pool_cap, draw_cap = self._calls([(c.seg_pool[seg], "cover_capacity()"),
                                          (c.pools[-1], "draw_capacity(address)", c.seg_pool[seg])])
        pool_cap, draw_cap = pool_cap or 0, draw_cap or 0
        if depth == "pool":
            target = -(max(pool_cap, 10 * c.unit) * frac // 100)
        elif depth == "backstop":
            target = -(pool_cap + max(draw_cap, 10 * c.unit) * frac // 100)
        elif depth == "adl":
            target = -((pool_cap + draw_cap) * (100 + frac) // 100 + 100 * c.unit)
        else:  # auction: liquidatable, still solvent
            target = mm * frac // 200
        scale = WAD * WAD // c.unit
        price = mark + (target - equity) * scale // held
        price = min(max(price, mark // 50, 10**15), mark * 20)
        self.price[mid] = price
        self.txs.append(self._publish(mid))
        self._substep()
        st_ = self.state
        if seg in st_.stale or st_.pos[(owner, mid)][0] == 0:
            return self._outcome(depth, "gap_failed")
        _, equity, _, mm, _ = st_.health[(owner, seg)]
        if mm == 0 or equity >= mm:
            return self._outcome(depth, "healthy")
        # 3. keepers
        if depth == "auction":
            self.txs.append(c.send("flag", c.keepers[keeper], c.engine, "flag(address,uint256)", owner, seg,
                                   owner=owner, segment=seg))
            self._substep()
            self._time_travel(601 + frac * 3)  # past the 600 s auction: nobody took the position
            self.txs += [self._publish(x) for x in self.price]
            self._substep()
            # the liquidator of last resort first; ADL only if its caps refuse the position
            if self._takeover(keeper, owner, mid, seg):
                self._outcome(depth, "taken_over" if self.state.pos[(owner, mid)][0] == 0 else "taken_part")
            else:
                self._deleverage_all(keeper, owner, mid)
                self._outcome(depth, "adl_closed" if self.state.pos[(owner, mid)][0] == 0 else "adl_open")
        else:
            held = abs(st_.pos[(owner, mid)][0])
            self.txs.append(c.send("liquidate", c.keepers[keeper], c.engine, "liquidate(address,uint256,uint256)",
                                   owner, mid, held, owner=owner, segment=seg))
            self._substep()
            if self.state.pos[(owner, mid)][0] == 0:
                # a bankrupt account is closed at mark too (no "deficit exceeds cover" dead end):
                # the pools pay what they can, the rest stays as negative collateral
                unpaid = self.state.coll[(owner, seg)] < 0 and not self._open(owner, seg)
                self._outcome(depth, "liquidated_unpaid" if unpaid else "liquidated")
            else:
                # the keeper lacked margin (or a partial close): ADL of the position
                self._deleverage_all(1 - keeper, owner, mid)
                self._outcome(depth, "adl_closed" if self.state.pos[(owner, mid)][0] == 0 else "adl_open")
        # 4. a flat account left with bad debt: residual ADL from profitable positions, then
        # the keeper retries the cover
        st_ = self.state
        if st_.coll.get((owner, seg), 0) < 0 and not self._open(owner, seg):
            self._residual_adl(keeper, owner, seg)
            if self.state.coll[(owner, seg)] < 0 and not self._open(owner, seg):
                self._outcome(depth, "residual_left")
                self.txs.append(c.send("settle", c.keepers[keeper], c.engine, "settle_bad_debt(address,uint256)", owner, seg))
            else:
                self._outcome(depth, "residual_paid")

    # a second entry point (hypothesis picks rules uniformly): the deep end, with drained pools more often
    @rule(who=st.sampled_from([2, 3]), market=st.integers(0, 2), buy=st.booleans(),
          cap=st.sampled_from([150_000, 400_000, 1_000_000]), depth=st.sampled_from(["backstop", "adl", "auction"]),
          frac=st.integers(1, 99), drain=st.sampled_from([None, 0, 1, 2]), keeper=st.integers(0, 1))
    def waterfall_deep(self, who, market, buy, cap, depth, frac, drain, keeper):
        self.waterfall(who, market, buy, cap, depth, frac, drain, keeper, "waterfall_deep")

    @rule(pool=st.integers(0, 2))
    def drain_pool(self, pool):
        """The LP leaves a pool (redeem after the cooldown): later bankruptcies need the backstop or ADL."""
        if self.done:
            return
        self._count("drain_pool")
        self._drain(pool)

    # ------------------------------------------------------------ pools

    @rule(who=st.integers(0, 2), pool=st.integers(0, 2), amount_exp=st.integers(0, 40), raw=st.booleans())
    def pool_deposit(self, who, pool, amount_exp, raw):
        """LP deposits into a segment pool (pool 0, 1) or the backstop (pool 2); raw = wei amounts."""
        if self.done:
            return
        self._count("pool_deposit")
        c = self.ctx
        amount = (3**amount_exp) // (10**(amount_exp // 3)) if raw else c.unit * (12**amount_exp) // (10**amount_exp) * 10
        holder = c.pool_holders[who]
        self.txs.append(c.send("pool_deposit", holder, c.pools[pool], "deposit(uint256,address)", max(amount, 0), holder))

    @rule(who=st.integers(0, 2), pool=st.integers(0, 2), ppm=st.integers(0, 1_100_000))
    def request_redeem(self, who, pool, ppm):
        if self.done:
            return
        self._count("request_redeem")
        c = self.ctx
        holder, p = c.pool_holders[who], c.pools[pool]
        shares = self.state.shares[(p, holder)] * ppm // 1_000_000
        self.txs.append(c.send("request_redeem", holder, p, "request_redeem(uint256)", shares))

    @rule(who=st.integers(0, 2), pool=st.integers(0, 2), ppm=st.one_of(st.just(10**6), st.integers(1, 1_100_000)),
          withdraw=st.booleans())
    def redeem(self, who, pool, ppm, withdraw):
        """Redeem shares (or withdraw assets) of the holder's request; only inside the window."""
        if self.done:
            return
        self._count("redeem")
        c = self.ctx
        holder, p = c.pool_holders[who], c.pools[pool]
        requested = self.state.request[(p, holder)][0]
        shares = max(requested * ppm // 1_000_000, 1)
        if withdraw:
            assets = max(self.state.value(p, holder) * min(ppm, 10**6) // 10**6, 1)
            self.txs.append(c.send("pool_withdraw", holder, p, "withdraw(uint256,address,address)", assets, holder, holder))
        else:
            self.txs.append(c.send("pool_redeem", holder, p, "redeem(uint256,address,address)", shares, holder, holder))

    @rule(who=st.integers(0, 2), pool=st.integers(0, 2))
    def cancel_redeem(self, who, pool):
        if self.done:
            return
        self._count("cancel_redeem")
        c = self.ctx
        self.txs.append(c.send("cancel_redeem", c.pool_holders[who], c.pools[pool], "cancel_redeem()"))

    @rule(pool=st.integers(0, 3), amount_exp=st.integers(0, 40))
    def donate(self, pool, amount_exp):
        """The attacker sends tokens straight to a pool (inflation attempt: the price must not move)
        or to the vault (pool 3: no segment's cash may count them, (12))."""
        if self.done:
            return
        self._count("donate")
        c = self.ctx
        amount = (3**amount_exp) // (10 ** (amount_exp // 3)) * c.unit // 10 + 1
        to = c.vault if pool == 3 else c.pools[pool]
        tx = c.send("donate", c.roles["attacker"], c.token, "transfer(address,uint256)", to, amount)
        self.txs.append(tx)
        c.tracker.donate(to, amount)  # a transfer of a funded wallet never reverts

    @rule(which=st.sampled_from(["vault", "engine"]), keeper=st.integers(0, 1), pick=st.integers(0, 1000))
    def pause_blip(self, which, keeper, pick):
        """The guardian pauses the vault or the engine for a moment: with the engine paused,
        liquidation, ADL and flags must revert ((11) dead state (c)); with the vault paused
        (reduce-only mode) they must go on. The admin unpauses in the same step."""
        if self.done:
            return
        self._count("pause_blip")
        c = self.ctx
        target = c.vault if which == "vault" else c.engine
        tx = c.send("pause", c.roles["deployer"], target, "pause()")
        self.txs.append(tx)
        self._substep()
        if not tx.ok:
            return
        try:
            cands = self._burst_candidates(keeper)
            for kind, sender, sig, args, meta in cands[pick % len(cands):][:2] if cands else []:
                self.txs.append(c.send(kind, sender, c.engine, sig, *args, **meta))
            self._substep()
        finally:
            self.txs.append(c.send("unpause", c.roles["deployer"], target, "unpause()"))

    # ------------------------------------------------------------ pools at work (issue 13)

    @rule(pool=st.integers(0, 1), keeper=st.integers(0, 1),
          floor_pct=st.sampled_from([None, None, 0, 0, 50, 90, 100, 101, 150, 400]),
          target_pct=st.sampled_from([None, 0, 60, 60, 90, 99, 99, 100, 120, 300]),
          routing=st.sampled_from([None, None, ("treasury", 0), ("treasury", 5000), ("treasury", 10_000), ("zero", 3000)]),
          sweep=st.booleans())
    def rebalance(self, pool, keeper, floor_pct, target_pct, routing, sweep):
        """The risk admin (sometimes) moves a segment pool's band or its surplus routing, then a keeper
        calls the permissionless rebalance: surplus out above target (unvested income only), top-up
        below the floor (bad debt only, within the member caps), nothing inside the band. `sweep`
        first brings the segment's accrued fees in (vesting income: what a surplus may send out)."""
        if self.done:
            return
        self._count("rebalance")
        c = self.ctx
        p = c.pools[pool]
        if sweep:
            self.txs.append(c.send("sweep", c.roles["keeper"], c.vault, "sweep_fees(uint256)", c.segments[pool]))
            self._substep()
        managed = self.state.pool[p]["managed"]
        admin = c.roles["deployer"]
        if target_pct is not None:
            self.txs.append(c.send("set_band", admin, p, "set_target_size(uint256)", managed * target_pct // 100))
        if floor_pct is not None:
            self.txs.append(c.send("set_band", admin, p, "set_floor_size(uint256)", managed * floor_pct // 100))
        if routing is not None:
            to = c.roles["treasury"] if routing[0] == "treasury" else "0x" + "00" * 20
            self.txs.append(c.send("set_band", admin, p, "set_surplus_routing(address,uint256)", to, routing[1]))
        self._substep()
        self.txs.append(c.send("rebalance", c.keepers[keeper], p, "rebalance()", pool=p))

    @rule(name=st.sampled_from(list(CAPS)))
    def set_takeover_caps(self, name):
        """The risk admin sets the liquidator of last resort's caps (a timelocked operation live)."""
        if self.done:
            return
        self._count("set_takeover_caps")
        c = self.ctx
        self.txs.append(c.send("set_caps", c.roles["deployer"], c.liquidator, "set_caps(uint256,uint256,uint256,uint256)",
                               *CAPS[name]))

    def _takeover(self, keeper, owner, market_id, seg, size=None) -> bool:
        """engine.takeover of (up to `size` of) owner's position; ADL is the caller's business when it
        is refused. A successful takeover must have been of a liquidatable account."""
        c = self.ctx
        held = abs(self.state.pos[(owner, market_id)][0])
        if held == 0:
            return False
        before = self.state.health.get((owner, seg))
        tx = c.send("takeover", c.keepers[keeper], c.engine, TAKEOVER_SIG, owner, market_id, size or held,
                    owner=owner, segment=seg)
        self.txs.append(tx)
        self._substep()
        if tx.ok and before is not None and seg not in self.state.stale:
            assert before[3] > 0 and before[1] < before[3], f"takeover of {owner} with equity {before[1]} >= MM {before[3]}"
        if not tx.ok and os.environ.get("FUZZ_DEBUG"):
            caps = self._calls([(c.liquidator, "caps()")])
            mark = self.price[market_id]
            print(f"[debug] takeover of {held * mark // WAD // c.unit} notional refused: backstop managed "
                  f"{self.state.pool[c.pools[-1]]['managed'] // c.unit}, market cap bps {caps}, "
                  f"liquidator notional {self.state.health[(c.liquidator, seg)][4] // c.unit}")
        self.ctx.stats["outcomes"][f"takeover:{'ok' if tx.ok else 'refused'}"] = \
            self.ctx.stats["outcomes"].get(f"takeover:{'ok' if tx.ok else 'refused'}", 0) + 1
        return tx.ok

    @rule(keeper=st.integers(0, 1), pick=st.integers(0, 1000), wait=st.integers(0, 580),
          size_ppm=st.one_of(st.just(10**6), st.integers(1, 10**6)), early=st.booleans(),
          caps=st.sampled_from([None, None, "generous", "generous", "default"]),
          prep=st.sampled_from([True, True, False]), who=st.sampled_from([1, 2, 4]), market=st.integers(0, 2),
          buy=st.booleans(), frac=st.integers(1, 130))
    def takeover(self, keeper, pick, wait, size_ppm, early, caps, prep, who, market, buy, frac):
        """A liquidatable account whose auction nobody took: flag it (if needed), let the auction
        run out (or not: `early`, which must revert), then the liquidator of last resort (under
        the caps it has, or `caps` set first); if its caps refuse, ADL against the best-ranked
        counterparties. `prep` first opens a position sized at frac % of the liquidator's market
        cap and gaps it into its auction (the waterfall's "auction" depth: takeover, else ADL)."""
        if self.done:
            return
        c = self.ctx
        if caps is not None:
            self.txs.append(c.send("set_caps", c.roles["deployer"], c.liquidator,
                                   "set_caps(uint256,uint256,uint256,uint256)", *CAPS[caps]))
            self._substep()
        if prep:
            (market_bps,) = self._calls([(c.liquidator, "caps()")])
            cap = self.state.pool[c.pools[-1]]["managed"] * (market_bps or 0) // 10_000 * frac // 100 // c.unit
            if cap >= 10:
                return self.waterfall(who, market, buy, cap, "auction", max(frac * 99 // 130, 1), None, keeper,
                                      "takeover")
        self._count("takeover")
        cands = [(o, s) for o, s in self._liquidatable() if o != c.liquidator and o not in c.keepers]
        if not cands:
            owner = c.traders[1 + pick % 4]
            m = c.markets[pick % len(c.markets)]
            self._takeover(keeper, owner, m.id, m.segment)  # nothing to take (or healthy): must revert
            return
        owner, seg = cands[pick % len(cands)]
        mid = self._open(owner, seg)[pick % len(self._open(owner, seg))]
        if not self.state.flagged.get((owner, seg)):
            self.txs.append(c.send("flag", c.keepers[keeper], c.engine, "flag(address,uint256)", owner, seg,
                                   owner=owner, segment=seg))
            self._substep()
        started = self.state.flagged.get((owner, seg))
        if not started:
            return
        target = started + 600 + wait - (300 if early else 0)
        if target > self.state.timestamp + 1:
            self._time_travel(target - self.state.timestamp)
        self.txs += [self._publish(x) for x in self.price]
        self._substep()
        size = max(abs(self.state.pos[(owner, mid)][0]) * size_ppm // 10**6, 1)
        if not self._takeover(keeper, owner, mid, seg, size) and not early:
            self._deleverage_all(keeper, owner, mid)

    @rule(keeper=st.integers(0, 1), action=st.sampled_from(["liquidate", "liquidate", "all", "mark", "reclaim"]),
          pick=st.integers(0, 1000), size_ppm=st.one_of(st.just(10**6), st.integers(1, 10**6)),
          wait=st.sampled_from([0, 0, 60, 300, 600, 1500]),
          bps=st.one_of(st.integers(-1500, 1500), st.integers(-4000, 4000)))
    def unwind(self, keeper, action, pick, size_ppm, wait, bps):
        """Keepers unwind the liquidator's inventory: liquidate its account (open to anyone, no penalty
        while it is healthy, the discount growing from its first unwind), mark it after a move (a loss
        is charged to the backstop at once) and reclaim a flat account (a gain vests as income)."""
        if self.done:
            return
        self._count("unwind")
        c = self.ctx
        L = c.liquidator
        held = [m for m in c.markets if self.state.pos[(L, m.id)][0] != 0]
        if wait:
            self._time_travel(wait)
        if held and bps:
            m = held[pick % len(held)]
            self.price[m.id] = max(self.price[m.id] * (10_000 + bps) // 10_000, 10**15)
        self.txs += [self._publish(x) for x in self.price]
        self._substep()
        if action in ("liquidate", "all") and held:
            rounds = 1 if action == "liquidate" else 40
            for k in range(rounds):
                open_ = [m for m in c.markets if self.state.pos[(L, m.id)][0] != 0]
                if not open_:
                    break
                m = open_[(pick + k) % len(open_)]
                before = self.state.health[(L, m.segment)]
                size = max(abs(self.state.pos[(L, m.id)][0]) * (size_ppm if action == "liquidate" else 10**6) // 10**6, 1)
                tx = c.send("unwind", c.keepers[(keeper + k) % 2], c.engine, LIQ_SIG, L, m.id, size, owner=L,
                            segment=m.segment)
                self.txs.append(tx)
                self._substep()
                if not tx.ok:
                    break
                healthy = before[1] >= before[3]
                for lg in parse_logs(tx.receipt):
                    if lg.address == c.engine and lg.topics[0] == T_LIQUIDATED and healthy:
                        assert word_uint(lg.word(4)) == 0, f"unwind of a healthy liquidator paid penalty {word_uint(lg.word(4))}"
        # after the move (and an unwind), a keeper marks what is booked: a loss is charged at once
        if action in ("mark", "all", "reclaim", "liquidate"):
            fn = "mark(address,uint256)" if action in ("mark", "liquidate") else "reclaim(address,uint256)"
            for seg in c.segments:
                if fn.startswith("mark") and not self.state.extra[("book", seg)] and (pick % 3 or action != "mark"):
                    continue  # mostly where something is booked (a mark of nothing must revert)
                self.txs.append(c.send(fn.split("(")[0], c.keepers[keeper], L, fn, c.vault, seg))
            self._substep()

    # ------------------------------------------------------------ several transactions per block

    @rule(pool=st.integers(0, 1), limit=st.sampled_from([0, 1, 1_000, 10_000, 50_000, None]))
    def set_cover_limit(self, pool, limit):
        """Risk admin sets a segment pool's per-block cover limit (None: no limit)."""
        if self.done:
            return
        self._count("set_cover_limit")
        c = self.ctx
        p = c.pools[pool]
        amount = MAX_UINT if limit is None else limit * c.unit
        tx = c.send("set_cover_limit", c.roles["deployer"], p, "set_max_cover_per_block(uint256)", amount)
        self.txs.append(tx)
        if tx.ok:
            c.cover_limit[p] = amount

    def _burst_candidates(self, keeper):
        """Waterfall / keeper transactions that make sense now: (kind, sender, signature, args, meta)."""
        c, st_ = self.ctx, self.state
        out = []
        for owner, seg in self._liquidatable():
            for m in self._open(owner, seg):
                if owner in c.keepers:
                    continue
                for k in (keeper, 1 - keeper):  # two keepers racing inside one block
                    out.append(("liquidate", c.keepers[k], LIQ_SIG, (owner, m, abs(st_.pos[(owner, m)][0])),
                                dict(owner=owner, segment=seg)))
        for owner, seg in c.tracker.bankrupt(st_):
            if not self._open(owner, seg):
                out.append(("settle", c.keepers[keeper], "settle_bad_debt(address,uint256)", (owner, seg), {}))
                for m in c.markets:
                    if m.segment != seg:
                        continue
                    for a in c.traders:
                        if a != owner and st_.pos[(a, m.id)][0] != 0:
                            out.append(("deleverage", c.keepers[1 - keeper], DEL_SIG, (owner, m.id, a, 1),
                                        dict(owner=owner, segment=seg, counterparty=a)))
                            break
        return out

    @rule(keeper=st.integers(0, 1), n=st.integers(2, 4), prep=st.sampled_from([True, True, False]),
          market=st.integers(0, 2), buy=st.booleans(), frac=st.integers(1, 99), pick=st.integers(0, 1000),
          limit=st.sampled_from([None, None, 0, 2_000, 20_000]))
    def block_burst(self, keeper, n, prep, market, buy, frac, pick, limit):
        """2-4 waterfall / keeper transactions in ONE block (Anvil automine off, then evm_mine):
        several covers of one pool land in the same block and meet its per-block cover limit.
        `prep` first opens two leveraged traders on the same side and gaps the price through
        their bankruptcy prices (the first one's deficit at frac % of the pool's reach)."""
        if self.done:
            return
        self._count("block_burst")
        c = self.ctx
        m = c.markets[market]
        seg, mid = m.segment, m.id
        if limit is not None:
            p = c.seg_pool[seg]
            tx = c.send("set_cover_limit", c.roles["deployer"], p, "set_max_cover_per_block(uint256)", limit * c.unit)
            self.txs.append(tx)
            if tx.ok:
                c.cover_limit[p] = limit * c.unit
        if prep and len(self._burst_candidates(keeper)) < 2:
            self.txs += [self._publish(x) for x in self.price]
            self._substep()
            owners = [c.traders[1], c.traders[2]]
            for owner in owners:
                h = self.state.health[(owner, seg)]
                if seg in self.state.stale:
                    break
                notional = min((min(h[0], h[1]) - h[2]) * 10 * 95 // 100, 60_000 * c.unit)
                size = notional * (WAD // c.unit) * WAD // self._mark(mid)
                if size <= 0:
                    continue
                self.nonce += 1
                order = (c.traders[3], mid, -size if buy else size, self._mark(mid), self.nonce + 10**9 * c.stats["examples"],
                         MAX_EXPIRY, False)
                self.txs.append(c.send("fill", owner, c.vault, f"fill({ORDER_TYPE},bytes,uint256)", order, c.signer.sign(order), size))
            self._substep()
            st_ = self.state
            held = st_.pos[(owners[0], mid)][0]
            if held and seg not in st_.stale:
                _, equity, _, _, _ = st_.health[(owners[0], seg)]
                (reach,) = self._calls([(c.seg_pool[seg], "max_cover()")])
                target = -(max(reach or 0, 10 * c.unit) * frac // 100)
                price = self._mark(mid) + (target - equity) * (WAD * WAD // c.unit) // held
                self.price[mid] = min(max(price, self._mark(mid) // 50, 10**15), self._mark(mid) * 20)
                self.txs.append(self._publish(mid))
                self._substep()
        cands = self._burst_candidates(keeper)
        if not cands:
            return
        chosen = [cands[(pick + k) % len(cands)] for k in range(min(n, max(len(cands), 2)))]
        rpc = c.rpc
        nonces: dict = {}
        rpc.request("evm_setAutomine", [False])
        try:
            sent = []
            for kind, sender, sig, args, meta in chosen:
                if sender not in nonces:
                    nonces[sender] = int(rpc.request("eth_getTransactionCount", [sender, "pending"]), 16)
                sent.append(c.sender.send_nowait(kind, sender, c.engine, sig, *args, nonce=nonces[sender], **meta))
                nonces[sender] += 1
            rpc.request("evm_mine", [])
        finally:
            rpc.request("evm_setAutomine", [True])
        self.txs += sent


MIN_CI_STEPS = 5_000  # issue 6: the ci profile inside make test runs at least this many steps


def test_stateful_fuzz(system, rpc, deployer, maker, trader, keeper, lp, attacker, treasury, other, keeper2, whale,
                       accounts, request):
    roles = dict(deployer=deployer, maker=maker, trader=trader, keeper=keeper, lp=lp, attacker=attacker,
                 treasury=treasury, other=other, keeper2=keeper2, whale=whale)
    keys = {a.address: bytes.fromhex(a.private_key[2:] if a.private_key.startswith("0x") else a.private_key)
            for a in (maker, trader, other, whale, attacker, keeper, keeper2)}
    # volatility margin on every market (rules poke_margin / set_size_knee); a copy of the session System, so the
    # deployment, rolled back with this test, never leaks into the session object other tests share
    risk = deploy_risk_params(system, deployer)
    risk.grantRole(risk.FORECASTER_ROLE(), keeper2, sender=deployer)
    ctx = Ctx(replace(system, risk=risk), rpc, roles, keys)
    examples, steps = budget()
    if os.environ.get("FUZZ_STEPS"):
        ctx.step_budget = int(os.environ["FUZZ_STEPS"])
    t0 = time.perf_counter()
    ctx.setup()
    BackstopMachine.ctx = ctx
    run_settings = settings(
        max_examples=examples, stateful_step_count=steps, deadline=None, database=None,
        suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
    )
    try:
        run_state_machine_as_test(BackstopMachine, settings=run_settings)
    finally:
        elapsed = time.perf_counter() - t0
        s = ctx.stats
        rate = s["steps"] / elapsed if elapsed else 0
        summary = (
            f"[fuzz] profile={os.environ.get('HYPOTHESIS_PROFILE', 'ci')} examples={s['examples']} "
            f"steps={s['steps']} txs={s['txs']} reverted={s['reverted']} invariant_checks={s['checks']} "
            f"elapsed={elapsed:.1f}s steps/s={rate:.1f} rpc_round_trips={rpc.calls}"
        )
        print("\n" + summary)
        # also past pytest's capture, so CI logs show steps and steps/s
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("\n" + summary)
        print("[fuzz] rules: " + ", ".join(f"{k}={v}" for k, v in sorted(s["rules"].items())))
        print("[fuzz] waterfall: " + ", ".join(f"{k}={v}" for k, v in sorted(s["events"].items()))
              + f" (events of successful txs; sub_checks={s['sub_checks']})")
        reached = dict(s["reached"])
        for k, v in ctx.tracker.counts.items():
            reached[k] = v
        print("[fuzz] reached: " + ", ".join(f"{k}={v}" for k, v in sorted(reached.items())))
        print("[fuzz] waterfall outcomes: " + ", ".join(f"{k}={v}" for k, v in sorted(s["outcomes"].items())))
        print("[fuzz] transactions (! = reverted): " + ", ".join(f"{k}={v}" for k, v in sorted(s["tx_kinds"].items())))
        if ctx.tracker.tolerated:
            print(f"[fuzz] known issues tolerated: {ctx.tracker.tolerated}")
    assert s["checks"] >= s["steps"], "an invariant check must follow every step"
    if budget() == (CI_EXAMPLES, CI_STEPS) and "FUZZ_STEPS" not in os.environ:
        assert s["steps"] >= MIN_CI_STEPS, f"ci profile ran only {s['steps']} steps"
