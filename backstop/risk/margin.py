"""Vectorized mirror of the vault's margin maths and the engine's liquidation of a one-position account.

Every function works on numpy arrays of either dtype:
- ``object`` arrays of Python ints reproduce the contracts to the wei (tests/risk checks them against the chain);
- ``float64`` arrays run the same formulas fast for the Monte Carlo (rounding then differs by < 1 quote unit).
Floors are `fdiv` (Python's exact `//` on ints, floor(a / b) on floats: numpy's float `//` is ~50x slower) and
ceilings `-fdiv(-a, b)`, so one source serves both: no second, drifting copy of the rules.
Transcribed from MarginVault.transfer_position/_trade/_health and LiquidationEngine._plan (docs/liquidation.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backstop.core.config import LiquidationSpec
from backstop.core.units import WAD

RATIO_BUFFER = 10**14  # LiquidationEngine.RATIO_BUFFER
ROUNDING_SLACK = 2  # LiquidationEngine._ROUNDING_SLACK


def fdiv(n, d):
    """Floor division: exact `//` for Python ints and object arrays, floor(n / d) for floats."""
    if isinstance(n, np.ndarray) and n.dtype.kind == "f":
        return np.floor(n / d)
    return n // d


def ceil_div(n, d):
    """Signed ceiling division for ints and floats alike (the vault's `_ceil_div`)."""
    return -fdiv(-n, d)


def where(cond, a, b):
    """np.where that keeps Python ints exact on object arrays."""
    return np.where(cond, a, b)


def minimum(a, b):
    return where(a < b, a, b)


@dataclass(frozen=True)
class EngineParams:
    """LiquidationParams in contract units (WAD ratios, quote units, seconds) plus the market's MM ratio."""

    close_factor: int
    full_close_tier: int
    auction_start_discount: int
    auction_max_discount: int
    liquidation_penalty: int
    auction_duration: int
    min_liquidation_notional: int
    keeper_fee_floor: int
    mm_ratio: int
    scale: int

    @classmethod
    def from_spec(cls, spec: LiquidationSpec, mm_ratio: int, decimals: int) -> "EngineParams":
        """The parameters a deployment from `spec` gives the engine (same packing order as its struct)."""
        return cls(*spec.params(decimals), mm_ratio=mm_ratio, scale=10 ** (36 - decimals))


@dataclass
class Liquidation:
    """Outcome arrays of one liquidation call per account."""

    amount: np.ndarray
    price: np.ndarray
    penalty: np.ndarray
    keeper_fee: np.ndarray
    collateral: np.ndarray  # owner's collateral after the transfer (negative: bad debt)
    size: np.ndarray  # owner's size after
    entry: np.ndarray  # owner's entry notional after

    @property
    def deficit(self) -> np.ndarray:
        """What the collateral cannot pay: the amount cover_bad_debt asks the pool for (0 if open or solvent)."""
        flat = self.size == 0
        return where(flat & (self.collateral < 0), -self.collateral, 0 * self.collateral)


def equity(collateral, size, entry, mark, scale):
    """Account equity at mark: collateral + floor(size * mark / scale) - entry notional."""
    return collateral + fdiv(size * mark, scale) - entry


def maintenance(size, mark, mm_ratio, scale):
    """MM: ceil(ceil(|size| * mark / scale) * mm_ratio / WAD)."""
    return ceil_div(ceil_div(abs(size) * mark, scale) * mm_ratio, WAD)


def liquidatable(collateral, size, entry, mark, p: EngineParams):
    """The engine's test: MM > 0 and equity < MM."""
    mm = maintenance(size, mark, p.mm_ratio, p.scale)
    return (mm > 0) & (equity(collateral, size, entry, mark, p.scale) < mm)


def close_amount(held, eq, mm, mark, p: EngineParams):
    """Base size one call closes when the keeper asks for all of it (dust and the full-close tier)."""
    dust = fdiv(held * mark, p.scale) < p.min_liquidation_notional
    deep = eq * WAD < p.full_close_tier * mm
    partial = fdiv(held * p.close_factor, WAD)
    partial = where(fdiv((held - partial) * mark, p.scale) < p.min_liquidation_notional, held, partial)
    return where(dust | deep, held, partial)


def discount_and_penalty(eq, mm, amount, mark, full_close, elapsed, p: EngineParams):
    """(discount, penalty rate) after the engine's keeper-economics caps, one-position accounts."""
    d0 = p.auction_max_discount if elapsed >= p.auction_duration else (
        p.auction_start_discount + (p.auction_max_discount - p.auction_start_discount) * elapsed // p.auction_duration)
    zero = 0 * eq
    pay = where(eq > ROUNDING_SLACK, eq - ROUNDING_SLACK, zero)
    guard = (eq > 0) & ~full_close  # one position: flat after iff it is closed in full
    safe_mm = where(mm > 0, mm, 1 + zero)
    room = fdiv(where(eq > 0, eq, zero) * p.mm_ratio, safe_mm)
    room = where(room > RATIO_BUFFER, room - RATIO_BUFFER, zero)
    guard_d = minimum(d0 + zero, room)
    guard_pr = minimum(p.liquidation_penalty + zero, room - guard_d)
    notional = fdiv(amount * mark, p.scale)
    flat_d = minimum(d0 + zero, fdiv(pay * WAD, where(notional > 1, notional, 1 + zero)))
    discount = where(eq <= 0, zero, where(guard, guard_d, flat_d))
    rate = where(eq <= 0, zero, where(guard, guard_pr, p.liquidation_penalty + zero))
    return discount, rate, pay


def liquidate(collateral, size, entry, mark, p: EngineParams, elapsed: int = 0) -> Liquidation:
    """One `LiquidationEngine.liquidate(owner, market, |size|)` call on liquidatable one-position accounts.

    `elapsed` is the time since the flag (0: this call flags). The caller filters with `liquidatable` first.
    """
    long = size > 0
    held = abs(size)
    eq = equity(collateral, size, entry, mark, p.scale)
    mm = maintenance(size, mark, p.mm_ratio, p.scale)
    amount = close_amount(held, eq, mm, mark, p)
    full_close = amount == held
    discount, rate, pay = discount_and_penalty(eq, mm, amount, mark, full_close, elapsed, p)
    price = where(long, fdiv(mark * (WAD - discount), WAD), ceil_div(mark * (WAD + discount), WAD))
    reward = fdiv(amount * where(long, mark - price, price - mark), p.scale)
    end_partial = (elapsed >= p.auction_duration) & (amount * WAD >= held * p.close_factor)
    topped = (reward < p.keeper_fee_floor) & (full_close | end_partial)
    fee = where(topped, p.keeper_fee_floor - reward, 0 * reward)
    fee = where(topped & (eq > 0), minimum(fee, pay - minimum(pay, reward)), fee)
    penalty = fdiv(fdiv(amount * mark, p.scale) * rate, WAD)
    penalty = minimum(penalty, pay - minimum(pay, reward + fee))
    after = transfer(collateral, size, entry, amount, price, penalty + fee, p.scale)
    return Liquidation(amount, price, penalty, fee, *after)


def transfer(collateral, size, entry, amount, price, charge, scale):
    """The owner's side of MarginVault.transfer_position: reduce by `amount` at `price`, pay `charge`.
    Returns (collateral, size, entry notional) after."""
    cost = fdiv(amount * price, scale)
    signed_cost = where(size > 0, -cost, cost)
    held = abs(size)
    zero = 0 * held
    safe_held = where(held > 0, held, 1 + zero)
    released = where(amount == held, entry, ceil_div(entry * amount, safe_held))
    realized = -signed_cost - released
    return collateral + realized - charge, where(size > 0, size - amount, size + amount), entry - released


def cover(deficit, pool_assets, backstop_capacity):
    """The loss waterfall behind cover_bad_debt: (paid by pool, paid by backstop, unpaid), no per-block limit."""
    by_pool = minimum(deficit, pool_assets)
    by_backstop = minimum(deficit - by_pool, backstop_capacity)
    return by_pool, by_backstop, deficit - by_pool - by_backstop
