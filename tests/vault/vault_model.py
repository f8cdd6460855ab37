"""Reference model of MarginVault's documented arithmetic (pure Python, exact integers).

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

Candidate for backstop/ (e.g. backstop/model.py) once other suites need it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WAD = 10**18
BPS = 10_000


def ceil_div(n: int, d: int) -> int:
    """Signed ceiling division, d > 0."""
    assert d > 0
    return -((-n) // d)


def floor_div(n: int, d: int) -> int:
    assert d > 0
    return n // d


def scale_of(decimals: int) -> int:
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
    return floor_div(size * mark, scale_of(decimals))


def margin_of(size: int, mark: int, ratio: int, decimals: int) -> int:
    notional = ceil_div(abs(size) * mark, scale_of(decimals))
    return ceil_div(notional * ratio, WAD)


@dataclass
class MarketCfg:
    segment: int
    im: int
    mm: int
    taker_bps: int
    maker_bps: int


@dataclass
class Model:
    """Ledger of collateral, positions and fees, updated with each successful fill."""

    decimals: int
    markets: dict[int, MarketCfg]
    collateral: dict[tuple[str, int], int] = field(default_factory=dict)
    positions: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    fees: dict[int, int] = field(default_factory=dict)

    def deposit(self, owner: str, segment: int, amount: int) -> None:
        key = (owner, segment)
        self.collateral[key] = self.collateral.get(key, 0) + amount

    def fill(self, maker: str, taker: str, market: int, order_size: int, price: int, amount: int) -> dict:
        cfg = self.markets[market]
        cost = trade_cost(amount, price, self.decimals)
        maker_delta, signed = (amount, cost) if order_size > 0 else (-amount, -cost)
        maker_fee = fee_of(cost, cfg.maker_bps)
        taker_fee = fee_of(cost, cfg.taker_bps)
        out = {"cost": cost, "maker_delta": maker_delta, "maker_fee": maker_fee, "taker_fee": taker_fee}
        for who, delta, value, fee, tag in (
            (maker, maker_delta, signed, maker_fee, "maker"),
            (taker, -maker_delta, -signed, taker_fee, "taker"),
        ):
            size, entry = self.positions.get((who, market), (0, 0))
            size, entry, realized = apply_trade(size, entry, delta, value)
            self.positions[(who, market)] = (size, entry)
            key = (who, cfg.segment)
            self.collateral[key] = self.collateral.get(key, 0) + realized - fee
            out[f"{tag}_realized"] = realized
        self.fees[market] = self.fees.get(market, 0) + maker_fee + taker_fee
        return out

    def health(self, owner: str, segment: int, marks: dict[int, int]) -> tuple[int, int, int, int]:
        """(collateral, equity, im, mm) at `marks`."""
        coll = self.collateral.get((owner, segment), 0)
        equity, im, mm = coll, 0, 0
        for market, cfg in self.markets.items():
            if cfg.segment != segment:
                continue
            size, entry = self.positions.get((owner, market), (0, 0))
            if size == 0:
                continue
            equity += position_value(size, marks[market], self.decimals) - entry
            im += margin_of(size, marks[market], cfg.im, self.decimals)
            mm += margin_of(size, marks[market], cfg.mm, self.decimals)
        return coll, equity, im, mm

    def open_interest(self, market: int) -> int:
        return sum(max(s, 0) for (_, m), (s, _) in self.positions.items() if m == market)
