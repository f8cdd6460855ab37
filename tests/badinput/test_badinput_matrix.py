"""Bad-input matrix: every external state-changing function of MarginVault, Configurator,
LiquidationEngine, InsurancePool, BackstopPool and OracleAdapter (plus the oracle's price
read) called with zero / max-uint amounts, int256 extremes, wrong roles, unknown segment or
market ids, expired or forged signatures and paused state.

Each case asserts the exact revert reason AND that the quote-token balances of the vault, the
pools, the backstop and the caller are unchanged. Cases whose id starts with `regression-`
are findings: the call reverts (no value moves) but without a reason string where a clear one
is expected; they fail until the contract gives the reason (see the report / `finding`).
`test_findings_still_revert_without_moving_value` pins the safety half of those cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import ape
import pytest
from ape import chain, project

from backstop.client.actors import fund, signed_order, trade
from backstop.core.orders import build_order, sign_order
from backstop.core.units import WAD, quote, wad

MAX = 2**256 - 1
I_MIN = -(2**255)
I_MAX = 2**255 - 1
ZERO = "0x0000000000000000000000000000000000000000"
ROLE_MISSING = "access_control: account is missing role"
PAUSED = "pausable: contract is paused"
NOT_PAUSED = "pausable: contract is not paused"


class World:
    """Everything a case's args builder may need, built once per module."""

    def __init__(self, system, accounts):
        self.system = system
        self.vault, self.engine, self.oracle = system.vault, system.engine, system.oracle
        self.configurator, self.lens = system.configurator, system.lens
        self.token, self.backstop = system.token, system.backstop
        self.pool = system.pools["majors"]
        self.alts_pool = system.pools["alts"]
        self.liquidator = system.liquidator  # the backstop's liquidator of last resort
        self.accounts = accounts
        names = ["deployer", "maker", "trader", "keeper", "lp", "attacker", "treasury", "other"]
        self.acct = {n: accounts[i] for i, n in enumerate(names)}
        self.eth = system.markets["ETH-PERP"].id
        self.btc = system.markets["BTC-PERP"].id
        self.sol = system.markets["SOL-PERP"].id
        self.majors, self.alts = system.segments["majors"], system.segments["alts"]
        self.orders: dict[str, Any] = {}

    def __getattr__(self, name):  # w.maker, w.attacker, ...
        acct = self.__dict__.get("acct", {})
        if name in acct:
            return acct[name]
        raise AttributeError(name)

    def o(self, name):
        order = self.orders[name]
        return order.as_tuple()

    def sig(self, name):
        return self.orders[name].signature

    def params(self, **over):
        base = dict(segment=0, im_ratio=wad("0.1"), mm_ratio=wad("0.05"), taker_fee_bps=5, maker_fee_bps=0,
                    price_band_bps=1000, max_open_interest=10_000_000, size_knee=0)
        base.update(over)
        return tuple(base.values())

    def liq(self, **over):
        base = dict(close_factor=wad("0.25"), full_close_tier=wad("0.5"), auction_start_discount=0,
                    auction_max_discount=wad("0.05"), liquidation_penalty=wad("0.01"), auction_duration=600,
                    min_liquidation_notional=100 * 10**6, keeper_fee_floor=2 * 10**6)
        base.update(over)
        return tuple(base.values())

    def price(self, market_label: str, p) -> None:
        m = self.system.markets[market_label]
        m.feed.set_answer(int(wad(p) * 10**m.spec.feed_decimals // WAD), sender=self.deployer)

    def impersonate(self, address, accounts):
        acct = accounts[address]
        acct.balance = 10**20
        return acct


@pytest.fixture(scope="module")
def w(system, accounts, deployer, maker, trader, keeper, lp, attacker, treasury, other):
    w = World(system, accounts)
    usd = lambda x: quote(x, system.decimals)  # noqa: E731
    fund(system, maker, w.majors, usd(100_000))
    fund(system, trader, w.majors, usd(100_000))
    fund(system, keeper, w.majors, usd(100_000))
    fund(system, other, w.majors, usd(4_000))
    trade(system, maker, other, w.eth, wad(10), wad(3000))  # maker long 10, other short 10 (4,000)
    for target, amount in ((w.pool, usd(50_000)), (w.backstop, usd(50_000))):
        system.token.mint(lp, amount, sender=lp)
        system.token.approve(target, amount, sender=lp)
        target.deposit(amount, lp, sender=lp)
    w.pool.request_redeem(int(w.pool.balanceOf(lp)) // 2, sender=lp)  # cooling down
    system.token.mint(attacker, usd(1_000), sender=attacker)  # a wallet, no approvals
    chain_id, vault = chain.chain_id, system.vault.address
    so = lambda **kw: signed_order(system, maker, **kw)  # noqa: E731
    w.orders = {
        "good": so(market=w.eth, size=wad(1), price=wad(3000)),
        "partial": so(market=w.eth, size=wad(2), price=wad(3000)),
        "cancelled": so(market=w.eth, size=wad(1), price=wad(3000)),
        "expired": so(market=w.eth, size=wad(1), price=wad(3000), expiry=int(chain.blocks.head.timestamp) - 1),
        "zero": so(market=w.eth, size=0, price=wad(3000)),
        "int_min": so(market=w.eth, size=I_MIN, price=wad(3000)),
        "int_max": so(market=w.eth, size=I_MAX, price=wad(3000)),
        "price_max": so(market=w.eth, size=wad(1), price=MAX),
        "price_zero": so(market=w.eth, size=wad(1), price=0),
        "price_far": so(market=w.eth, size=wad(1), price=wad(4000)),
        "unknown_market": so(market=99, size=wad(1), price=wad(3000)),
        "reduce_bad": so(market=w.eth, size=wad(1), price=wad(3000), reduce_only=True),
        "oi_cap": so(market=w.eth, size=-wad(10_000_100), price=wad(3000)),
        "too_big": so(market=w.eth, size=wad(100), price=wad(3000)),
        "forged": sign_order(attacker, build_order(maker=maker.address, market=w.eth, size=wad(1), price=wad(3000),
                                                   nonce=424242, chain_id=chain_id, vault=vault)),
    }
    system.vault.fill(w.o("partial"), w.sig("partial"), wad(1), sender=trader)
    system.vault.cancel(w.o("cancelled"), sender=maker)
    w.feed37 = project.MockAggregator.deploy(37, "wide", 10**37, sender=deployer)
    w.feed8 = project.MockAggregator.deploy(8, "ok", 10**8, sender=deployer)
    return w


@dataclass
class Case:
    id: str
    contract: str  # attribute of World: vault, engine, pool, backstop, oracle
    fn: str
    args: Callable[[World], tuple]
    sender: str  # role name in World.acct, or "as:<contract attr>" for an impersonated contract
    reason: str
    setup: Callable[[World], None] | None = None
    finding: str | None = None
    kwargs: dict = field(default_factory=dict)


def _pause(attr):
    return lambda w: getattr(w, attr).pause(sender=w.deployer)


def _grant(attr, role, who="deployer"):
    def setup(w):
        c = getattr(w, attr)
        c.grantRole(getattr(c, role)(), w.acct[who], sender=w.deployer)
    return setup


def _stale(w):
    chain.mine(1, timestamp=int(chain.blocks.head.timestamp) + 3601)


def _answer(value, updated_delta=0):
    def setup(w):
        feed = w.system.markets["ETH-PERP"].feed
        feed.set_round(value, int(chain.blocks.head.timestamp) + updated_delta, sender=w.deployer)
    return setup


def _price(label, p):
    return lambda w: w.price(label, p)


def _auction_over(w):
    """`other` (short 10 ETH) liquidatable at 3,300, flagged, and its whole auction run out."""
    w.price("ETH-PERP", 3300)
    flagged = w.engine.flag(w.other, w.majors, sender=w.keeper).timestamp
    chain.mine(1, timestamp=flagged + int(w.engine.params().auction_duration))


def _fill_members(w):
    """Register members up to MAX_MEMBERS (the two segment pools are members already)."""
    for i in range(int(w.backstop.MAX_MEMBERS()) - int(w.backstop.member_count())):
        w.backstop.set_member(f"0x{i + 1:040x}", 1, sender=w.deployer)


def _lend_to_liquidator(w):
    """The liquidator borrows 1 unit of the backstop: it now holds assets (deployed > 0)."""
    w.backstop.fund_liquidator(1, sender=w.impersonate(w.liquidator.address, w.accounts))


B = lambda *a: (lambda w: a)  # noqa: E731  fixed args

CASES: list[Case] = [
    # ------------------------------------------------------------------ MarginVault: raw setters (Configurator only)
    *[Case(f"vault.{fn}/{who}", "vault", fn, args, who, ROLE_MISSING) for who in ("attacker", "deployer")
      for fn, args in (("add_segment", B()), ("set_market_config", lambda w: (w.eth, 1 << 8)),
                       ("set_segment_pool", lambda w: (0, w.pool)), ("set_fee_routing", lambda w: (w.attacker, 0)))],
    # ------------------------------------------------------------------ Configurator
    Case("configurator.grantRole/attacker", "configurator", "grantRole",
         lambda w: (w.configurator.RISK_ADMIN_ROLE(), w.attacker), "attacker", ROLE_MISSING),
    Case("configurator.revokeRole/attacker", "configurator", "revokeRole",
         lambda w: (w.configurator.RISK_ADMIN_ROLE(), w.deployer), "attacker", ROLE_MISSING),
    Case("configurator.renounceRole/other-account", "configurator", "renounceRole",
         lambda w: (w.configurator.RISK_ADMIN_ROLE(), w.deployer), "attacker",
         "access_control: can only renounce roles for itself"),
    Case("configurator.add_segment/attacker", "configurator", "add_segment", B("x"), "attacker", ROLE_MISSING),
    Case("configurator.add_market/attacker", "configurator", "add_market", lambda w: ("X", 0, w.params()), "attacker", ROLE_MISSING),
    Case("configurator.add_market/unknown-segment", "configurator", "add_market", lambda w: ("X", 99, w.params()), "deployer",
         "configurator: unknown segment"),
    Case("configurator.add_market/segment-maxuint", "configurator", "add_market", lambda w: ("X", MAX, w.params()), "deployer",
         "configurator: unknown segment"),
    Case("configurator.add_market/no-feed", "configurator", "add_market", lambda w: ("X", 0, w.params()), "deployer",
         "configurator: market has no feed"),
    Case("configurator.set_market_params/attacker", "configurator", "set_market_params", lambda w: (w.eth, w.params()), "attacker",
         ROLE_MISSING),
    Case("configurator.set_market_params/unknown-market", "configurator", "set_market_params", lambda w: (99, w.params()),
         "deployer", "vault: unknown market"),
    Case("configurator.set_market_params/market-maxuint", "configurator", "set_market_params", lambda w: (MAX, w.params()),
         "deployer", "vault: unknown market"),
    Case("configurator.set_market_params/mm-zero", "configurator", "set_market_params", lambda w: (w.eth, w.params(mm_ratio=0)),
         "deployer", "configurator: bad margin ratios"),
    Case("configurator.set_market_params/mm-ge-im", "configurator", "set_market_params",
         lambda w: (w.eth, w.params(mm_ratio=wad("0.1"))), "deployer", "configurator: bad margin ratios"),
    Case("configurator.set_market_params/im-maxuint", "configurator", "set_market_params",
         lambda w: (w.eth, w.params(im_ratio=MAX)), "deployer", "configurator: bad margin ratios"),
    Case("configurator.set_market_params/fee-maxuint", "configurator", "set_market_params",
         lambda w: (w.eth, w.params(taker_fee_bps=MAX)), "deployer", "configurator: fee too high"),
    Case("configurator.set_market_params/maker-fee-101", "configurator", "set_market_params",
         lambda w: (w.eth, w.params(maker_fee_bps=101)), "deployer", "configurator: fee too high"),
    Case("configurator.set_market_params/band-zero", "configurator", "set_market_params",
         lambda w: (w.eth, w.params(price_band_bps=0)), "deployer", "configurator: bad price band"),
    Case("configurator.set_market_params/band-maxuint", "configurator", "set_market_params",
         lambda w: (w.eth, w.params(price_band_bps=MAX)), "deployer", "configurator: bad price band"),
    Case("configurator.set_market_params/oi-zero", "configurator", "set_market_params",
         lambda w: (w.eth, w.params(max_open_interest=0)), "deployer", "configurator: bad open interest cap"),
    Case("configurator.set_market_params/oi-2^64", "configurator", "set_market_params",
         lambda w: (w.eth, w.params(max_open_interest=2**48)), "deployer", "configurator: bad open interest cap"),
    Case("configurator.set_market_params/knee-2^16", "configurator", "set_market_params",
         lambda w: (w.eth, w.params(size_knee=2**16)), "deployer", "configurator: bad size knee"),
    Case("configurator.set_treasury/attacker", "configurator", "set_treasury", lambda w: (w.attacker,), "attacker", ROLE_MISSING),
    Case("configurator.set_treasury/zero", "configurator", "set_treasury", B(ZERO), "deployer", "configurator: zero treasury"),
    Case("configurator.set_segment_pool/attacker", "configurator", "set_segment_pool", lambda w: (0, w.pool), "attacker",
         ROLE_MISSING),
    Case("configurator.set_segment_pool/unknown-segment", "configurator", "set_segment_pool", lambda w: (99, w.pool), "deployer",
         "configurator: unknown segment"),
    Case("configurator.set_pool_fee_share/attacker", "configurator", "set_pool_fee_share", B(0), "attacker", ROLE_MISSING),
    Case("configurator.set_pool_fee_share/10001", "configurator", "set_pool_fee_share", B(10_001), "deployer",
         "configurator: bad fee share"),
    Case("configurator.set_pool_fee_share/maxuint", "configurator", "set_pool_fee_share", B(MAX), "deployer", "configurator: bad fee share"),
    Case("vault.pause/attacker", "vault", "pause", B(), "attacker", ROLE_MISSING),
    Case("vault.pause/twice", "vault", "pause", B(), "deployer", PAUSED, setup=_pause("vault")),
    Case("vault.unpause/attacker", "vault", "unpause", B(), "attacker", ROLE_MISSING, setup=_pause("vault")),
    Case("vault.unpause/not-paused", "vault", "unpause", B(), "deployer", NOT_PAUSED),
    Case("vault.grantRole/attacker", "vault", "grantRole", lambda w: (w.vault.ENGINE_ROLE(), w.attacker), "attacker",
         ROLE_MISSING),
    Case("vault.revokeRole/attacker", "vault", "revokeRole", lambda w: (w.vault.ENGINE_ROLE(), w.engine), "attacker",
         ROLE_MISSING),
    Case("vault.renounceRole/other-account", "vault", "renounceRole",
         lambda w: (w.vault.GUARDIAN_ROLE(), w.deployer), "attacker",
         "access_control: can only renounce roles for itself"),
    # ------------------------------------------------------------------ MarginVault: collateral
    Case("vault.deposit/zero", "vault", "deposit", B(0, 0), "attacker", "vault: zero amount"),
    Case("vault.deposit/unknown-segment", "vault", "deposit", B(99, 1), "attacker", "vault: unknown segment"),
    Case("vault.deposit/segment-maxuint", "vault", "deposit", B(MAX, 1), "attacker", "vault: unknown segment"),
    Case("vault.deposit/maxuint", "vault", "deposit", B(0, MAX), "attacker", "erc20: insufficient allowance"),
    Case("vault.deposit/no-approval", "vault", "deposit", B(0, 1), "attacker", "erc20: insufficient allowance"),
    Case("vault.withdraw/zero", "vault", "withdraw", B(0, 0), "maker", "vault: zero amount"),
    Case("vault.withdraw/unknown-segment", "vault", "withdraw", B(99, 1), "maker", "vault: unknown segment"),
    Case("vault.withdraw/no-collateral", "vault", "withdraw", B(0, 1), "attacker", "vault: insufficient collateral"),
    Case("vault.withdraw/2^127", "vault", "withdraw", B(0, 2**127), "maker", "vault: insufficient collateral"),
    Case("regression-vault.withdraw/maxuint", "vault", "withdraw", B(0, MAX), "maker",
         "vault: insufficient collateral",
         finding="convert(amount, int256) overflows before the collateral check: bare revert"),
    Case("regression-vault.withdraw/2^255", "vault", "withdraw", B(0, 2**255), "maker",
         "vault: insufficient collateral",
         finding="convert(amount, int256) overflows before the collateral check: bare revert"),
    Case("vault.withdraw/below-im", "vault", "withdraw", B(0, 1_000 * 10**6), "other", "vault: below initial margin"),
    Case("vault.withdraw/paused", "vault", "withdraw", B(0, 1), "maker", PAUSED, setup=_pause("vault")),
    # ------------------------------------------------------------------ MarginVault: orders
    Case("vault.fill/zero-amount", "vault", "fill", lambda w: (w.o("good"), w.sig("good"), 0), "trader",
         "vault: zero amount"),
    Case("vault.fill/zero-size", "vault", "fill", lambda w: (w.o("zero"), w.sig("zero"), 1), "trader",
         "vault: bad order size"),
    Case("vault.fill/expired", "vault", "fill", lambda w: (w.o("expired"), w.sig("expired"), wad(1)), "trader",
         "vault: order expired"),
    Case("vault.fill/self-match", "vault", "fill", lambda w: (w.o("good"), w.sig("good"), wad(1)), "maker",
         "vault: self-match"),
    Case("vault.fill/unknown-market", "vault", "fill",
         lambda w: (w.o("unknown_market"), w.sig("unknown_market"), wad(1)), "trader", "vault: unknown market"),
    Case("vault.fill/overfill", "vault", "fill", lambda w: (w.o("good"), w.sig("good"), wad(1) + 1), "trader",
         "vault: overfill"),
    Case("vault.fill/maxuint-fresh", "vault", "fill", lambda w: (w.o("good"), w.sig("good"), MAX), "trader",
         "vault: overfill"),
    Case("regression-vault.fill/maxuint-after-partial", "vault", "fill",
         lambda w: (w.o("partial"), w.sig("partial"), MAX), "trader", "vault: overfill",
         finding="done + amount overflows (uint256) before the overfill check: bare revert"),
    Case("regression-vault.fill/size-int256-min", "vault", "fill",
         lambda w: (w.o("int_min"), w.sig("int_min"), wad(1)), "trader", "vault: bad order size",
         finding="abs(order.size) overflows for int256 min: bare revert"),
    Case("vault.fill/size-int256-max-dust", "vault", "fill", lambda w: (w.o("int_max"), w.sig("int_max"), 1),
         "trader", "vault: dust fill"),
    Case("regression-vault.fill/size-int256-max-2^128", "vault", "fill",
         lambda w: (w.o("int_max"), w.sig("int_max"), 2**128), "trader", "vault: open interest cap",
         finding="position size is packed with convert(int256 -> int128) before the open-interest cap check"),
    Case("vault.fill/open-interest-cap", "vault", "fill",
         lambda w: (w.o("oi_cap"), w.sig("oi_cap"), wad(10_000_100)), "trader", "vault: open interest cap"),
    Case("regression-vault.fill/price-maxuint", "vault", "fill",
         lambda w: (w.o("price_max"), w.sig("price_max"), wad(1)), "trader", "vault: price outside band",
         finding="deviation * BPS overflows for a huge order price: bare revert"),
    Case("vault.fill/price-zero", "vault", "fill", lambda w: (w.o("price_zero"), w.sig("price_zero"), wad(1)),
         "trader", "vault: price outside band"),
    Case("vault.fill/price-outside-band", "vault", "fill", lambda w: (w.o("price_far"), w.sig("price_far"), wad(1)),
         "trader", "vault: price outside band"),
    Case("vault.fill/forged-signature", "vault", "fill", lambda w: (w.o("forged"), w.sig("forged"), wad(1)),
         "trader", "vault: bad signature"),
    Case("vault.fill/signature-other-order", "vault", "fill", lambda w: (w.o("good"), w.sig("price_far"), wad(1)),
         "trader", "vault: bad signature"),
    Case("vault.fill/signature-zero-bytes", "vault", "fill", lambda w: (w.o("good"), b"\x00" * 65, wad(1)),
         "trader", "ecdsa: invalid signature"),
    Case("vault.fill/signature-truncated", "vault", "fill", lambda w: (w.o("good"), w.sig("good")[:63], wad(1)),
         "trader", "vault: bad signature"),
    Case("vault.fill/cancelled", "vault", "fill", lambda w: (w.o("cancelled"), w.sig("cancelled"), wad(1)),
         "trader", "vault: order cancelled"),
    Case("vault.fill/replay-partial", "vault", "fill", lambda w: (w.o("partial"), w.sig("partial"), wad(2)),
         "trader", "vault: overfill"),
    Case("vault.fill/not-reduce-only", "vault", "fill", lambda w: (w.o("reduce_bad"), w.sig("reduce_bad"), wad(1)),
         "trader", "vault: not reduce-only"),
    Case("vault.fill/below-im", "vault", "fill", lambda w: (w.o("too_big"), w.sig("too_big"), wad(100)), "other",
         "vault: below initial margin"),
    Case("vault.fill/paused", "vault", "fill", lambda w: (w.o("good"), w.sig("good"), wad(1)), "trader", "vault: paused, reduce-only",
         setup=_pause("vault")),
    Case("vault.fill/stale-oracle", "vault", "fill", lambda w: (w.o("good"), w.sig("good"), wad(1)), "trader",
         "oracle: stale price", setup=_stale),
    Case("vault.cancel/not-maker", "vault", "cancel", lambda w: (w.o("good"),), "attacker", "vault: not maker"),
    Case("vault.cancel/twice", "vault", "cancel", lambda w: (w.o("cancelled"),), "maker", "vault: order cancelled"),
    Case("vault.sweep_fees/unknown-segment", "vault", "sweep_fees", B(99), "attacker", "vault: unknown segment"),
    Case("vault.sweep_fees/maxuint", "vault", "sweep_fees", B(MAX), "attacker", "vault: unknown segment"),
    Case("vault.gate_withdrawals/attacker", "vault", "gate_withdrawals", lambda w: (0, 2**40), "attacker",
         ROLE_MISSING),
    Case("vault.gate_withdrawals/keeper", "vault", "gate_withdrawals", lambda w: (0, 2**63), "keeper",
         ROLE_MISSING),
    Case("vault.transfer_position/attacker", "vault", "transfer_position",
         lambda w: (w.other, w.attacker, w.eth, wad(10), wad(1), 0, 0, False, wad(3000)), "attacker", ROLE_MISSING),
    Case("vault.transfer_position/zero", "vault", "transfer_position",
         lambda w: (w.other, w.keeper, w.eth, 0, wad(3000), 0, 0, True, wad(3000)), "as:engine", "vault: zero amount"),
    Case("vault.transfer_position/self", "vault", "transfer_position",
         lambda w: (w.other, w.other, w.eth, 1, wad(3000), 0, 0, True, wad(3000)), "as:engine", "vault: self-match"),
    Case("vault.transfer_position/unknown-market", "vault", "transfer_position",
         lambda w: (w.other, w.keeper, 99, 1, wad(3000), 0, 0, True, wad(3000)), "as:engine",
         "vault: unknown market"),
    Case("vault.transfer_position/no-position", "vault", "transfer_position",
         lambda w: (w.attacker, w.keeper, w.eth, 1, wad(3000), 0, 0, True, wad(3000)), "as:engine",
         "vault: no position"),
    Case("vault.transfer_position/exceeds", "vault", "transfer_position",
         lambda w: (w.other, w.keeper, w.eth, MAX, wad(3000), 0, 0, True, wad(3000)), "as:engine",
         "vault: amount exceeds position"),
    Case("vault.cover_bad_debt/attacker", "vault", "cover_bad_debt", lambda w: (w.other, 0), "attacker", ROLE_MISSING),
    Case("vault.cover_bad_debt/has-positions", "vault", "cover_bad_debt", lambda w: (w.other, 0), "as:engine",
         "vault: account has positions"),
    Case("vault.cover_bad_debt/no-bad-debt", "vault", "cover_bad_debt", lambda w: (w.keeper, 0), "as:engine",
         "vault: no bad debt"),
    # ------------------------------------------------------------------ LiquidationEngine
    Case("engine.set_params/attacker", "engine", "set_params", lambda w: (w.liq(),), "attacker", ROLE_MISSING),
    Case("engine.set_params/close-factor-zero", "engine", "set_params", lambda w: (w.liq(close_factor=0),),
         "deployer", "engine: bad close factor"),
    Case("engine.set_params/close-factor-maxuint", "engine", "set_params", lambda w: (w.liq(close_factor=MAX),),
         "deployer", "engine: bad close factor"),
    Case("engine.set_params/tier-maxuint", "engine", "set_params", lambda w: (w.liq(full_close_tier=MAX),),
         "deployer", "engine: bad full-close tier"),
    Case("engine.set_params/start-gt-max", "engine", "set_params",
         lambda w: (w.liq(auction_start_discount=wad("0.06")),), "deployer", "engine: bad auction"),
    Case("engine.set_params/max-discount-half", "engine", "set_params",
         lambda w: (w.liq(auction_max_discount=wad("0.5")),), "deployer", "engine: bad auction"),
    Case("engine.set_params/duration-zero", "engine", "set_params", lambda w: (w.liq(auction_duration=0),),
         "deployer", "engine: bad auction"),
    Case("engine.set_params/duration-2^32", "engine", "set_params", lambda w: (w.liq(auction_duration=2**32),),
         "deployer", "engine: bad auction"),
    Case("engine.set_params/penalty-10pct", "engine", "set_params",
         lambda w: (w.liq(liquidation_penalty=wad("0.1")),), "deployer", "engine: bad penalty"),
    Case("engine.set_params/min-notional-2^80", "engine", "set_params",
         lambda w: (w.liq(min_liquidation_notional=2**80),), "deployer", "engine: bad notional"),
    Case("engine.set_params/keeper-floor-maxuint", "engine", "set_params", lambda w: (w.liq(keeper_fee_floor=MAX),),
         "deployer", "engine: bad notional"),
    Case("engine.pause/attacker", "engine", "pause", B(), "attacker", ROLE_MISSING),
    Case("engine.pause/twice", "engine", "pause", B(), "deployer", PAUSED, setup=_pause("engine")),
    Case("engine.unpause/attacker", "engine", "unpause", B(), "attacker", ROLE_MISSING, setup=_pause("engine")),
    Case("engine.unpause/not-paused", "engine", "unpause", B(), "deployer", NOT_PAUSED),
    Case("engine.grantRole/attacker", "engine", "grantRole", lambda w: (w.engine.RISK_ADMIN_ROLE(), w.attacker),
         "attacker", ROLE_MISSING),
    Case("engine.flag/healthy", "engine", "flag", lambda w: (w.maker, 0), "attacker", "engine: account healthy"),
    Case("engine.flag/unknown-segment", "engine", "flag", lambda w: (w.other, 99), "attacker",
         "engine: account healthy"),
    Case("engine.flag/zero-address", "engine", "flag", lambda w: (ZERO, 0), "attacker", "engine: account healthy"),
    Case("engine.flag/paused", "engine", "flag", lambda w: (w.other, 0), "keeper", PAUSED,
         setup=lambda w: (w.price("ETH-PERP", 3300), w.engine.pause(sender=w.deployer))),
    # a stale feed no longer blocks flag (issue 9.4: the bad market is valued against the account)
    Case("engine.unflag/not-flagged", "engine", "unflag", lambda w: (w.other, 0), "attacker", "engine: not flagged"),
    Case("engine.liquidate/zero-size", "engine", "liquidate", lambda w: (w.other, w.eth, 0), "keeper",
         "engine: zero size"),
    Case("engine.liquidate/self", "engine", "liquidate", lambda w: (w.other, w.eth, wad(1)), "other",
         "engine: self-liquidation"),
    Case("engine.liquidate/healthy-maxuint", "engine", "liquidate", lambda w: (w.maker, w.eth, MAX), "keeper",
         "engine: account healthy"),
    Case("engine.liquidate/unknown-market", "engine", "liquidate", lambda w: (w.other, 99, wad(1)), "keeper",
         "vault: unknown market"),
    Case("engine.liquidate/market-maxuint", "engine", "liquidate", lambda w: (w.other, MAX, wad(1)), "keeper",
         "vault: unknown market"),
    Case("engine.liquidate/no-position-in-market", "engine", "liquidate", lambda w: (w.other, w.btc, wad(1)),
         "keeper", "engine: no position", setup=_price("ETH-PERP", 3300)),
    Case("engine.liquidate/liquidator-no-margin", "engine", "liquidate", lambda w: (w.other, w.eth, wad(10)),
         "attacker", "vault: below initial margin", setup=_price("ETH-PERP", 3300)),
    Case("engine.liquidate/paused", "engine", "liquidate", lambda w: (w.other, w.eth, wad(1)), "keeper", PAUSED,
         setup=lambda w: (w.price("ETH-PERP", 3300), w.engine.pause(sender=w.deployer))),
    Case("engine.liquidate/stale", "engine", "liquidate", lambda w: (w.other, w.eth, wad(1)), "keeper",
         "oracle: stale price", setup=_stale),
    Case("engine.liquidate_for/outsider", "engine", "liquidate_for", lambda w: (w.attacker, w.other, w.eth, wad(1)),
         "attacker", "engine: batch only", setup=_price("ETH-PERP", 3300)),
    Case("engine.deleverage/zero-size", "engine", "deleverage", lambda w: (w.other, w.eth, w.maker, 0), "keeper",
         "engine: zero size"),
    Case("engine.deleverage/self", "engine", "deleverage", lambda w: (w.other, w.eth, w.other, wad(1)), "keeper",
         "engine: self-deleverage"),
    Case("engine.deleverage/unknown-market", "engine", "deleverage", lambda w: (w.other, 99, w.maker, wad(1)),
         "keeper", "vault: unknown market"),
    Case("engine.deleverage/flat-owner", "engine", "deleverage", lambda w: (w.keeper, w.eth, w.maker, wad(1)),
         "attacker", "engine: no unpaid deficit"),
    Case("engine.deleverage/not-opposite", "engine", "deleverage", lambda w: (w.other, w.eth, w.keeper, wad(1)),
         "attacker", "engine: counterparty not opposite"),
    Case("engine.deleverage/not-profitable", "engine", "deleverage", lambda w: (w.other, w.eth, w.maker, wad(1)),
         "attacker", "engine: counterparty not profitable", setup=_price("ETH-PERP", 2900)),
    Case("engine.deleverage/no-deficit", "engine", "deleverage", lambda w: (w.other, w.eth, w.maker, MAX),
         "attacker", "engine: no unpaid deficit", setup=_price("ETH-PERP", 3300)),
    Case("engine.deleverage/paused", "engine", "deleverage", lambda w: (w.other, w.eth, w.maker, wad(1)), "keeper",
         PAUSED, setup=_pause("engine")),
    Case("engine.settle_bad_debt/has-positions", "engine", "settle_bad_debt", lambda w: (w.other, 0), "attacker",
         "vault: account has positions"),
    Case("engine.settle_bad_debt/no-bad-debt", "engine", "settle_bad_debt", lambda w: (w.keeper, 0), "attacker",
         "vault: no bad debt"),
    Case("engine.settle_bad_debt/unknown-segment", "engine", "settle_bad_debt", lambda w: (w.keeper, 99), "attacker",
         "vault: no bad debt"),
    Case("engine.settle_bad_debt/paused", "engine", "settle_bad_debt", lambda w: (w.keeper, 0), "attacker", PAUSED,
         setup=_pause("engine")),
    Case("engine.set_liquidator/attacker", "engine", "set_liquidator", lambda w: (w.attacker,), "attacker",
         ROLE_MISSING),
    Case("engine.takeover/healthy", "engine", "takeover", lambda w: (w.maker, w.eth, wad(1)), "attacker",
         "engine: auction not over"),
    Case("engine.takeover/auction-running", "engine", "takeover", lambda w: (w.other, w.eth, wad(10)), "attacker",
         "engine: auction not over",
         setup=lambda w: (w.price("ETH-PERP", 3300), w.engine.flag(w.other, w.majors, sender=w.keeper))),
    Case("engine.takeover/zero-size", "engine", "takeover", lambda w: (w.other, w.eth, 0), "attacker",
         "engine: zero size", setup=_auction_over),
    Case("engine.takeover/unknown-market", "engine", "takeover", lambda w: (w.other, 99, wad(1)), "attacker",
         "vault: unknown market", setup=_auction_over),
    Case("engine.takeover/no-position-in-market", "engine", "takeover", lambda w: (w.other, w.btc, wad(1)), "attacker",
         "engine: no position", setup=_auction_over),
    Case("engine.takeover/past-caps", "engine", "takeover", lambda w: (w.other, w.eth, wad(10)), "attacker",
         "engine: takeover refused", setup=_auction_over),  # 33,000 notional > 10% of a 50,000 backstop
    Case("engine.takeover/self", "engine", "takeover", lambda w: (w.liquidator, w.eth, wad(1)), "attacker",
         "engine: self-liquidation"),
    Case("engine.takeover/no-liquidator", "engine", "takeover", lambda w: (w.other, w.eth, wad(1)), "attacker",
         "engine: no liquidator", setup=lambda w: (_auction_over(w), w.engine.set_liquidator(ZERO, sender=w.deployer))),
    Case("engine.takeover/paused", "engine", "takeover", lambda w: (w.other, w.eth, wad(1)), "attacker", PAUSED,
         setup=lambda w: (_auction_over(w), w.engine.pause(sender=w.deployer))),
]


def _pool_cases(attr: str, prefix: str) -> list[Case]:
    """Cases common to the InsurancePool (majors) and the BackstopPool (pool_shares + admin)."""
    return [
        Case(f"{attr}.set_deposit_cap/attacker", attr, "set_deposit_cap", B(0), "attacker", ROLE_MISSING),
        Case(f"{attr}.set_redeem_delays/attacker", attr, "set_redeem_delays", B(0, 3600), "attacker", ROLE_MISSING),
        Case(f"{attr}.set_redeem_delays/cooldown-maxuint", attr, "set_redeem_delays", B(MAX, 3600), "deployer",
             f"{prefix}: cooldown too long"),
        Case(f"{attr}.set_redeem_delays/window-short", attr, "set_redeem_delays", B(0, 3599), "deployer",
             f"{prefix}: bad window"),
        Case(f"{attr}.set_redeem_delays/window-maxuint", attr, "set_redeem_delays", B(0, MAX), "deployer",
             f"{prefix}: bad window"),
        Case(f"{attr}.set_income_vesting/attacker", attr, "set_income_vesting", B(0), "attacker", ROLE_MISSING),
        Case(f"{attr}.set_income_vesting/maxuint", attr, "set_income_vesting", B(MAX), "deployer",
             f"{prefix}: vesting too long"),
        Case(f"{attr}.pause/attacker", attr, "pause", B(), "attacker", ROLE_MISSING),
        Case(f"{attr}.pause/twice", attr, "pause", B(), "deployer", f"{prefix}: pause unchanged", setup=_pause(attr)),
        Case(f"{attr}.unpause/attacker", attr, "unpause", B(), "attacker", ROLE_MISSING, setup=_pause(attr)),
        Case(f"{attr}.unpause/not-paused", attr, "unpause", B(), "deployer", f"{prefix}: pause unchanged"),
        Case(f"{attr}.grantRole/attacker", attr, "grantRole", lambda w: (getattr(w, attr).INCOME_ROLE(), w.attacker),
             "attacker", ROLE_MISSING),
        Case(f"{attr}.notify_income/attacker", attr, "notify_income", B(1), "attacker", ROLE_MISSING),
        Case(f"{attr}.deposit/zero", attr, "deposit", lambda w: (0, w.attacker), "attacker", f"{prefix}: zero amount"),
        Case(f"{attr}.deposit/maxuint", attr, "deposit", lambda w: (MAX, w.attacker), "attacker",
             "math: mul_div overflow"),
        Case(f"{attr}.deposit/no-approval", attr, "deposit", lambda w: (10**6, w.attacker), "attacker",
             "erc20: insufficient allowance"),
        Case(f"{attr}.deposit/paused", attr, "deposit", lambda w: (10**6, w.lp), "lp", f"{prefix}: paused",
             setup=_pause(attr)),
        Case(f"{attr}.deposit/cap", attr, "deposit", lambda w: (10**6, w.lp), "lp", f"{prefix}: deposit cap exceeded",
             setup=lambda w: getattr(w, attr).set_deposit_cap(1, sender=w.deployer)),
        Case(f"{attr}.mint/zero", attr, "mint", lambda w: (0, w.attacker), "attacker", f"{prefix}: zero amount"),
        Case(f"{attr}.mint/maxuint", attr, "mint", lambda w: (MAX, w.attacker), "attacker",
             "pool: share supply overflow"),
        Case(f"{attr}.mint/paused", attr, "mint", lambda w: (10**12, w.lp), "lp", f"{prefix}: paused",
             setup=_pause(attr)),
        Case(f"{attr}.withdraw/zero", attr, "withdraw", lambda w: (0, w.lp, w.lp), "lp", f"{prefix}: zero amount"),
        Case(f"{attr}.withdraw/no-request", attr, "withdraw", lambda w: (1, w.attacker, w.attacker), "attacker",
             f"{prefix}: no redeemable request"),
        Case(f"{attr}.withdraw/maxuint", attr, "withdraw", lambda w: (MAX, w.lp, w.lp), "lp",
             "math: mul_div overflow"),
        Case(f"{attr}.redeem/zero", attr, "redeem", lambda w: (0, w.lp, w.lp), "lp", f"{prefix}: zero amount"),
        Case(f"{attr}.redeem/one-share", attr, "redeem", lambda w: (1, w.lp, w.lp), "lp", f"{prefix}: zero assets"),
        Case(f"{attr}.redeem/maxuint", attr, "redeem", lambda w: (MAX, w.lp, w.lp), "lp",
             f"{prefix}: no redeemable request"),
        Case(f"{attr}.redeem/others-shares", attr, "redeem", lambda w: (10**12, w.attacker, w.lp), "attacker",
             f"{prefix}: no redeemable request"),
        Case(f"{attr}.request_redeem/zero", attr, "request_redeem", B(0), "lp", f"{prefix}: zero amount"),
        Case(f"{attr}.request_redeem/maxuint", attr, "request_redeem", B(MAX), "lp",
             f"{prefix}: request exceeds balance"),
        Case(f"{attr}.cancel_redeem/none", attr, "cancel_redeem", B(), "attacker", f"{prefix}: no request"),
        Case(f"{attr}.transfer/maxuint", attr, "transfer", lambda w: (w.attacker, MAX), "lp",
             "erc20: transfer amount exceeds balance"),
        Case(f"{attr}.transfer/zero-address", attr, "transfer", lambda w: (ZERO, 1), "lp",
             "erc20: transfer to the zero address"),
        Case(f"{attr}.transferFrom/no-allowance", attr, "transferFrom", lambda w: (w.lp, w.attacker, 1), "attacker",
             "erc20: insufficient allowance"),
        Case(f"{attr}.approve/zero-address", attr, "approve", lambda w: (ZERO, 1), "lp",
             "erc20: approve to the zero address"),
    ]


POOL_ONLY = [
    Case("pool.set_target_size/attacker", "pool", "set_target_size", B(0), "attacker", ROLE_MISSING),
    Case("pool.set_target_size/below-floor", "pool", "set_target_size", B(10**9 - 1), "deployer",
         "pool: floor > target", setup=lambda w: w.pool.set_floor_size(10**9, sender=w.deployer)),
    Case("pool.set_floor_size/attacker", "pool", "set_floor_size", B(0), "attacker", ROLE_MISSING),
    Case("pool.set_floor_size/above-target", "pool", "set_floor_size", B(10**9 + 1), "deployer",
         "pool: floor > target", setup=lambda w: w.pool.set_target_size(10**9, sender=w.deployer)),
    Case("pool.set_floor_size/maxuint-above-target", "pool", "set_floor_size", B(MAX), "deployer",
         "pool: floor > target", setup=lambda w: w.pool.set_target_size(10**9, sender=w.deployer)),
    Case("pool.set_surplus_routing/attacker", "pool", "set_surplus_routing", lambda w: (w.attacker, 0), "attacker",
         ROLE_MISSING),
    Case("pool.set_surplus_routing/10001", "pool", "set_surplus_routing", lambda w: (w.treasury, 10_001), "deployer",
         "pool: bps > 10000"),
    Case("pool.set_surplus_routing/maxuint", "pool", "set_surplus_routing", lambda w: (w.treasury, MAX), "deployer",
         "pool: bps > 10000"),
    Case("pool.set_backstop_income_share/attacker", "pool", "set_backstop_income_share", B(0), "attacker",
         ROLE_MISSING),
    Case("pool.set_backstop_income_share/10001", "pool", "set_backstop_income_share", B(10_001), "deployer",
         "pool: bps > 10000"),
    Case("pool.set_backstop_income_share/maxuint", "pool", "set_backstop_income_share", B(MAX), "deployer",
         "pool: bps > 10000"),
    Case("pool.set_max_cover_per_block/attacker", "pool", "set_max_cover_per_block", B(0), "attacker", ROLE_MISSING),
    Case("pool.cover/attacker", "pool", "cover", B(1), "attacker", ROLE_MISSING),
    Case("pool.cover/zero", "pool", "cover", B(0), "as:vault", "pool: zero amount"),
    Case("pool.notify_income/zero", "pool", "notify_income", B(0), "as:vault", "pool: zero amount"),
    Case("pool.notify_income/maxuint", "pool", "notify_income", B(MAX), "as:vault", "erc20: insufficient allowance"),
]

BACKSTOP_ONLY = [
    Case("backstop.set_global_draw_cap/attacker", "backstop", "set_global_draw_cap", B(0), "attacker", ROLE_MISSING),
    Case("backstop.set_global_draw_cap/10001", "backstop", "set_global_draw_cap", B(10_001), "deployer",
         "backstop: bps > 10000"),
    Case("backstop.set_global_draw_cap/maxuint", "backstop", "set_global_draw_cap", B(MAX), "deployer",
         "backstop: bps > 10000"),
    Case("backstop.set_draw_window/attacker", "backstop", "set_draw_window", B(1), "attacker", ROLE_MISSING),
    Case("backstop.set_draw_window/zero", "backstop", "set_draw_window", B(0), "deployer", "backstop: bad window"),
    Case("backstop.set_draw_window/366-days", "backstop", "set_draw_window", B(366 * 86400), "deployer",
         "backstop: bad window"),
    Case("backstop.set_draw_window/maxuint", "backstop", "set_draw_window", B(MAX), "deployer", "backstop: bad window"),
    Case("backstop.set_member/attacker", "backstop", "set_member", lambda w: (w.attacker, 1), "attacker", ROLE_MISSING),
    Case("backstop.set_member/zero-pool", "backstop", "set_member", B(ZERO, 1), "deployer", "backstop: zero pool"),
    Case("backstop.set_member/10001", "backstop", "set_member", lambda w: (w.pool, 10_001), "deployer",
         "backstop: bps > 10000"),
    Case("backstop.set_member/maxuint", "backstop", "set_member", lambda w: (w.pool, MAX), "deployer",
         "backstop: bps > 10000"),
    Case("backstop.set_member/too-many", "backstop", "set_member", lambda w: (w.attacker, 1), "deployer",
         "backstop: too many members", setup=_fill_members),
    Case("backstop.set_liquidator/attacker", "backstop", "set_liquidator", lambda w: (w.attacker,), "attacker",
         ROLE_MISSING),
    Case("backstop.set_liquidator/holds-assets", "backstop", "set_liquidator", B(ZERO), "deployer",
         "backstop: liquidator holds assets", setup=_lend_to_liquidator),
    Case("backstop.fund_liquidator/attacker", "backstop", "fund_liquidator", B(1), "attacker",
         "backstop: not liquidator"),
    Case("backstop.fund_liquidator/zero", "backstop", "fund_liquidator", B(0), "as:liquidator",
         "backstop: zero amount"),
    Case("backstop.fund_liquidator/maxuint", "backstop", "fund_liquidator", B(MAX), "as:liquidator",
         "backstop: not enough idle assets"),
    Case("backstop.settle_liquidator/attacker", "backstop", "settle_liquidator", B(0, 0), "attacker",
         "backstop: not liquidator"),
    Case("backstop.settle_liquidator/exceeds-book", "backstop", "settle_liquidator", B(1, 0), "as:liquidator",
         "backstop: release exceeds book"),
    Case("backstop.settle_liquidator/maxuint", "backstop", "settle_liquidator", B(MAX, MAX), "as:liquidator",
         "backstop: release exceeds book", setup=_lend_to_liquidator),
    Case("backstop.draw/attacker", "backstop", "draw", lambda w: (1, w.attacker), "attacker",
         "backstop: not a member"),
    Case("backstop.draw/vault", "backstop", "draw", lambda w: (1, w.vault), "as:vault",
         "backstop: not a member"),  # the vault cannot draw directly, only its pools
    Case("backstop.draw/removed-member", "backstop", "draw", lambda w: (1, w.vault), "as:pool",
         "backstop: not a member", setup=lambda w: w.backstop.set_member(w.pool, 0, sender=w.deployer)),
    Case("backstop.draw/zero", "backstop", "draw", lambda w: (0, w.vault), "as:pool", "backstop: zero amount"),
    Case("backstop.draw/zero-recipient", "backstop", "draw", lambda w: (1, ZERO), "as:pool",
         "backstop: zero recipient"),
    Case("backstop.top_up/attacker", "backstop", "top_up", B(1), "attacker", "backstop: not a member"),
    Case("backstop.top_up/removed-member", "backstop", "top_up", B(1), "as:pool", "backstop: not a member",
         setup=lambda w: w.backstop.set_member(w.pool, 0, sender=w.deployer)),
    Case("backstop.top_up/zero", "backstop", "top_up", B(0), "as:pool", "backstop: zero amount"),
    # EIP-2612 permit: only the BackstopPool exports it (InsurancePool dropped it for EIP-170)
    Case("backstop.permit/expired", "backstop", "permit",
         lambda w: (w.lp, w.attacker, 1, 0, 27, b"\x00" * 32, b"\x00" * 32), "attacker", "erc20: expired deadline"),
    Case("backstop.notify_income/zero", "backstop", "notify_income", B(0), "as:pool", "backstop: zero amount"),
]

ORACLE = [
    Case("oracle.set_feed/attacker", "oracle", "set_feed", lambda w: (0, w.feed8, 3600, 1, 2), "attacker",
         ROLE_MISSING),
    Case("oracle.grantRole/attacker", "oracle", "grantRole", lambda w: (w.oracle.FEED_ADMIN_ROLE(), w.attacker),
         "attacker", ROLE_MISSING),
    Case("oracle.set_feed/zero-aggregator", "oracle", "set_feed", B(9, ZERO, 3600, 1, 2), "deployer",
         "oracle: zero aggregator"),
    Case("oracle.set_feed/heartbeat-zero", "oracle", "set_feed", lambda w: (9, w.feed8, 0, 1, 2), "deployer",
         "oracle: bad heartbeat"),
    Case("oracle.set_feed/heartbeat-maxuint", "oracle", "set_feed", lambda w: (9, w.feed8, MAX, 1, 2), "deployer",
         "oracle: bad heartbeat"),
    Case("oracle.set_feed/min-zero", "oracle", "set_feed", lambda w: (9, w.feed8, 3600, 0, 2), "deployer",
         "oracle: bad bounds"),
    Case("oracle.set_feed/min-ge-max", "oracle", "set_feed", lambda w: (9, w.feed8, 3600, 2, 2), "deployer",
         "oracle: bad bounds"),
    Case("oracle.set_feed/max-maxuint", "oracle", "set_feed", lambda w: (9, w.feed8, 3600, 1, MAX), "deployer",
         "oracle: bad bounds"),
    Case("oracle.set_feed/decimals-37", "oracle", "set_feed", lambda w: (9, w.feed37, 3600, 1, 2), "deployer",
         "oracle: bad decimals"),
    Case("oracle.price/unknown-feed", "oracle", "price", B(99), "attacker", "oracle: unknown feed"),
    Case("oracle.price/maxuint-market", "oracle", "price", B(MAX), "attacker", "oracle: unknown feed"),
    Case("oracle.price/zero-answer", "oracle", "price", lambda w: (w.eth,), "attacker", "oracle: non-positive price",
         setup=_answer(0)),
    Case("oracle.price/int256-min-answer", "oracle", "price", lambda w: (w.eth,), "attacker",
         "oracle: non-positive price", setup=_answer(I_MIN)),
    Case("oracle.price/future-round", "oracle", "price", lambda w: (w.eth,), "attacker",
         "oracle: round from the future", setup=_answer(3000 * 10**8, 1000)),
    Case("oracle.price/stale", "oracle", "price", lambda w: (w.eth,), "attacker", "oracle: stale price", setup=_stale),
    Case("oracle.price/out-of-bounds", "oracle", "price", lambda w: (w.eth,), "attacker",
         "oracle: price out of bounds", setup=_answer(10**16)),
    Case("regression-oracle.price/int256-max-answer", "oracle", "price", lambda w: (w.eth,), "attacker",
         "oracle: price out of bounds", setup=_answer(I_MAX),
         finding="scaling a huge answer by 10**(18 - decimals) overflows before the bounds check: bare revert"),
]

def _role_cases(attr: str, role: str, admin_setter: bool = True) -> list[Case]:
    """snekmate access_control on every contract: only the role's admin manages it (the vault
    does not export set_role_admin: it sits near the EIP-170 limit and governance never uses it)."""
    r = lambda w: getattr(getattr(w, attr), role)()  # noqa: E731
    cases = [
        Case(f"{attr}.grantRole/{role}/attacker", attr, "grantRole", lambda w: (r(w), w.attacker), "attacker",
             ROLE_MISSING),
        Case(f"{attr}.revokeRole/{role}/attacker", attr, "revokeRole", lambda w: (r(w), w.deployer), "attacker",
             ROLE_MISSING),
        Case(f"{attr}.renounceRole/{role}/for-other", attr, "renounceRole", lambda w: (r(w), w.deployer), "attacker",
             "access_control: can only renounce roles for itself"),
    ]
    if admin_setter:
        cases.append(Case(f"{attr}.set_role_admin/{role}/attacker", attr, "set_role_admin",
                          lambda w: (r(w), getattr(w, attr).DEFAULT_ADMIN_ROLE()), "attacker", ROLE_MISSING))
    return cases


ROLES = (
    _role_cases("vault", "GUARDIAN_ROLE", admin_setter=False) + _role_cases("engine", "RISK_ADMIN_ROLE")
    + _role_cases("pool", "COVER_ROLE") + _role_cases("backstop", "INCOME_ROLE")
    + _role_cases("oracle", "FEED_ADMIN_ROLE")
)

ALL_CASES = ROLES + CASES + _pool_cases("pool", "pool") + POOL_ONLY + _pool_cases("backstop", "pool") + BACKSTOP_ONLY + ORACLE


def _sender(w, accounts, role):
    if role.startswith("as:"):
        return w.impersonate(getattr(w, role[3:]).address, accounts)
    return w.acct[role]


def _balances(w, caller) -> dict[str, int]:
    t = w.token
    out = {"vault": int(t.balanceOf(w.vault)), "backstop": int(t.balanceOf(w.backstop)),
           "caller": int(t.balanceOf(caller))}
    for label, pool in w.system.pools.items():
        out[f"pool:{label}"] = int(t.balanceOf(pool))
    return out


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_bad_input(w, accounts, case: Case):
    if case.setup:
        case.setup(w)
    sender = _sender(w, accounts, case.sender)
    contract = getattr(w, case.contract)
    args = case.args(w)
    before = _balances(w, sender)
    with ape.reverts(case.reason):
        getattr(contract, case.fn)(*args, sender=sender, **case.kwargs)
    assert _balances(w, sender) == before


FINDINGS = [c for c in ALL_CASES if c.finding]


@pytest.mark.parametrize("case", FINDINGS, ids=[c.id.removeprefix("regression-") for c in FINDINGS])
def test_findings_still_revert_without_moving_value(w, accounts, case: Case):
    """The safety half of each finding: the call reverts (whatever the reason) and moves nothing."""
    if case.setup:
        case.setup(w)
    sender = _sender(w, accounts, case.sender)
    before = _balances(w, sender)
    with pytest.raises(ape.exceptions.ContractLogicError):
        getattr(getattr(w, case.contract), case.fn)(*case.args(w), sender=sender)
    assert _balances(w, sender) == before


LIQUIDATE_CASES = [c for c in ALL_CASES if (c.contract, c.fn) == ("engine", "liquidate")]


BATCH_IDS = [c.id.replace("liquidate/", "liquidate_batch/") for c in LIQUIDATE_CASES]


@pytest.mark.parametrize("case", LIQUIDATE_CASES, ids=BATCH_IDS)
def test_liquidate_batch_skips_what_liquidate_refuses(w, accounts, case: Case):
    """Every bad `liquidate` input, sent as a liquidate_batch item beside a good one: the bad item closes
    nothing and moves nothing, the batch itself does not revert (a keeper's block of work survives it)."""
    if case.setup:
        case.setup(w)
    sender = _sender(w, accounts, case.sender)
    before = _balances(w, sender)
    closed = w.engine.liquidate_batch.call([case.args(w)], sender=sender)
    assert list(closed) == [0]
    w.engine.liquidate_batch([case.args(w)], sender=sender)
    assert _balances(w, sender) == before


def test_matrix_covers_every_external_state_changing_function(w):
    """Every non-view function in each ABI has at least one case (guards the matrix itself)."""
    covered = {(c.contract, c.fn) for c in ALL_CASES}
    # liquidate_batch never reverts for a bad item: test_liquidate_batch_skips_what_liquidate_refuses
    # replays every bad liquidate input through it
    # rebalance takes no input and never reverts: test_rebalance_inside_the_band_moves_nothing
    exempt: set[tuple[str, str]] = {("engine", "liquidate_batch"), ("pool", "rebalance")}
    missing = []
    for attr in ("vault", "configurator", "engine", "pool", "backstop", "oracle"):
        contract = getattr(w, attr)
        for abi in contract.contract_type.mutable_methods:
            if (attr, abi.name) not in covered and (attr, abi.name) not in exempt:
                missing.append(f"{attr}.{abi.name}")
    assert not missing, missing


def test_rebalance_inside_the_band_moves_nothing(w):
    """rebalance is permissionless and takes no input: called by anyone on a pool inside its band
    (no target, no floor) it returns 0, emits no Rebalanced and moves no quote token."""
    assert (int(w.pool.target_size()), int(w.pool.floor_size())) == (0, 0)
    before = _balances(w, w.attacker)
    assert w.pool.rebalance.call(sender=w.attacker) == 0
    receipt = w.pool.rebalance(sender=w.attacker)
    assert list(receipt.decode_logs(w.pool.Rebalanced)) == []
    assert _balances(w, w.attacker) == before


def test_insurance_pool_has_no_permit(w):
    """EIP-2612 permit lives on the BackstopPool only (InsurancePool dropped it for EIP-170)."""
    names = {abi.name for abi in w.pool.contract_type.abi if getattr(abi, "name", None)}
    assert not names & {"permit", "nonces", "DOMAIN_SEPARATOR", "eip712Domain"}
    assert "permit" in {abi.name for abi in w.backstop.contract_type.mutable_methods}
