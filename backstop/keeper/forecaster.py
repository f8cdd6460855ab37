"""The forecaster keeper job: a GARCH(1,1) fitted with `arch` on a market's own oracle returns, pushed to
RiskParams as a variance that can only raise margin (docs/margin.md).

Why GARCH(1,1) rather than a fast/slow EWMA pair: volatility clusters, and GARCH's one-step forecast rises as
soon as a large return lands and mean-reverts at a fitted speed, which is exactly the "raise margin before
the storm fully arrives" the design asks for; the realized EWMA on chain reacts too, but at RiskMetrics'
fixed 0.94/day. The forecast is bounded on chain (only raises, cap, rate limit, decay), so a bad fit can
only cost traders margin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from ape.api import AccountAPI
from ape.contracts import ContractInstance
from arch import arch_model

from backstop.core.units import WAD

# arch fits better on percent returns (its optimizer's scale)
_PERCENT = 100.0


@dataclass(frozen=True)
class VolForecast:
    variance_per_second: float
    horizon_seconds: float
    omega: float
    alpha: float
    beta: float


def garch_forecast(log_returns: Sequence[float], interval_seconds: float) -> VolForecast:
    """One-step-ahead variance per second from a GARCH(1,1) fitted on returns sampled every
    `interval_seconds` (e.g. daily closes: 86,400)."""
    r = np.asarray(log_returns, dtype=float) * _PERCENT
    if len(r) < 30:
        raise ValueError("forecaster: at least 30 returns are needed to fit GARCH(1,1)")
    fitted = arch_model(r, mean="Zero", vol="GARCH", p=1, q=1, dist="t", rescale=False).fit(disp="off")
    step = float(fitted.forecast(horizon=1, reindex=False).variance.values[-1, 0]) / _PERCENT**2
    params = fitted.params
    return VolForecast(step / interval_seconds, interval_seconds, float(params["omega"]),
                       float(params["alpha[1]"]), float(params["beta[1]"]))


def push_if_higher(risk: ContractInstance, market: int, forecast: VolForecast, forecaster: AccountAPI,
                   duration: int) -> bool:
    """Push the forecast when it asks for more than the on-chain effective variance (it could not lower it
    anyway); returns whether a transaction was sent."""
    wanted = int(forecast.variance_per_second * WAD)
    if wanted <= int(risk.effective_variance(market)):
        return False
    risk.push_forecast(market, wanted, duration, sender=forecaster)
    return True


def oracle_returns(risk: ContractInstance, market: int, start_block: int = 0) -> tuple[list[float], float]:
    """The market's log returns as RiskParams folded them (its VolatilityUpdated events), and the median
    spacing of their rounds in seconds: the forecaster fits on exactly the history the chain saw."""
    head = int(risk.chain_manager.blocks.head.number)
    logs = [log for log in risk.VolatilityUpdated.range(start_block, head + 1) if int(log.market) == market]
    returns = [int(log.log_return) / WAD for log in logs[1:]]  # the first fold only seeds the estimate
    stamps = [int(risk.chain_manager.blocks[log.block_number].timestamp) for log in logs]
    gaps = sorted(b - a for a, b in zip(stamps, stamps[1:]) if b > a)
    return returns, float(gaps[len(gaps) // 2]) if gaps else 0.0
