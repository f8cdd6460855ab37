"""Daily return model: Student-t body + compound Poisson jumps, fitted on real data, plus hard-coded stress days.

Why this shape: daily crypto returns have tails far fatter than a normal and a few days (crashes, exchange failures)
that no smooth body explains. The body is a Student-t fitted by maximum likelihood (scipy.stats.t.fit) on the days
within k sigma; the days beyond k sigma are the jumps: their count over the sample gives the Poisson rate and their
sizes are resampled as observed (an empirical jump law, no shape imposed on ~100 points). A daily close-to-close jump
is not all one gap: keepers act inside a 15% day. GAP_SHARE of each data jump is modelled as a gap (the price moves
before anyone can act), the rest moves continuously with the body; the stress days are gaps in full. GARCH clustering is left
out on purpose: the pool's annual loss is driven by how many gap days a year holds, which the jump rate carries, and
an i.i.d. model keeps 100,000 one-year paths within the time budget (docs/risk.md).

Stress days (public figures, hard-coded; each is a daily gap the keepers cannot act inside):
- 19 May 2021: BTC fell ~30% intraday (about $43k to $30k) before recovering.
- LUNA, 9-12 May 2022: LUNA lost > 99% within days; BTC fell ~ -15% over those days; alts -30% to -50%.
- FTX, 8-9 Nov 2022: BTC ~ -22% over two days (about $20.6k to $15.7k), SOL ~ -40% in a day, FTT -80%.
- 10 Oct 2025: BTC -11% in about 20 minutes; many alts -50% to -80% within 5 minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

# (name, majors gap, alts gap), log-return scale ~ simple-return figures above
STRESS_DAYS: tuple[tuple[str, float, float], ...] = (
    ("2021-05-19 crash", -0.30, -0.45),
    ("2022-05 LUNA", -0.15, -0.90),
    ("2022-11 FTX", -0.22, -0.40),
    ("2025-10-10 cascade", -0.11, -0.70),
)
# 4 named days in the 2021-2025 five years: each recurs at 1 in 5 years in the model
STRESS_RATE_PER_YEAR = 4 / 5.0
# share of a data jump that gaps (no keeper can act inside it); a choice, see docs/risk.md
GAP_SHARE = 0.5


@dataclass(frozen=True)
class ReturnModel:
    """One segment's daily log-return law."""

    df: float
    loc: float
    scale: float
    jump_rate: float  # jumps per day
    jump_sizes: np.ndarray = field(repr=False)  # empirical jump log returns (resampled)
    stress: tuple[float, ...] = ()  # simple-return gaps of the stress days
    stress_rate: float = STRESS_RATE_PER_YEAR / 365.0  # per day, all stress days together

    def summary(self) -> dict:
        """Calibration figures for the report (no data points: the source has no license)."""
        return {"t_df": self.df, "t_loc": self.loc, "t_scale": self.scale, "jump_rate_per_year": self.jump_rate * 365,
                "jump_count": int(self.jump_sizes.size), "jump_mean_abs": float(np.mean(np.abs(self.jump_sizes))),
                "stress_gaps": list(self.stress), "stress_rate_per_year": self.stress_rate * 365}

    def scaled(self, vol: float, jump_rate: float, stress: tuple[float, ...]) -> "ReturnModel":
        """An alt-like segment: the same shape with `vol` x the scale and jump sizes, `jump_rate` x the rate."""
        return ReturnModel(self.df, self.loc, self.scale * vol, self.jump_rate * jump_rate, self.jump_sizes * vol,
                           stress, self.stress_rate)

    def sample(self, rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """(daily log returns, gap part of them): the gap part moves the price before any keeper can act.
        Reference sampler (the sizing draws the same law sparsely, see backstop.risk.sizing)."""
        body = self.loc + self.scale * rng.standard_t(self.df, size=shape)
        gaps = np.zeros(shape)
        jumps = rng.random(shape) < self.jump_rate
        n = int(jumps.sum())
        if n:
            jump = rng.choice(self.jump_sizes, size=n)
            body[jumps] += jump * (1 - GAP_SHARE)
            gaps[jumps] = jump * GAP_SHARE
        if self.stress:
            hit = rng.random(shape) < self.stress_rate
            k = int(hit.sum())
            if k:
                gaps[hit] = np.log1p(rng.choice(np.asarray(self.stress), size=k))
        return body + gaps, gaps


def fit(returns: np.ndarray, k: float = 4.0, stress: tuple[float, ...] = ()) -> ReturnModel:
    """Fit the body on |r - median| <= k x sigma (sigma: 1.4826 MAD, robust to the jumps it separates) and the
    jump component on the rest."""
    centre = float(np.median(returns))
    sigma = 1.4826 * float(np.median(np.abs(returns - centre)))
    tail = np.abs(returns - centre) > k * sigma
    df, loc, scale = stats.t.fit(returns[~tail])
    return ReturnModel(float(df), float(loc), float(scale), float(tail.mean()), returns[tail] - loc, stress)
