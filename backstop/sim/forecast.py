"""The stress simulator's forecaster job: a fast EWMA of the oracle's squared log returns, pushed to RiskParams
through the production push (backstop.keeper.forecaster.push_if_higher) before every keeper poke.

Why not the GARCH(1,1) job of backstop.keeper.forecaster on the path's own history (docs/stress.md, "Margin
models"): it needs 30 returns before its first fit, and the crash replays have 31 to 61 oracle updates, so it
would speak only once the crash is over; and on the GBM paths (i.i.d. Poisson jumps, no volatility clustering)
the fit finds alpha ~ 0, so its forecast is the unconditional variance and never reacts to a jump. A fast/slow
EWMA pair does what the design asks of a forecaster on these paths: the slow EWMA is RiskParams' own
(RiskMetrics, tau ~ 16 days), the fast one here (tau 30 min) reacts to the first leg of a fall, and only its
excess over the chain's effective variance is pushed (the contract could not lower margin anyway).

An EWMA is the GARCH(1,1) with omega = 0 and alpha + beta = 1, so the push takes the same VolForecast record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ape.api import AccountAPI

from backstop.client.deploy import System
from backstop.core.volatility import variance_per_second
from backstop.keeper.forecaster import VolForecast, push_if_higher

FAST_TAU = 1_800  # s: a jump's weight halves in ~21 minutes
FORECAST_DURATION = 3_600  # s: an unrefreshed forecast decays back to the realized estimate within an hour


@dataclass
class _Seen:
    updated_at: int
    price: int
    variance: float  # per second


@dataclass
class FastEwmaForecaster:
    """One forecaster account (FORECASTER_ROLE) watching every market of `system`."""

    system: System
    account: AccountAPI
    tau: float = FAST_TAU
    duration: int = FORECAST_DURATION
    initial_volatility: float = 0.8  # annualized: the same prior as VolMarginParams
    seen: dict[int, _Seen] = field(default_factory=dict)
    pushes: int = 0

    def step(self) -> int:
        """Fold every market's newest round and push where the fast estimate asks for more; returns the pushes."""
        sent = 0
        for market in self.system.markets.values():
            forecast = self.observe(market.id, market.feed)
            if forecast is not None and push_if_higher(self.system.risk, market.id, forecast, self.account,
                                                       self.duration):
                sent += 1
        self.pushes += sent
        return sent

    def observe(self, market_id: int, feed) -> VolForecast | None:
        """The fast EWMA after this market's newest round (None before its second round, or on no new round)."""
        updated_at = int(feed.latestRoundData()[3])
        price = int(self.system.oracle.price(market_id))
        last = self.seen.get(market_id)
        if last is None:
            self.seen[market_id] = _Seen(updated_at, price, variance_per_second(self.initial_volatility))
            return None
        if updated_at <= last.updated_at:
            return None
        dt = updated_at - last.updated_at
        alpha = 1.0 - math.exp(-dt / self.tau)
        r = math.log(price / last.price)
        last.variance = (1.0 - alpha) * last.variance + alpha * r * r / dt
        last.updated_at, last.price = updated_at, price
        return VolForecast(last.variance, float(dt), 0.0, alpha, 1.0 - alpha)


def grant_forecaster(system: System, admin: AccountAPI, forecaster: AccountAPI) -> None:
    """Give `forecaster` RiskParams' FORECASTER_ROLE (the deployer holds its admin role on a local chain)."""
    risk = system.risk
    risk.grantRole(risk.FORECASTER_ROLE(), forecaster, sender=admin)


__all__ = ["FAST_TAU", "FORECAST_DURATION", "FastEwmaForecaster", "grant_forecaster"]
