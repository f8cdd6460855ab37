"""Monte Carlo fund sizing: a year of daily returns per path -> the pool's annual loss -> ES 99.9% -> target size.

The representative book is renewed every day at its leverage mix (each account opens at the day's first price with
collateral = notional / leverage): a day's bad debt then depends on that day's return only, so days are independent
and a path's annual loss is the sum of its days' deficits. That is what makes 100,000 paths cheap: a day can create a
deficit only if its return reaches the smallest liquidation threshold of the book, and the body's returns are drawn
by inverse CDF, so the t quantile function is evaluated on those rare tail days (and the jump days) only. Every other
day is certainly loss-free and costs one uniform draw.

On a candidate day an account of side s (+1 long) with adverse move A = -s x r is liquidated iff max(A, gap) reaches
its threshold (equity = MM). The keeper acts `latency` days later: at the gap plus the move over the latency if the
day gapped through the threshold, else at the threshold plus that move, never beyond the day's close. The engine maths
(backstop.risk.margin, the same code the chain test checks to the wei) then prices the liquidation and its deficit,
for the accounts bankrupt at that mark (only they can leave a deficit).
"""

from __future__ import annotations

import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import stats

from backstop.core.units import WAD
from backstop.risk.margin import EngineParams, equity, liquidate
from backstop.risk.returns import GAP_SHARE, ReturnModel

DAYS = 365
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class Book:
    """A segment's representative open interest: quote units per side, split into leverage buckets."""

    open_interest: float  # human quote units, long side (= short side)
    leverages: tuple[float, ...] = (2.0, 5.0, 8.0, 10.0)
    weights: tuple[float, ...] = (0.3, 0.4, 0.2, 0.1)
    keeper_latency: float = 0.01  # days between liquidatable and liquidated (0.01 d ~ 14 min)

    def accounts(self, decimals: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(side, notional in quote units, collateral) of the 2 x buckets accounts (long then short)."""
        side = np.repeat([1.0, -1.0], len(self.leverages))
        notional = np.tile(np.asarray(self.weights) / sum(self.weights), 2) * self.open_interest * 10**decimals
        return side, notional, notional / np.tile(self.leverages, 2)


def thresholds(book: Book, mm_ratio: float) -> np.ndarray:
    """Adverse log move at which each account's equity meets MM (longs, then shorts)."""
    lev = np.asarray(book.leverages)
    long = -np.log((1 - 1 / lev) / (1 - mm_ratio))
    short = np.log((1 + 1 / lev) / (1 + mm_ratio))
    return np.concatenate([long, short])


def add_gaps(rng: np.random.Generator, gaps: np.ndarray, rate: float, sizes: np.ndarray, log: bool) -> None:
    """Compound Poisson: Poisson(rate x days) events per path on uniform days, sizes resampled from `sizes`
    (log returns, or simple returns when not `log`)."""
    n_paths, n_days = gaps.shape
    counts = rng.poisson(rate * n_days, n_paths)
    total = int(counts.sum())
    if total == 0:
        return
    paths = np.repeat(np.arange(n_paths), counts)
    days = rng.integers(0, n_days, total)
    draw = rng.choice(sizes, size=total)
    np.add.at(gaps, (paths, days), draw if log else np.log1p(draw))


TABLE_POINTS = 4096
TABLE_MIN_U = 1e-14  # tail probability below which the quantile is clipped: 1e-14 x 36.5M days ~ never


def tail_quantiles(u: np.ndarray, df: float, tail: float) -> np.ndarray:
    """Standard t quantiles of tail uniforms (u < tail or u > 1 - tail) by interpolation in log(tail probability):
    `scipy.stats.t.ppf` on every tail day was the sizing's largest cost; the table's error is < 1e-6 relative."""
    grid = np.geomspace(TABLE_MIN_U, tail, TABLE_POINTS)
    q = stats.t.ppf(grid, df)
    lower = u < 0.5
    p = np.where(lower, u, 1 - u)
    x = np.interp(np.log(np.maximum(p, TABLE_MIN_U)), np.log(grid), q)
    return np.where(lower, x, -x)


def candidate_days(rng: np.random.Generator, model: ReturnModel, n_paths: int, floor: float):
    """(path, day, continuous return, gap) of the only days that can leave a deficit: |t body| >= floor, a jump or a
    stress day (the same law as ReturnModel.sample)."""
    jumps = np.zeros((n_paths, DAYS))
    add_gaps(rng, jumps, model.jump_rate, model.jump_sizes, log=True)
    gaps = jumps * GAP_SHARE
    if model.stress:
        add_gaps(rng, gaps, model.stress_rate, np.asarray(model.stress), log=False)
    u = rng.random((n_paths, DAYS))
    lo = stats.t.cdf((-floor - model.loc) / model.scale, model.df)
    hi = stats.t.sf((floor - model.loc) / model.scale, model.df)
    path, day = np.nonzero((u < lo) | (u > 1 - hi) | (gaps != 0))
    picked = u[path, day]
    tail = (picked < lo) | (picked > 1 - hi)
    t = np.empty(picked.size)
    t[tail] = tail_quantiles(picked[tail], model.df, max(lo, hi))
    t[~tail] = stats.t.ppf(picked[~tail], model.df)  # jump and stress days in the body: few
    body = model.loc + model.scale * t + jumps[path, day] * (1 - GAP_SHARE)
    return path, day, body, gaps[path, day]


def execution_move(adverse: np.ndarray, gap: np.ndarray, threshold: np.ndarray, slip: np.ndarray) -> np.ndarray:
    """Adverse log move at which the keeper liquidates (NaN: never liquidatable that day)."""
    gapped = gap >= threshold
    move = np.where(gapped, np.maximum(gap, np.minimum(adverse, gap + slip)), np.minimum(adverse, threshold + slip))
    return np.where(gapped | (adverse >= threshold), move, np.nan)


def deficits(move: np.ndarray, account: np.ndarray, book: Book, decimals: int, params: EngineParams,
             elapsed: int) -> np.ndarray:
    """Deficit (quote units) of each (account, execution move) pair marked past bankruptcy, engine maths in float.

    Only accounts past bankruptcy reach here: the engine never lets a solvent account's liquidation leave bad debt
    (its discount, fee and penalty are capped at the equity; tests/risk checks it on the chain), and a bankrupt one
    is closed in full by one call (its equity is below the full-close tier x MM)."""
    side, notional, collateral = book.accounts(decimals)
    s, n, c = side[account], notional[account], collateral[account]
    mark = WAD * np.exp(-s * move)
    size = s * n * params.scale / WAD  # opened at price 1 (WAD): the entry notional is the signed notional
    out = np.zeros(move.shape)
    bankrupt = equity(c, size, s * n, mark, params.scale) <= 0  # float rounding at the boundary: the engine's test
    out[bankrupt] = liquidate(c[bankrupt], size[bankrupt], (s * n)[bankrupt], mark[bankrupt], params, elapsed).deficit
    return out


def bankruptcy_moves(book: Book) -> np.ndarray:
    """Adverse log move at which each account's equity reaches zero (longs, then shorts)."""
    lev = np.asarray(book.leverages)
    return np.concatenate([-np.log(1 - 1 / lev), np.log(1 + 1 / lev)])


@dataclass(frozen=True)
class Segment:
    """What one segment's simulation needs: its return law, its book and its engine parameters (float)."""

    name: str
    model: ReturnModel
    book: Book
    params: EngineParams
    decimals: int

    @property
    def elapsed(self) -> int:
        """Auction seconds run when the keeper acts (the latency)."""
        return int(self.book.keeper_latency * SECONDS_PER_DAY)

    def float_params(self) -> EngineParams:
        return EngineParams(*(float(getattr(self.params, f)) for f in EngineParams.__dataclass_fields__))


def simulate_chunk(rng: np.random.Generator, seg: Segment, n_paths: int) -> np.ndarray:
    """Annual pool loss (quote units, gross of income) of `n_paths` one-year paths."""
    params = seg.float_params()
    side = seg.book.accounts(seg.decimals)[0]
    threshold = thresholds(seg.book, params.mm_ratio / WAD)
    # a deficit needs the keeper's mark past bankruptcy, and that mark never passes both the close and the gap
    path, _, body, gap = candidate_days(rng, seg.model, n_paths, float(bankruptcy_moves(seg.book).min()))
    losses = np.zeros(n_paths)
    if path.size == 0:
        return losses
    r = body + gap
    bankruptcy = bankruptcy_moves(seg.book)
    adverse, gapped = -side * r[:, None], -side * gap[:, None]
    # a keeper's mark never passes both the close and the gap: only these pairs can go past bankruptcy
    row, account = np.nonzero(np.maximum(adverse, gapped) >= bankruptcy)
    sigma = seg.model.scale * math.sqrt(seg.model.df / (seg.model.df - 2)) if seg.model.df > 2 else seg.model.scale
    slip = sigma * math.sqrt(seg.book.keeper_latency) * np.abs(rng.standard_normal(row.size))
    move = execution_move(adverse[row, account], gapped[row, account], threshold[account], slip)
    pool_loss = deficits(move, account, seg.book, seg.decimals, params, seg.elapsed)
    np.add.at(losses, path[row], pool_loss)
    return losses


def run_chunk(job: tuple[Segment, int, np.random.SeedSequence]) -> np.ndarray:
    """One chunk with its own seed (a process-pool task)."""
    seg, n_paths, seq = job
    return simulate_chunk(np.random.default_rng(seq), seg, n_paths)


def simulate(seg: Segment, n_paths: int, seed: int = 0, chunk: int = 20_000, workers: int = 2) -> np.ndarray:
    """Annual losses of `n_paths` paths, in chunks (bounded memory: a few chunk x 365 arrays) spread over `workers`
    processes. Every chunk has its own child seed, so the result does not depend on `workers`."""
    sizes = [min(chunk, n_paths - i) for i in range(0, n_paths, chunk)]
    if not sizes:
        return np.zeros(0)
    jobs = list(zip([seg] * len(sizes), sizes, np.random.SeedSequence(seed).spawn(len(sizes))))
    if workers <= 1 or len(jobs) == 1:
        return np.concatenate([run_chunk(job) for job in jobs])
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return np.concatenate(list(pool.map(run_chunk, jobs)))


def tail_count(n: int, alpha: float) -> int:
    """How many of n outcomes form the (1 - alpha) tail: ceil((1 - alpha) n), at least 1."""
    return max(1, math.ceil(round((1 - alpha) * n, 9)))


def value_at_risk(losses: np.ndarray, alpha: float) -> float:
    """The smallest loss of the worst (1 - alpha) share of outcomes."""
    k = tail_count(losses.size, alpha)
    return float(np.partition(losses, losses.size - k)[losses.size - k])


def expected_shortfall(losses: np.ndarray, alpha: float) -> float:
    """Mean of the worst ceil((1 - alpha) n) losses (the empirical ES / CVaR at alpha)."""
    k = tail_count(losses.size, alpha)
    return float(np.partition(losses, losses.size - k)[losses.size - k:].mean())


def clopper_pearson(hits: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact binomial confidence interval for hits / n (never narrower than the truth allows)."""
    a = (1 - confidence) / 2
    lo = 0.0 if hits == 0 else float(stats.beta.ppf(a, hits, n - hits + 1))
    hi = 1.0 if hits == n else float(stats.beta.ppf(1 - a, hits + 1, n - hits))
    return lo, hi


def round_up(x: float, digits: int = 2) -> int:
    """x rounded up to `digits` significant digits (a target a governance proposal can state)."""
    if x <= 0:
        return 0
    step = 10 ** max(0, int(math.floor(math.log10(x))) - digits + 1)
    return int(math.ceil(x / step) * step)


@dataclass(frozen=True)
class SizingResult:
    segment: str
    paths: int
    es_999: float  # quote units
    var_999: float  # quote units: the floor, below which ruin is more likely than 0.1% a year
    target_size: int  # quote units: ES rounded up
    mean_loss: float
    ruin_paths: int  # independent paths
    ruin_hits: int
    ruin_probability: float
    ruin_ci: tuple[float, float]
    seconds: float


def size_segment(seg: Segment, n_paths: int, seed: int = 0, alpha: float = 0.999,
                 workers: int = 2) -> tuple[SizingResult, np.ndarray]:
    """Target = ES_alpha of the annual loss; ruin = P(annual loss > target) on an independent set of paths."""
    start = time.perf_counter()
    losses = simulate(seg, n_paths, seed, workers=workers)
    es = expected_shortfall(losses, alpha)
    target = round_up(es)
    check = simulate(seg, n_paths, seed + 1_000_003, workers=workers)
    hits = int((check > target).sum())
    result = SizingResult(seg.name, n_paths, es, value_at_risk(losses, alpha), target, float(losses.mean()), n_paths,
                          hits, hits / n_paths, clopper_pearson(hits, n_paths), time.perf_counter() - start)
    return result, losses


def paths_per_second(seg: Segment, n_paths: int = 100_000, seed: int = 7, workers: int = 2) -> float:
    """Measured one-year daily paths per second of `simulate` (calibration excluded), for scripts/bench.py."""
    start = time.perf_counter()
    simulate(seg, n_paths, seed, workers=workers)
    return n_paths / (time.perf_counter() - start)
