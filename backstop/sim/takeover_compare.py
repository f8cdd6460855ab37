"""Takeover vs ADL-only (docs/stress.md, "Liquidator of last resort vs ADL-only").

When a Dutch auction ends with nobody taking the position, the engine hands it to the backstop's liquidator of
last resort (`engine.takeover`, BackstopLiquidator) within its caps; without one (`SystemConfig(pools={"takeover":
False})`) ADL closes it against the most profitable opposite positions. This module runs both deployments over the
**same** paths with the **same** seeds (GBM with jumps and the real crash days of paths.CRASHES, the margin
comparison's paths) and the same crowd, and measures per run:

- the ADL haircut on winners: Σ Deleveraged.socialized_loss, the number of ADL events, the winners they hit
  (distinct counterparties) and the notional of the winners' positions ADL closed;
- the backstop's drawdown: the worst fall of BackstopPool.assets_per_share from its running peak;
- takeovers (count, notional, refusals by the caps) and their P&L to the backstop;
- the time to unwind: from the first TakenOver to the liquidator's inventory back at zero after the last one
  ("not unwound" when it still held inventory at the end: the run then sells it to the maker).

Auctions nobody takes: the keeper's margin is limited (CROWD's keeper_collateral, 1,500 per segment: 15,000 of
notional at 10% IM), so the whole position of a bankrupt trader is beyond it, while one close-factor chunk (25%)
of what the liquidator may hold in one market (10% of a 500,000 backstop: 12,500) is not; and the keeper flags
what it could not take (`RunSpec.flagger`: a flag needs no margin) so the auction clock runs. Time goes on at the
last prices after the path (`RunSpec.aftermath`, 2 h) while anything is left to liquidate or unwind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from backstop.sim.margin_compare import EVALUATION_SEEDS, evaluation_paths
from backstop.sim.paths import CRASHES, PricePath
from backstop.sim.stress import Result, RunSpec, _pyplot, _save, write_csv, write_dataclass_rows

ARMS = ("takeover", "adl-only")
BASELINE = "adl-only"
# The margin comparison's crowd (margin-aware traders, some whales, a keeper one update behind), with a backstop
# deep enough for its takeover caps to hold a whale's chunk and a keeper whose margin cannot carry a whole
# bankrupt position (module docstring).
CROWD = dict(traders="margin", n_traders=8, collateral_sigma=0.8, im_share=(0.3, 0.95), long_share=0.75,
             latency=60, pool_deposit=60_000, backstop_deposit=500_000, keeper_collateral=1_500, flagger=True,
             aftermath=7_200)

Runner = Callable[[Sequence[RunSpec]], list[Result]]


def arm_of(result: Result) -> str:
    return ARMS[0] if result.takeover else BASELINE


def spec_for(path: PricePath, seed: int, arm: str, crowd: dict[str, Any]) -> RunSpec:
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}: {ARMS}")
    return RunSpec(path=path, seed=seed, takeover=arm == ARMS[0], label=f"{path.name}/{arm}", **crowd)


def specs_for(paths: Sequence[tuple[PricePath, int]], crowd: dict[str, Any] | None = None,
              arms: Sequence[str] = ARMS) -> list[RunSpec]:
    """Every arm over every (path, seed): arm-major, so the arms' runs line up path by path."""
    crowd = dict(CROWD if crowd is None else crowd)
    return [spec_for(p, seed, arm, crowd) for arm in arms for p, seed in paths]


def pairs(results: Sequence[Result]) -> list[tuple[Result, Result]]:
    """(takeover, ADL-only) runs of the same path and seed, in the order of the takeover arm."""
    baseline = {(r.path, r.seed): r for r in results if not r.takeover}
    return [(r, baseline[(r.path, r.seed)]) for r in results if r.takeover and (r.path, r.seed) in baseline]


# ---------------------------------------------------------------- summary


@dataclass
class ArmSummary:
    """One row of reports/takeover_compare.csv (quote amounts in whole units, summed over the runs)."""

    arm: str
    runs: int
    adl_events: int
    adl_events_vs_adl_only: float  # relative change (-0.5 = half of ADL-only's)
    winners_hit: int  # Σ over runs of the distinct winners deleveraged
    adl_notional: float  # winners' positions closed by ADL
    adl_socialized: float  # Σ Deleveraged.socialized_loss: the winners' haircut in money
    takeovers: int
    takeover_notional: float
    takeover_refused: int
    takeover_pnl: float  # to the backstop
    backstop_drawdown_max: float
    backstop_drawdown_mean: float
    unwind_mean_seconds: float  # over the runs with takeovers that unwound (0: none)
    unwind_max_seconds: int
    not_unwound: int  # runs whose liquidator still held inventory at the end
    inventory_peak: float  # the largest inventory of any run
    liquidations: int
    bad_debt: float
    pool_drawdown_max: float  # segment pools + backstop (stress.Result.pool_drawdown)
    winners_unpaid: float
    invariant_errors: int
    failed_runs: int


def summarize(results: Sequence[Result], decimals: int = 6) -> list[ArmSummary]:
    """One summary per arm (takeover first), with the change in ADL events against ADL-only."""
    unit = 10**decimals
    rows = []
    for arm in ARMS:
        mine = [r for r in results if arm_of(r) == arm]
        if not mine:
            continue
        runs = [r for r in mine if not r.failed]
        unwinds = [r.unwind_seconds for r in runs if r.takeovers and r.unwound]
        rows.append(ArmSummary(
            arm=arm, runs=len(runs), adl_events=sum(r.adl_events for r in runs), adl_events_vs_adl_only=0.0,
            winners_hit=sum(r.winners_hit for r in runs), adl_notional=sum(r.adl_notional for r in runs) / unit,
            adl_socialized=sum(r.adl_socialized for r in runs) / unit, takeovers=sum(r.takeovers for r in runs),
            takeover_notional=sum(r.takeover_notional for r in runs) / unit,
            takeover_refused=sum(r.takeover_refused for r in runs),
            takeover_pnl=sum(r.takeover_pnl for r in runs) / unit,
            backstop_drawdown_max=max((r.backstop_drawdown for r in runs), default=0.0),
            backstop_drawdown_mean=float(np.mean([r.backstop_drawdown for r in runs])) if runs else 0.0,
            unwind_mean_seconds=float(np.mean(unwinds)) if unwinds else 0.0,
            unwind_max_seconds=max(unwinds, default=0),
            not_unwound=sum(1 for r in runs if r.takeovers and not r.unwound),
            inventory_peak=max((r.inventory_peak for r in runs), default=0) / unit,
            liquidations=sum(r.liquidations for r in runs), bad_debt=sum(r.bad_debt for r in runs) / unit,
            pool_drawdown_max=max((r.pool_drawdown for r in runs), default=0.0),
            winners_unpaid=sum(r.winners_unpaid for r in runs) / unit,
            invariant_errors=sum(r.invariant_errors for r in runs), failed_runs=len(mine) - len(runs)))
    baseline = next((row for row in rows if row.arm == BASELINE), None)
    for row in rows:
        if baseline is not None and baseline.adl_events:
            row.adl_events_vs_adl_only = row.adl_events / baseline.adl_events - 1
    return rows


def write_summary(rows: Sequence[ArmSummary], path: str | PathLike) -> None:
    write_dataclass_rows(rows, list(ArmSummary.__dataclass_fields__), path)


# ---------------------------------------------------------------- figure


def plot_compare(results: Sequence[Result], path: str | PathLike, decimals: int = 6) -> None:
    """Four panels over the paths, the two arms side by side: ADL events (winners hit above the bars), the
    winners' notional ADL closed, the backstop's drawdown, and the liquidator's inventory over time in the
    takeover arm (time to unwind in the legend)."""
    plt = _pyplot()
    unit = 10**decimals
    matched = pairs(results)
    names = [t.path for t, _ in matched]
    x = np.arange(len(matched))
    width = 0.4
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    colors = {ARMS[0]: "tab:blue", BASELINE: "tab:red"}

    def bars(ax: Any, value: Callable[[Result], float], title: str, label: Callable[[Result], str] | None = None):
        for k, arm in enumerate(ARMS):
            runs = [pair[k] for pair in matched]
            values = [value(r) for r in runs]
            xs = x + (k - 0.5) * width
            ax.bar(xs, values, width=width, color=colors[arm], label=arm)
            if label is not None:
                for xi, v, r in zip(xs, values, runs):
                    ax.text(xi, v, label(r), ha="center", va="bottom", fontsize=7)
        top = max([value(r) for pair in matched for r in pair] + [1e-9])
        ax.set_ylim(top=top * 1.25)
        ax.set_xticks(x, names, rotation=20, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)

    bars(axes[0][0], lambda r: r.adl_events, "ADL events (winners hit above)", lambda r: f"{r.winners_hit}")
    bars(axes[0][1], lambda r: r.adl_notional / unit, "Winners' notional closed by ADL (quote units)",
         lambda r: f"haircut {r.adl_socialized / unit:,.0f}" if r.adl_events else "")
    bars(axes[1][0], lambda r: r.backstop_drawdown * 100, "Backstop drawdown (assets per share), %",
         lambda r: f"{r.backstop_drawdown:.2%}" if r.backstop_drawdown else "")
    ax = axes[1][1]
    shown = 0
    for r, _ in matched:
        if not r.takeovers or not r.inventory:
            continue
        t = [s[0] / 60 for s in r.inventory]
        ax.step(t, [s[1] / unit for s in r.inventory], where="post",
                label=f"{r.path}: {r.unwind_seconds / 60:,.0f} min" + ("" if r.unwound else " (not unwound)"))
        shown += 1
    ax.set(xlabel="minutes since the first oracle update", ylabel="notional (quote units)",
           title="Liquidator inventory, takeover arm (time to unwind)")
    ax.title.set_fontsize(10)
    if shown:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no takeover", ha="center", va="center", transform=ax.transAxes)
    ax.grid(alpha=0.3)
    fig.suptitle("Liquidator of last resort vs ADL-only over the same paths")
    _save(fig, path)


# ---------------------------------------------------------------- the comparison


@dataclass
class TakeoverComparison:
    results: list[Result]
    rows: list[ArmSummary]
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def pairs(self) -> list[tuple[Result, Result]]:
        return pairs(self.results)


def default_paths(seeds: Sequence[int] = EVALUATION_SEEDS,
                  crashes: Sequence[str] = tuple(CRASHES)) -> list[tuple[PricePath, int]]:
    """The margin comparison's evaluation paths: stormy GBM+jumps per seed, and every crash day (seed 0)."""
    return evaluation_paths(seeds, crashes)


def compare(runner: Runner, *, out_dir: str | PathLike = "reports",
            paths: Sequence[tuple[PricePath, int]] | None = None, crowd: dict[str, Any] | None = None,
            decimals: int = 6) -> TakeoverComparison:
    """Both arms over `paths` (one runner batch), then takeover_compare.csv (per arm), takeover_compare_runs.csv
    (per run) and takeover_compare.png under `out_dir`."""
    out = Path(out_dir)
    paths = list(paths if paths is not None else default_paths())
    results = runner(specs_for(paths, crowd))
    rows = summarize(results, decimals)
    files = {"csv": out / "takeover_compare.csv", "runs": out / "takeover_compare_runs.csv",
             "png": out / "takeover_compare.png"}
    write_summary(rows, files["csv"])
    write_csv(results, files["runs"])
    plot_compare(results, files["png"], decimals)
    return TakeoverComparison(results, rows, files)


__all__ = ["ARMS", "BASELINE", "CROWD", "ArmSummary", "TakeoverComparison", "arm_of", "compare", "default_paths",
           "pairs", "plot_compare", "spec_for", "specs_for", "summarize", "write_summary"]
