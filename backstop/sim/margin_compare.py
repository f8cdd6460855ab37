"""Margin models compared at equal average margin (docs/stress.md, "Margin models at equal average margin").

Static, EWMA, predictive and size-aware margin (stress.MARGIN_MODELS) meet the same price paths (stormy GBM with
jumps, and the real crash days of paths.CRASHES) with the same margin-aware traders (backstop.sim.crowd). A model
that simply asks for more margin everywhere would win by taxing traders more, so each is first calibrated to the
**same average margin** as static:

    average margin = Σ_runs Σ_intervals dt x IM  /  Σ_runs Σ_intervals dt x notional

over the traders' open positions, IM and notional as the vault computes them (VaultLens.health_of) at the end of
every oracle interval: the notional-weighted time average of the IM ratio, i.e. how many dollars of IM a dollar
of position posts on average. Static posts its IM ratio on every position, so its average is that ratio.

Calibration turns each model's one knob (`RunSpec.margin_scale`, MarginModel) until its average on a
*calibration* path set (GBM seeds that are not evaluated) is within CALIBRATION_TOLERANCE of static's on the same
set: a proportional first step (the average is close to linear in the scale), then secant steps, safeguarded by
bisection once the target is bracketed. The evaluation then runs every model at its calibrated scale on the
evaluation paths and records bad debt, pool drawdown, liquidations and each model's measured average margin, so
the equality can be checked out of sample.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from os import PathLike
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from backstop.sim.paths import CRASHES, PricePath, crash, gbm
from backstop.sim.stress import Result, RunSpec, _pyplot, _save, write_csv, write_dataclass_rows

MODELS = ("static", "ewma", "predictive", "size")
REFERENCE = "static"
# A stormy hour-scale market: 120%/year diffusion and about one -5% +/- 5% jump every two hours (alts x1.5).
STORM = dict(sigma=1.2, jump_rate=12.0, jump_mean=-0.05, jump_std=0.05, dt=60, alt_beta=1.5)
GBM_STEPS = 60
CALIBRATION_SEEDS = (100,)
EVALUATION_SEEDS = (0, 1, 2)
CALIBRATION_TOLERANCE = 0.01  # relative: a calibrated average within 1% of static's (0.100 +/- 0.001)
MAX_ITERATIONS = 6
# The common population of every run: margin-aware traders with unequal collateral (a few whales), a keeper
# one update behind on the per-minute paths, pools deep enough that bad debt shows before ADL does.
CROWD = dict(traders="margin", n_traders=8, collateral_sigma=0.8, im_share=(0.3, 0.95), long_share=0.75,
             latency=60, pool_deposit=60_000, backstop_deposit=60_000)

Runner = Callable[[Sequence[RunSpec]], list[Result]]


def storm_path(seed: int, steps: int = GBM_STEPS) -> PricePath:
    return gbm(steps, seed=seed, **STORM)


def evaluation_paths(seeds: Sequence[int] = EVALUATION_SEEDS, crashes: Sequence[str] = tuple(CRASHES),
                     steps: int = GBM_STEPS) -> list[tuple[PricePath, int]]:
    """(path, trader seed) pairs: GBM paths seeded like their traders, each crash day with trader seed 0."""
    return [(storm_path(s, steps), s) for s in seeds] + [(crash(name), 0) for name in crashes]


def calibration_paths(seeds: Sequence[int] = CALIBRATION_SEEDS, steps: int = GBM_STEPS) -> list[tuple[PricePath, int]]:
    return [(storm_path(s, steps), s) for s in seeds]


def spec_for(path: PricePath, seed: int, model: str, scale: float, crowd: dict[str, Any]) -> RunSpec:
    return RunSpec(path=path, seed=seed, margin_model=model, margin_scale=scale,
                   label=f"{path.name}/{model}@{scale:.4f}", **crowd)


def pooled_margin(results: Iterable[Result]) -> float:
    """The average margin of a set of runs (module docstring): Σ dt·IM / Σ dt·notional."""
    results = list(results)
    notional = sum(r.notional_seconds for r in results)
    return sum(r.im_seconds for r in results) / notional if notional else 0.0


# ---------------------------------------------------------------- calibration


@dataclass
class Calibration:
    """One model's search for the scale at which its average margin equals the target."""

    model: str
    target: float
    tolerance: float = CALIBRATION_TOLERANCE
    tried: list[tuple[float, float]] = field(default_factory=list)  # (scale, measured average margin)

    @property
    def scale(self) -> float:
        """The best scale tried (closest to the target)."""
        return min(self.tried, key=lambda t: abs(t[1] - self.target))[0] if self.tried else 1.0

    @property
    def measured(self) -> float:
        return min(self.tried, key=lambda t: abs(t[1] - self.target))[1] if self.tried else 0.0

    @property
    def done(self) -> bool:
        return bool(self.tried) and abs(self.measured / self.target - 1) <= self.tolerance

    def next_scale(self) -> float:
        """The first step is proportional (average ~ linear in scale), then a secant through the last two
        points; once one point lies on each side of the target, a step that leaves that bracket is replaced
        by its midpoint (bisection), so the search cannot diverge."""
        if not self.tried:
            return 1.0
        scale, measured = self.tried[-1]
        step = scale * self.target / measured if measured > 0 else scale * 2
        if len(self.tried) >= 2:
            (s0, m0), (s1, m1) = self.tried[-2], self.tried[-1]
            if m1 != m0:
                step = s1 + (self.target - m1) * (s1 - s0) / (m1 - m0)
        below = [s for s, m in self.tried if m < self.target]
        above = [s for s, m in self.tried if m > self.target]
        if below and above:
            low, high = max(below), min(above)  # the average margin rises with the scale
            if not low < step < high:
                step = (low + high) / 2
        elif step <= 0:
            step = scale / 2
        return step


def calibrate(models: Sequence[str], runner: Runner, paths: Sequence[tuple[PricePath, int]],
              crowd: dict[str, Any] | None = None, reference: str = REFERENCE,
              tolerance: float = CALIBRATION_TOLERANCE, max_iterations: int = MAX_ITERATIONS,
              reference_scale: float = 1.0) -> tuple[float, dict[str, Calibration]]:
    """The reference model's average margin on `paths` (the target), and every other model's calibration to it.
    All models advance together: one `runner` batch per iteration (the reference joins the first one)."""
    crowd = dict(CROWD if crowd is None else crowd)
    pending = [m for m in models if m != reference]
    calibrations = {m: Calibration(m, target=0.0, tolerance=tolerance) for m in pending}
    target: float | None = None
    for _ in range(max_iterations):
        todo = [c for c in calibrations.values() if not c.done]
        batch = [(m.model, m.next_scale()) for m in todo]
        if target is None:
            batch.append((reference, reference_scale))
        if not batch:
            break
        specs = [spec_for(p, seed, model, scale, crowd) for model, scale in batch for p, seed in paths]
        results = runner(specs)
        by_model = _by_key(batch, results, len(paths))
        if target is None:
            target = pooled_margin(by_model[(reference, reference_scale)])
            for c in calibrations.values():
                c.target = target
        for c, (model, scale) in zip(todo, batch):
            c.tried.append((scale, pooled_margin(by_model[(model, scale)])))
    return (target or 0.0), calibrations


def _by_key(batch: list[tuple[str, float]], results: list[Result], per: int) -> dict[tuple[str, float], list[Result]]:
    """Results in batch order, `per` consecutive results per (model, scale); a failed run is an error here:
    an average over the runs that happened to succeed would not be the model's average."""
    failed = [r for r in results if r.failed]
    if failed:
        raise RuntimeError(f"calibration run failed: {failed[0].label}: {failed[0].failed}")
    return {key: results[i * per:(i + 1) * per] for i, key in enumerate(batch)}


# ---------------------------------------------------------------- evaluation


@dataclass
class ModelSummary:
    """One row of reports/margin_compare.csv."""

    model: str
    scale: float
    runs: int
    bad_debt: float  # whole quote units, summed over the runs
    bad_debt_vs_static: float  # relative change (-0.5 = half of static's)
    bad_debt_gbm: float
    bad_debt_crash: float
    max_drawdown: float  # worst pool drawdown of any run
    mean_drawdown: float
    liquidations: int
    liquidations_vs_static: float
    adl_events: int
    avg_margin: float  # pooled over every evaluation run
    avg_margin_gbm: float  # pooled over the GBM evaluation runs (same kind of paths as the calibration)
    avg_margin_crash: float
    calibration_margin: float  # measured on the calibration paths at `scale`
    forecasts: int
    trader_fills: int
    failed_runs: int


def evaluate(scales: dict[str, float], runner: Runner, paths: Sequence[tuple[PricePath, int]],
             crowd: dict[str, Any] | None = None) -> list[Result]:
    """Every model at its calibrated scale on every evaluation path (one runner batch)."""
    crowd = dict(CROWD if crowd is None else crowd)
    specs = [spec_for(p, seed, model, scale, crowd) for model, scale in scales.items() for p, seed in paths]
    return runner(specs)


def summarize(results: Sequence[Result], calibration_margin: dict[str, float] | None = None,
              decimals: int = 6) -> list[ModelSummary]:
    """One summary per model (in the order they first appear), with the change against the reference."""
    unit = 10**decimals
    models = list(dict.fromkeys(r.margin_model for r in results))
    rows = []
    for model in models:
        runs = [r for r in results if r.margin_model == model and not r.failed]
        gbm_runs = [r for r in runs if r.path.startswith("gbm-")]
        crash_runs = [r for r in runs if not r.path.startswith("gbm-")]
        rows.append(ModelSummary(
            model=model, scale=results[[r.margin_model for r in results].index(model)].margin_scale, runs=len(runs),
            bad_debt=sum(r.bad_debt for r in runs) / unit, bad_debt_vs_static=0.0,
            bad_debt_gbm=sum(r.bad_debt for r in gbm_runs) / unit,
            bad_debt_crash=sum(r.bad_debt for r in crash_runs) / unit,
            max_drawdown=max((r.pool_drawdown for r in runs), default=0.0),
            mean_drawdown=float(np.mean([r.pool_drawdown for r in runs])) if runs else 0.0,
            liquidations=sum(r.liquidations for r in runs), liquidations_vs_static=0.0,
            adl_events=sum(r.adl_events for r in runs),
            avg_margin=pooled_margin(runs), avg_margin_gbm=pooled_margin(gbm_runs),
            avg_margin_crash=pooled_margin(crash_runs),
            calibration_margin=(calibration_margin or {}).get(model, 0.0),
            forecasts=sum(r.forecasts for r in runs), trader_fills=sum(r.trader_fills for r in runs),
            failed_runs=sum(1 for r in results if r.margin_model == model and r.failed)))
    reference = next((row for row in rows if row.model == REFERENCE), None)
    for row in rows:
        if reference is not None:
            row.bad_debt_vs_static = _change(row.bad_debt, reference.bad_debt)
            row.liquidations_vs_static = _change(row.liquidations, reference.liquidations)
    return rows


def _change(value: float, reference: float) -> float:
    return value / reference - 1 if reference else 0.0


# ---------------------------------------------------------------- reports


def write_summary(rows: Sequence[ModelSummary], path: str | PathLike) -> None:
    write_dataclass_rows(rows, list(ModelSummary.__dataclass_fields__), path)


def plot_compare(rows: Sequence[ModelSummary], path: str | PathLike) -> None:
    """Four panels, one bar per model: bad debt (GBM and crash days stacked), worst pool drawdown, liquidations,
    and the measured average margin (GBM and crash-day runs side by side, static's as a line)."""
    plt = _pyplot()
    names = [r.model for r in rows]
    x = np.arange(len(rows))
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    ax = axes[0][0]
    ax.bar(x, [r.bad_debt_gbm for r in rows], label="GBM + jumps")
    ax.bar(x, [r.bad_debt_crash for r in rows], bottom=[r.bad_debt_gbm for r in rows], label="crash days")
    for i, r in enumerate(rows):
        ax.text(i, r.bad_debt, f"{r.bad_debt:,.0f}\n({r.bad_debt_vs_static:+.0%})", ha="center", va="bottom",
                fontsize=8)
    ax.set_ylim(top=max([r.bad_debt for r in rows] + [1.0]) * 1.25)  # room for the labels above the bars
    ax.set(title="Bad debt (quote units, all runs)", xticks=x, xticklabels=names)
    ax.legend(fontsize=8)
    ax = axes[0][1]
    ax.bar(x, [r.max_drawdown * 100 for r in rows], color="tab:red", label="worst run")
    ax.bar(x, [r.mean_drawdown * 100 for r in rows], color="tab:orange", width=0.5, label="mean")
    ax.set(title="Pool drawdown, %", xticks=x, xticklabels=names)
    ax.legend(fontsize=8)
    ax = axes[1][0]
    ax.bar(x, [r.liquidations for r in rows], color="tab:purple")
    ax.set(title="Liquidations (all runs)", xticks=x, xticklabels=names)
    ax = axes[1][1]
    ax.bar(x - 0.2, [r.avg_margin_gbm * 100 for r in rows], width=0.4, label="GBM runs")
    ax.bar(x + 0.2, [r.avg_margin_crash * 100 for r in rows], width=0.4, label="crash-day runs")
    reference = next((r for r in rows if r.model == REFERENCE), rows[0])
    ax.axhline(reference.avg_margin_gbm * 100, color="k", lw=0.8, ls="--")
    ax.set(title="Average IM ratio (notional-weighted, time-averaged), %", xticks=x, xticklabels=names)
    ax.legend(fontsize=8)
    fig.suptitle("Margin models at equal average margin")
    _save(fig, path)


def write_calibration(target: float, calibrations: dict[str, Calibration], path: str | PathLike,
                      paths: Sequence[tuple[PricePath, int]]) -> None:
    payload = {"target": target, "paths": [p.name for p, _ in paths],
               "models": {m: {"scale": c.scale, "measured": c.measured, "done": c.done, "tried": c.tried}
                          for m, c in calibrations.items()}}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2) + "\n")


def read_calibration(path: str | PathLike) -> tuple[float, dict[str, float], dict[str, float]]:
    """(target, scale per model, calibration average per model) of a calibration file."""
    payload = json.loads(Path(path).read_text())
    models = payload["models"]
    return (payload["target"], {m: v["scale"] for m, v in models.items()},
            {m: v["measured"] for m, v in models.items()})


@dataclass
class Comparison:
    target: float
    scales: dict[str, float]
    calibration_margin: dict[str, float]
    results: list[Result]
    rows: list[ModelSummary]
    files: dict[str, Path]
    calibrations: dict[str, Calibration] = field(default_factory=dict)


def compare(runner: Runner, *, models: Sequence[str] = MODELS, out_dir: str | PathLike = "reports",
            evaluation: Sequence[tuple[PricePath, int]] | None = None,
            calibration: Sequence[tuple[PricePath, int]] | None = None,
            scales: dict[str, float] | None = None, crowd: dict[str, Any] | None = None,
            tolerance: float = CALIBRATION_TOLERANCE) -> Comparison:
    """Calibrate (unless `scales` are given), evaluate, and write margin_compare.csv (per model),
    margin_compare_runs.csv (per run), margin_calibration.json and margin_compare.png under `out_dir`."""
    out = Path(out_dir)
    evaluation = list(evaluation if evaluation is not None else evaluation_paths())
    calibration = list(calibration if calibration is not None else calibration_paths())
    files = {"csv": out / "margin_compare.csv", "runs": out / "margin_compare_runs.csv",
             "png": out / "margin_compare.png", "calibration": out / "margin_calibration.json"}
    calibrations: dict[str, Calibration] = {}
    if scales is None:
        target, calibrations = calibrate(models, runner, calibration, crowd, tolerance=tolerance)
        write_calibration(target, calibrations, files["calibration"], calibration)
        scales = {m: (1.0 if m == REFERENCE else calibrations[m].scale) for m in models}
        fitted = {m: (target if m == REFERENCE else calibrations[m].measured) for m in models}
    else:
        target, fitted = 0.0, {}
        files.pop("calibration")
    results = evaluate({m: scales[m] for m in models}, runner, evaluation, crowd)
    rows = summarize(results, fitted)
    write_summary(rows, files["csv"])
    write_csv(results, files["runs"])
    plot_compare(rows, files["png"])
    return Comparison(target, dict(scales), fitted, results, rows, files, calibrations)


__all__ = ["CALIBRATION_SEEDS", "CALIBRATION_TOLERANCE", "CROWD", "Calibration", "Comparison", "EVALUATION_SEEDS",
           "MODELS", "ModelSummary", "STORM", "calibrate", "calibration_paths", "compare", "evaluate",
           "evaluation_paths", "plot_compare", "pooled_margin", "read_calibration", "spec_for", "storm_path",
           "summarize", "write_summary"]
