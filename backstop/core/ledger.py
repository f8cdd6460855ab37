"""A ledger of collateral, positions and fees that follows MarginVault's documented rules
(backstop.core.margin): the expected state of the vault tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from backstop.core.funding import FundingState, funding_adjustment, knee_units, margins
from backstop.core.margin import apply_trade, fee_of, position_value, scale_of, trade_cost


@dataclass
class MarketCfg:
    segment: int
    im: int
    mm: int
    taker_bps: int
    maker_bps: int
    size_knee: int = 0  # units of 10,000 quote tokens (0: flat margin)


@dataclass
class Model:
    """Ledger of collateral, positions and fees, updated with each successful fill."""

    decimals: int
    markets: dict[int, MarketCfg]
    collateral: dict[tuple[str, int], int] = field(default_factory=dict)
    positions: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    fees: dict[int, int] = field(default_factory=dict)
    funding: dict[int, FundingState] = field(default_factory=dict)

    def deposit(self, owner: str, segment: int, amount: int) -> None:
        key = (owner, segment)
        self.collateral[key] = self.collateral.get(key, 0) + amount

    def fill(self, maker: str, taker: str, market: int, order_size: int, price: int, amount: int,
             mark: int | None = None, now: int = 0) -> dict:
        """A fill at `price` with the oracle at `mark` (default: the fill price) at time `now`."""
        cfg = self.markets[market]
        cost = trade_cost(amount, price, self.decimals)
        maker_delta, signed = (amount, cost) if order_size > 0 else (-amount, -cost)
        state = self.funding.setdefault(market, FundingState())
        index = state.settle(now, cfg.im, cfg.mm, price, price if mark is None else mark)
        signed -= funding_adjustment(maker_delta, index, scale_of(self.decimals))
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

    def health(self, owner: str, segment: int, marks: dict[int, int], now: int = 0) -> tuple[int, int, int, int]:
        """(collateral, equity, im, mm) at `marks` and time `now` (funding accrued to it)."""
        coll = self.collateral.get((owner, segment), 0)
        equity, im, mm = coll, 0, 0
        for market, cfg in self.markets.items():
            if cfg.segment != segment:
                continue
            size, entry = self.positions.get((owner, market), (0, 0))
            if size == 0:
                continue
            mark = marks[market]
            index = self.funding.get(market, FundingState()).index_at(now, cfg.im, cfg.mm, mark)
            equity += position_value(size, mark - index, self.decimals) - entry
            notional = -((-abs(size) * mark) // scale_of(self.decimals))
            pos_im, pos_mm = margins(notional, cfg.im, cfg.mm, knee_units(cfg.size_knee, self.decimals))
            im += pos_im
            mm += pos_mm
        return coll, equity, im, mm

    def open_interest(self, market: int) -> int:
        return sum(max(s, 0) for (_, m), (s, _) in self.positions.items() if m == market)
