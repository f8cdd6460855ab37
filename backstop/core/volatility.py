"""The volatility-margin maths of RiskParams.vy, in floats (docs/margin.md).

An EWMA of squared log returns, time-scaled for irregular oracle rounds: each round folds
r^2 / dt (a variance per second) with weight alpha = 1 - e^(-dt / tau), so a round after a long
silence weighs more than one a second after the last. The margin asks for
MM = clamp(z * sigma_eff * sqrt(horizon), floor, cap) and IM = im_multiple * MM, where sigma_eff^2
puts STRESS_WEIGHT on the largest variance seen (EMIR RTS 153/2013 Art. 28(1)(b)) and a live
forecast can only raise it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SECONDS_PER_DAY = 86_400
SECONDS_PER_YEAR = 365 * SECONDS_PER_DAY
STRESS_WEIGHT = 0.25
RATIO_UNITS = 10**12  # RiskParams stores z, im_multiple, floor and cap in units of 1e-12
MAX_VARIANCE = (2**64 - 1) / 10**18  # per second: RiskParams' EWMA saturates here
# RiskMetrics: lambda = 0.94 per daily observation <=> tau = -1 day / ln(0.94)
RISKMETRICS_TAU = round(-SECONDS_PER_DAY / math.log(0.94))


def variance_per_second(annual_volatility: float) -> float:
    """sigma^2 per second of an annualized volatility (0.8 = 80%/year)."""
    return annual_volatility**2 / SECONDS_PER_YEAR


def ewma(variance: float, log_return: float, dt: float, tau: float) -> float:
    """The next estimate after a round `dt` seconds after the previous one."""
    alpha = 1.0 - math.exp(-dt / tau)
    return min((1.0 - alpha) * variance + alpha * log_return**2 / dt, MAX_VARIANCE)


def blended(variance: float, stressed: float) -> float:
    """Realized estimate with STRESS_WEIGHT on the stressed (largest seen) variance."""
    return (1.0 - STRESS_WEIGHT) * variance + STRESS_WEIGHT * stressed


def with_forecast(realized: float, forecast: float, start: float, end: float, now: float) -> float:
    """A forecast only raises the estimate, decaying linearly back to it between start and end."""
    if now >= end or forecast <= realized:
        return realized
    return realized + (forecast - realized) * (end - now) / (end - start)


def target_mm(variance: float, z: float, horizon: float, floor: float, cap: float) -> float:
    """MM ratio = clamp(z * sqrt(variance * horizon), floor, cap)."""
    return min(max(z * math.sqrt(variance * horizon), floor), cap)


@dataclass(frozen=True)
class VolMarginParams:
    """One market's RiskParams.RiskConfig, in human units (see `as_tuple` for the contract's)."""

    z: float = 3.09  # one-sided 99.9% normal quantile
    horizon: int = 1_800  # s: oracle lag (60) + keeper delay (60) + auction (600), twice over for safety
    tau: int = RISKMETRICS_TAU
    im_multiple: float = 2.0
    floor: float = 0.03
    cap: float = 0.25
    min_interval: int = 3_600
    max_forecast_duration: int = 7 * SECONDS_PER_DAY
    initial_volatility: float = 0.8  # annualized, before the first return

    def as_tuple(self) -> tuple[int, ...]:
        """The contract's RiskConfig: z, im_multiple, floor and cap in WAD rounded to RiskParams' 1e-12 unit."""
        return (
            stored_wad(self.z), self.horizon, self.tau, stored_wad(self.im_multiple), stored_wad(self.floor),
            stored_wad(self.cap), self.min_interval, self.max_forecast_duration,
            int(variance_per_second(self.initial_volatility) * 10**18),
        )


def stored_wad(value: float) -> int:
    """`value` in WAD, rounded to the 1e-12 unit RiskParams stores ratios and multipliers in."""
    return round(value * RATIO_UNITS) * (10**18 // RATIO_UNITS)
