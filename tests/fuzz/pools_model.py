"""The fuzzer's invariants of "pools at work" (issue 13), on top of backstop.sim.model's Tracker.

backstop.sim.model mirrors the member-keyed backstop (Draw by member, TopUp, Rebalanced, the
liquidator's lending and settlement, its margin accounts as an actor's). This module reads the
rebalancing and liquidator views as well and checks, after every step:

  - (14) the liquidator: backstop.deployed() == Σ liquidator.book over its accounts; the
    liquidator contract keeps no tokens between steps; LiquidatorSettled's gain/loss are
    returned - released; a mark only charges a loss (book - max(equity, 0)), never books a gain;
  - (15) rebalancing: refillable == its mirror (+ what cover paid, - what top-ups brought); a
    top-up asks at most refillable, gets at most what it asked, and the pool receives exactly
    what the backstop's TopUp paid; only rebalance tops up; a surplus never exceeds the
    unvested income it leaves from and is split by surplus_backstop_bps (all to the backstop
    without a treasury); never a surplus and a top-up at once; in a step of rebalances only
    with no time passing, no segment pool's totalAssets moves (the surplus is unvested income,
    a top-up vests);
  - (16) the Stress event fires on each flip of the stress flag and only then (the events of a
    step alternate from the flag before it and end at the flag after it), and after a
    rebalance the flag is exactly managed assets < floor;
  - (9') a member-keyed backstop Draw pays at most what was requested.
"""

from __future__ import annotations

from eth_abi import encode

from backstop.core.abi import address_of, selector, topic, word_int, word_uint
from backstop.sim.model import T_COVER, T_INCOME, Reader, RpcError, State, Tracker, parse_logs

T_MEMBER_DRAW = topic("Draw(address,uint256,uint256,address)")
T_TOPUP = topic("TopUp(address,uint256,uint256)")
T_REBALANCED = topic("Rebalanced(uint256,uint256,uint256,uint256)")
T_LSETTLED = topic("LiquidatorSettled(address,uint256,uint256,uint256,uint256)")
T_STRESS = topic("Stress(bool,uint256,uint256,uint256)")
T_TAKEN = topic("TakenOver(address,uint256,address,uint256,uint256,uint256,address)")
T_MARKED = topic("Marked(address,uint256,uint256,int256,uint256)")
T_RECLAIMED = topic("Reclaimed(address,uint256,uint256,uint256)")
BPS = 10_000
ZERO = "0x0000000000000000000000000000000000000000"


class PoolsReader(Reader):
    """Reader + the rebalancing and liquidator views (State.extra)."""

    def __init__(self, rpc, system, actors, **kw):
        super().__init__(rpc, system, actors, **kw)  # lists the liquidator among the actors
        self.extra_calls = []
        for p in self.pools.values():
            for name in ("refillable", "floor_size", "target_size", "stressed", "unvested_income",
                         "surplus_backstop_bps", "treasury"):
                self.extra_calls.append(((name, p), p, selector(f"{name}()")))
        self.extra_calls.append((("deployed", self.backstop), self.backstop, selector("deployed()")))
        self.extra_calls.append((("unvested_income", self.backstop), self.backstop, selector("unvested_income()")))
        if self.liquidator:
            book = selector("book(address,uint256)")
            for seg in self.segments.values():
                self.extra_calls.append((("book", seg), self.liquidator,
                                         book + encode(["address", "uint256"], [self.vault, seg])))
            self.extra_calls.append((("inventory",), self.liquidator, selector("inventory()")))

    def read(self, block=None, prefix=()):
        tag = "latest" if block is None else hex(block)
        extra = [("eth_call", [{"to": to, "data": "0x" + data.hex()}, tag]) for _, to, data in self.extra_calls]
        st, pre = super().read(block, list(prefix) + extra)
        n = len(prefix)
        values = {}
        for (key, _, _), res in zip(self.extra_calls, pre[n:]):
            if isinstance(res, RpcError):
                raise AssertionError(f"view reverted: {key}: {res}")
            raw = bytes.fromhex(res[2:])
            if key[0] == "treasury":
                values[key] = address_of("0x" + raw[12:32].hex())
            elif key[0] == "inventory":
                values[key] = (word_uint(raw[:32]), word_uint(raw[32:64]), word_uint(raw[64:96]))
            else:
                values[key] = word_uint(raw[:32])
        st.extra = values
        return st, pre[:n]


class PoolsTracker(Tracker):
    """Tracker + the invariants (14)-(16) of rebalancing and the liquidator of last resort."""

    def __init__(self, reader: PoolsReader, **kw):
        super().__init__(reader, **kw)
        self.seg_pools = list(reader.pools.values())

    def reset(self, st: State):
        super().reset(st)
        self.refillable = {p: st.extra[("refillable", p)] for p in self.seg_pools}

    def _apply_and_check(self, old: State, new: State, txs: list) -> list[str]:
        r = self.r
        errors: list[str] = []
        stress: dict[str, list[bool]] = {p: [] for p in self.seg_pools}
        income_in = {p: 0 for p in self.seg_pools}  # income vested into each pool in this step
        kinds = set()
        for t in txs:
            if not t.ok:
                continue
            kinds.add(t.kind)
            topups: dict[str, int] = {}
            for lg in parse_logs(t.receipt):
                t0 = lg.topics[0]
                if lg.address == r.backstop:
                    if t0 == T_MEMBER_DRAW and word_uint(lg.word(1)) > word_uint(lg.word(0)):
                        errors.append(f"(9') backstop Draw paid {word_uint(lg.word(1))} > requested {word_uint(lg.word(0))}")
                    elif t0 == T_TOPUP:
                        member, requested, paid = lg.topic_addr(1), word_uint(lg.word(0)), word_uint(lg.word(1))
                        topups[member] = topups.get(member, 0) + paid
                        if paid > requested:
                            errors.append(f"(15) TopUp paid {paid} > requested {requested}")
                        if member in self.refillable and requested > self.refillable[member]:
                            errors.append(f"(15) top-up of {member} asked {requested} > refillable {self.refillable[member]}")
                        if t.kind != "rebalance":
                            errors.append(f"(15) TopUp in a {t.kind} transaction")
                    elif t0 == T_LSETTLED:
                        released, returned, gain, loss = (word_uint(lg.word(k)) for k in range(4))
                        if (gain, loss) != (max(returned - released, 0), max(released - returned, 0)):
                            errors.append(f"(14) LiquidatorSettled gain/loss {gain}/{loss} for released {released}, "
                                          f"returned {returned}")
                elif lg.address in self.refillable:
                    p = lg.address
                    if t0 == T_COVER:
                        self.refillable[p] += word_uint(lg.word(1))
                    elif t0 == T_INCOME:
                        income_in[p] += word_uint(lg.word(0)) - word_uint(lg.word(1))
                    elif t0 == T_REBALANCED:
                        to_backstop, to_treasury, received = (word_uint(lg.word(k)) for k in range(3))
                        out = to_backstop + to_treasury
                        self.refillable[p] -= received
                        if received != topups.get(p, 0):
                            errors.append(f"(15) pool {p} received {received}, the backstop's TopUp paid {topups.get(p, 0)}")
                        if out and received:
                            errors.append(f"(15) pool {p} sent a surplus and took a top-up in one rebalance")
                        if out > old.extra[("unvested_income", p)] + income_in[p]:
                            errors.append(f"(15) surplus {out} of {p} > its unvested income "
                                          f"{old.extra[('unvested_income', p)]} (+{income_in[p]} this step)")
                        treasury, bps = new.extra[("treasury", p)], new.extra[("surplus_backstop_bps", p)]
                        want = out if treasury == ZERO else out * bps // BPS
                        if to_backstop != want:
                            errors.append(f"(15) surplus {out} of {p} split {to_backstop}/{to_treasury}, "
                                          f"expected {want} to the backstop (bps {bps}, treasury {treasury})")
                    elif t0 == T_STRESS:
                        stress[p].append(word_uint(lg.word(0)) == 1)
                elif lg.address == r.liquidator and t0 == T_MARKED:
                    book, equity, loss = word_uint(lg.word(0)), word_int(lg.word(1)), word_uint(lg.word(2))
                    if loss != (book - max(equity, 0) if equity < book else 0):
                        errors.append(f"(14) mark of book {book} at equity {equity} charged {loss}")
        errors += super()._apply_and_check(old, new, txs)
        ex_old, ex = old.extra, new.extra
        # (14) the liquidator's book
        if r.liquidator:
            booked = sum(ex[("book", s)] for s in r.segments.values())
            if booked != ex[("deployed", r.backstop)]:
                errors.append(f"(14) Σ liquidator book {booked} != backstop deployed {ex[('deployed', r.backstop)]}")
            if new.bal.get(r.liquidator, 0) != 0:
                errors.append(f"(14) the liquidator holds {new.bal[r.liquidator]} tokens between steps")
        # (15) refillable mirror; rebalances alone move no segment pool's totalAssets
        for p in self.seg_pools:
            if ex[("refillable", p)] != self.refillable[p]:
                errors.append(f"(15) pool {p} refillable {ex[('refillable', p)]} != mirror {self.refillable[p]}")
        if kinds and kinds <= {"rebalance"} and old.timestamp == new.timestamp:
            for p in self.seg_pools:
                if new.pool[p]["total"] != old.pool[p]["total"]:
                    errors.append(f"(15) rebalance moved totalAssets of {p}: {old.pool[p]['total']} -> {new.pool[p]['total']}")
        # (16) Stress on each flip, and only then
        for p, flips in stress.items():
            before, after = ex_old[("stressed", p)] == 1, ex[("stressed", p)] == 1
            expected = [not before if k % 2 == 0 else before for k in range(len(flips))]
            if flips != expected or after != (flips[-1] if flips else before):
                errors.append(f"(16) pool {p} Stress events {flips} from flag {before} to {after}")
        ok = [t for t in txs if t.ok]
        if ok:
            last = max(ok, key=lambda t: (t.block, int(t.receipt["transactionIndex"], 16)))
            if last.kind == "rebalance":
                p = last.meta["pool"]
                below = new.pool[p]["managed"] < ex[("floor_size", p)]
                if (ex[("stressed", p)] == 1) != below:
                    errors.append(f"(16) after rebalance {p} stressed={ex[('stressed', p)]} but managed "
                                  f"{new.pool[p]['managed']} vs floor {ex[('floor_size', p)]}")
        return errors
