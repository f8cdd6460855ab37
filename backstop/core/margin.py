"""MarginVault's documented margin arithmetic (pure Python, exact integers).

Every rule here is transcribed from the vault's docstrings and the issue text, not from
the implementation, so tests can compute expected numbers independently:

- trade cost      = amount * price // 10**(36 - decimals)                 (floor)
- fee             = ceil(cost * bps / 10_000)
- on a reduce     : released cost basis = signed ceil(entry * closing / |size|)
                    (the whole entry when the position closes), and on a flip the closing
                    part of the cost = signed ceil(cost * closing / |delta|);
                    realized = -closing_cost - released
- equity          = collateral + sum(floor(size * mark / scale) - entry)
- IM / MM         = sum(ceil(ceil(|size| * mark / scale) * ratio / 1e18))

The vault tests compute expected numbers with it, and the stateful mirror
(backstop.sim.model.Tracker) applies every Fill with `apply_trade`.
"""

from __future__ import annotations

from backstop.core.units import BPS, WAD, ceil_div, floor_div


def scale_of(decimals: int) -> int:
    """The vault's notional scale: size (WAD) x price (WAD) / scale = quote units."""
    return 10 ** (36 - decimals)


def trade_cost(amount: int, price: int, decimals: int) -> int:
    return amount * price // scale_of(decimals)


def fee_of(cost: int, bps: int) -> int:
    return ceil_div(cost * bps, BPS)


def apply_trade(size: int, entry: int, delta: int, cost: int) -> tuple[int, int, int]:
    """(new size, new entry notional, realized PnL) after buying signed `delta` for signed `cost`."""
    if size == 0 or (size > 0) == (delta > 0):
        return size + delta, entry + cost, 0
    closing = min(abs(delta), abs(size))
    released = entry if closing == abs(size) else ceil_div(entry * closing, abs(size))
    closing_value = cost if closing == abs(delta) else ceil_div(cost * closing, abs(delta))
    realized = -closing_value - released
    return size + delta, entry - released + (cost - closing_value), realized


def position_value(size: int, mark: int, decimals: int) -> int:
    """Signed value of a position at mark, rounded down."""
    return floor_div(size * mark, scale_of(decimals))


def upnl_at_mark(size: int, entry: int, mark: int, scale: int, funding_index: int = 0) -> int:
    """Unrealized PnL at mark, quote units: floor(size * (mark - funding index) / scale) - cost basis
    (what the engine's ADL ranking and the equity of an account use; the vault's basis is net of the
    funding index the position joined at, backstop.core.funding)."""
    return floor_div(size * (mark - funding_index), scale) - entry


def margin_of(size: int, mark: int, ratio: int, decimals: int) -> int:
    notional = ceil_div(abs(size) * mark, scale_of(decimals))
    return ceil_div(notional * ratio, WAD)
