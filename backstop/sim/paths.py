"""Price paths for the stress simulator: each is a sequence of price *multipliers* of the
initial oracle price, one per oracle update, for the majors and for the alts segment.

A path is data, not a simulation: the stress run (backstop.sim.stress) publishes
`initial_price * multiplier` to the mock feeds once per step, so the same path can be replayed
against any deployment and any keeper, and a sweep compares like with like.

Three kinds:
- `gbm`: geometric Brownian motion with Poisson jumps, seeded (numpy) so a run is reproducible;
- `gap`: a flat path with ONE oracle update that moves the price by exactly `-size`
  (the case no keeper can react to: nothing trades between the two prices);
- `crash`: replays of real crash days as path *shapes* (public figures, approximate, hard-coded
  below with their sources): the timing and depth of the fall, not the tick data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PricePath:
    """Multipliers of the initial price, index 0 == 1.0; `dt` seconds between oracle updates."""

    name: str
    majors: tuple[float, ...]
    alts: tuple[float, ...]
    dt: int = 60
    gap: float | None = None  # the designed one-update fall of a gap path (None for the others)

    def __post_init__(self) -> None:
        if len(self.majors) != len(self.alts):
            raise ValueError("majors and alts must have one multiplier per oracle update each")
        if min(self.majors + self.alts) <= 0:
            raise ValueError("a price multiplier must stay positive")

    def __len__(self) -> int:
        return len(self.majors)

    @property
    def worst_step(self) -> float:
        """The largest one-update fall of the majors (0.4 for a -40% gap): what no keeper can beat."""
        steps = [b / a - 1 for a, b in zip(self.majors, self.majors[1:])]
        return -min(steps, default=0.0)

    @property
    def trough(self) -> float:
        return min(self.majors)


def gap(size: float, *, before: int = 3, after: int = 6, drift: float = 0.0, dt: int = 60,
        alt_beta: float = 1.0) -> PricePath:
    """Flat, then ONE oracle update of exactly `-size` (0.4 = -40%), then `after` updates that
    each move by `drift` (0: flat; -0.01: the sell-off goes on, which is what makes a slow keeper
    costly). The alts fall by `size * alt_beta` (capped at -95%) in the same update."""
    if not 0 <= size < 1:
        raise ValueError("gap size is a fraction in [0, 1)")
    if abs(drift) >= 0.5:
        raise ValueError("drift is a small per-update move")
    alt = min(size * alt_beta, 0.95)
    tail = tuple((1.0 + drift) ** k for k in range(after + 1))
    majors = (1.0,) * before + tuple((1.0 - size) * x for x in tail)
    alts = (1.0,) * before + tuple((1.0 - alt) * x for x in tail)
    return PricePath(f"gap-{round(size * 100)}", majors, alts, dt, gap=size)


def gbm(steps: int, *, seed: int, sigma: float = 0.8, mu: float = 0.0, jump_rate: float = 2.0,
        jump_mean: float = -0.05, jump_std: float = 0.05, dt: int = 60, alt_beta: float = 1.5) -> PricePath:
    """GBM with lognormal jumps (Merton), annualized `sigma`/`mu`, `jump_rate` jumps per day.
    The alts share the same shocks scaled by `alt_beta` (alts move more than majors).
    Same seed -> same path, so a sweep point can be re-run exactly."""
    rng = np.random.default_rng(seed)
    years = dt / (365 * 86400)
    diffusion = (mu - sigma**2 / 2) * years + sigma * np.sqrt(years) * rng.standard_normal(steps - 1)
    n_jumps = rng.poisson(jump_rate * dt / 86400, steps - 1)
    jumps = n_jumps * jump_mean + np.sqrt(n_jumps) * jump_std * rng.standard_normal(steps - 1)
    log_returns = diffusion + jumps
    majors = np.exp(np.concatenate([[0.0], np.cumsum(log_returns)]))
    alts = np.exp(np.concatenate([[0.0], np.cumsum(log_returns * alt_beta)]))
    return PricePath(f"gbm-{seed}", tuple(float(x) for x in majors), tuple(float(x) for x in alts), dt)


def _interpolate(name: str, knots: list[tuple[int, float, float]], dt: int) -> PricePath:
    """Piecewise-linear path through (minute, majors multiplier, alts multiplier) knots."""
    minutes = [k[0] for k in knots]
    grid = np.arange(0, minutes[-1] * 60 + 1, dt) / 60
    majors = np.interp(grid, minutes, [k[1] for k in knots])
    alts = np.interp(grid, minutes, [k[2] for k in knots])
    return PricePath(name, tuple(float(x) for x in majors), tuple(float(x) for x in alts), dt)


# Crash days as (minute, majors, alts) knots. Figures are rounded public numbers, not tick data.
CRASHES: dict[str, tuple[list[tuple[int, float, float]], int]] = {
    # 19 May 2021: BTC fell from ~43k to ~30k intraday (about -30%), most of it within a few
    # hours of the US morning, then recovered to ~37k; alts (ETH ~-40%, many alts -50%) fell more.
    # (Widely reported, e.g. CoinDesk "Bitcoin plunges to $30K", 19 May 2021.)
    "may-2021": ([(0, 1.0, 1.0), (120, 0.92, 0.88), (240, 0.80, 0.72), (300, 0.70, 0.55), (360, 0.78, 0.65),
                  (480, 0.86, 0.75)], 600),
    # LUNA, 7-13 May 2022: UST lost its peg and LUNA fell from ~$80 to fractions of a cent within
    # days (> -99.9%); BTC fell ~-25% over the week (~40k -> ~29k). Compressed here into a few
    # hours of oracle updates: alts stand for the collapsing token, floored at -99%.
    "luna-2022": ([(0, 1.0, 1.0), (60, 0.95, 0.80), (120, 0.90, 0.50), (180, 0.85, 0.20), (240, 0.80, 0.05),
                   (300, 0.75, 0.01), (360, 0.76, 0.01)], 600),
    # FTX, 6-9 Nov 2022: BTC ~21k -> ~15.7k (about -25%) over three days, SOL (FTX-linked)
    # ~$35 -> ~$13 (about -60%), FTT -90%. Compressed into a few hours.
    "ftx-2022": ([(0, 1.0, 1.0), (60, 0.97, 0.90), (120, 0.90, 0.70), (180, 0.80, 0.45), (240, 0.75, 0.40),
                  (300, 0.77, 0.42)], 600),
    # 10 Oct 2025: after the US tariff announcement BTC fell ~-11% (~122k -> ~105k) in about 20
    # minutes; many alts fell -50% to -80% within ~5 minutes on some venues before bouncing; the
    # largest liquidation day on record (~$19bn). Per-minute updates: the real speed.
    "oct-2025": ([(0, 1.0, 1.0), (5, 0.97, 0.35), (10, 0.93, 0.30), (20, 0.89, 0.45), (40, 0.92, 0.60),
                  (60, 0.93, 0.65)], 60),
}


def crash(name: str) -> PricePath:
    """A replay of one of CRASHES (see the cited figures next to each)."""
    knots, dt = CRASHES[name]
    return _interpolate(name, knots, dt)


def make_path(spec: str, *, seed: int = 0) -> PricePath:
    """Parse a path spec: "gap:0.4", "gbm:120" (steps), or a crash name ("oct-2025")."""
    kind, _, arg = spec.partition(":")
    if kind == "gap":
        return gap(float(arg))
    if kind == "gbm":
        return gbm(int(arg or 120), seed=seed)
    if kind in CRASHES:
        return crash(kind)
    raise ValueError(f"unknown path {spec!r}: gap:<size>, gbm:<steps> or one of {sorted(CRASHES)}")


__all__ = ["CRASHES", "PricePath", "crash", "gap", "gbm", "make_path"]
