"""Premium-based funding and size-aware margin, as MarginVault computes them (exact integers).

Transcribed from the vault's docstrings (docs/margin.md), so tests and the simulator can compute
expected figures independently of the contract:

- a market keeps one word: funding index I (quote price units per unit of size), the premium p
  (WAD ratio: the rate paid per period P = 8 h) and the time of its last fill;
- between fills the premium fades linearly to zero over one period, clamped to half the IM - MM
  gap: I grows by price * clamp(p) * t (2P - t) / (2 P^2 WAD), t = min(elapsed, P);
- a fill accrues I at the oracle mark, then p <- faded + (observed - faded) * min(elapsed, W) / W
  with observed = (fill price - mark) / mark and W = 1 h (at most once per block);
- a position's value is floor(size * (mark - I) / scale) - basis: both sides of a trade join I
  at its value then (cost basis += cost - trunc(delta * I / scale)), so funding is zero-sum.

Size-aware margin: with a knee K (quote units) a position's ratios grow x (1 + n / K), IM capped at
the notional n and MM at n * mm / im.
"""

from __future__ import annotations

from dataclasses import dataclass

from backstop.core.units import WAD, ceil_div

FUNDING_PERIOD = 8 * 3600
PREMIUM_WINDOW = 3600
KNEE_TOKENS = 10_000


def _trunc_div(numerator: int, denominator: int) -> int:
    """Division truncating toward zero, as the EVM's SDIV (Vyper's `//` on signed integers)."""
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator > 0) else -quotient


def accrued(premium: int, elapsed: int, im_ratio: int, mm_ratio: int, price: int) -> int:
    """Funding per unit of size accrued over `elapsed` seconds at `price`."""
    if premium == 0 or elapsed <= 0:
        return 0
    gap = (im_ratio - mm_ratio) // 2
    rate = max(min(premium, gap), -gap)
    t = min(elapsed, FUNDING_PERIOD)
    return _trunc_div(rate * price * t * (2 * FUNDING_PERIOD - t), 2 * FUNDING_PERIOD * FUNDING_PERIOD * WAD)


@dataclass
class FundingState:
    """One market's funding word."""

    index: int = 0
    premium: int = 0
    last: int = 0

    def index_at(self, now: int, im_ratio: int, mm_ratio: int, price: int) -> int:
        """The index now, valued at `price` (what health and liquidations use; nothing is stored)."""
        return self.index + accrued(self.premium, now - self.last, im_ratio, mm_ratio, price)

    def settle(self, now: int, im_ratio: int, mm_ratio: int, fill_price: int, mark: int) -> int:
        """A fill at `fill_price` with the oracle at `mark`: accrue, fold its premium in; returns the index."""
        elapsed = now - self.last
        if elapsed == 0:
            return self.index
        self.index += accrued(self.premium, elapsed, im_ratio, mm_ratio, mark)
        faded = _trunc_div(self.premium * (FUNDING_PERIOD - min(elapsed, FUNDING_PERIOD)), FUNDING_PERIOD)
        observed = _trunc_div((fill_price - mark) * WAD, mark)
        self.premium = faded + _trunc_div((observed - faded) * min(elapsed, PREMIUM_WINDOW), PREMIUM_WINDOW)
        self.last = now
        return self.index


def funding_adjustment(delta: int, index: int, scale: int) -> int:
    """What a side buying signed `delta` subtracts from its cost: trunc(delta * index / scale)."""
    return _trunc_div(delta * index, scale)


def knee_units(size_knee: int, decimals: int) -> int:
    """A market's size knee in quote units."""
    return size_knee * KNEE_TOKENS * 10**decimals


def margins(notional: int, im_ratio: int, mm_ratio: int, knee: int) -> tuple[int, int]:
    """(IM, MM) of one position of `notional` quote units, `knee` in quote units (0: flat)."""
    im = ceil_div(notional * im_ratio, WAD)
    mm = ceil_div(notional * mm_ratio, WAD)
    if knee == 0:
        return im, mm
    im = min(ceil_div(im * (knee + notional), knee), notional)
    mm = min(ceil_div(mm * (knee + notional), knee), ceil_div(notional * mm_ratio, im_ratio))
    return im, mm
