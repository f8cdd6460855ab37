"""Stress sweep: gap x keeper latency on Dask (`make stress`, STRESS_ARGS for options).

    python scripts/stress.py [--gaps 0,0.2,0.4,0.6] [--latencies 0,120,600] [--seeds 0]
                             [--paths oct-2025,gbm:120] [--workers 2] [--scheduler tcp://host:8786]
                             [--out reports]
    python scripts/stress.py --compare-margin [--calibration reports/margin_calibration.json] [--workers 2]
    python scripts/stress.py --compare-takeover [--compare-seeds 0,1,2] [--compare-crashes oct-2025,...] [--workers 2]

Every Dask worker process starts its own Anvil (ape's foundry provider, a random free port)
and reuses it for all its runs; see docs/stress.md. Writes <out>/stress.csv, stress_nav.png
and stress_heatmap.png and prints a summary table.

--compare-margin: static vs EWMA vs predictive vs size-aware margin at equal average margin
(backstop.sim.margin_compare): calibrates every model on GBM paths that are not evaluated (or
reads the scales of --calibration), runs them all on the same GBM+jumps paths and crash days,
writes <out>/margin_compare.csv, margin_compare_runs.csv, margin_calibration.json and
margin_compare.png, and prints the table.

--compare-takeover: the backstop's liquidator of last resort vs ADL-only (backstop.sim.takeover_compare):
both deployments over the same GBM+jumps paths and crash days with the same seeds, a keeper whose
margin cannot carry a whole bankrupt position; writes <out>/takeover_compare.csv,
takeover_compare_runs.csv and takeover_compare.png, and prints the tables (per arm, per path).
"""

from __future__ import annotations

import argparse
import sys
import time

from rich.console import Console
from rich.table import Table

from backstop.sim import margin_compare as mc
from backstop.sim import takeover_compare as tc
from backstop.sim.paths import CRASHES, make_path
from backstop.sim.stress import (
    DEFAULT_GAPS, DEFAULT_LATENCIES, MARGIN_MODELS, Result, RunSpec, dask_client, grid, sweep, write_reports,
)


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gaps", type=floats, default=list(DEFAULT_GAPS), help="one-update falls, e.g. 0,0.2,0.4,0.6")
    ap.add_argument("--latencies", type=ints, default=list(DEFAULT_LATENCIES), help="keeper delay, seconds")
    ap.add_argument("--seeds", type=ints, default=[0], help="trader populations (leverage, sides)")
    ap.add_argument("--traders", type=int, default=6)
    ap.add_argument("--drift", type=float, default=-0.01, help="per-update move after the gap")
    ap.add_argument("--paths", default="", help=f"also run these paths (x latencies x seeds): gap:<size>, "
                    f"gbm:<steps> (seeded by --seeds) or a crash day: {','.join(CRASHES)}")
    ap.add_argument("--margin-models", type=lambda v: [m for m in v.split(",") if m], default=["default"],
                    help=f"margin models to compare: {','.join(MARGIN_MODELS)} (vol = RiskParams volatility margin)")
    ap.add_argument("--keeper", choices=("sequential", "bot"), default="sequential",
                    help="sequential: liquidate_all per pass; bot: the production backstop.keeper.Keeper (batched)")
    ap.add_argument("--adversaries", default="", help="comma list of: whale, dodger")
    ap.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (1 thread each)")
    ap.add_argument("--scheduler", default=None, help="a running Dask scheduler instead of a LocalCluster")
    ap.add_argument("--out", default="reports")
    ap.add_argument("--compare-margin", action="store_true",
                    help=f"compare {','.join(mc.MODELS)} margin at equal average margin (ignores the sweep options)")
    ap.add_argument("--calibration", default=None, help="--compare-margin: reuse the scales of this calibration file")
    ap.add_argument("--compare-takeover", action="store_true",
                    help="liquidator of last resort vs ADL-only over the same paths (ignores the sweep options)")
    ap.add_argument("--compare-seeds", type=ints, default=list(mc.EVALUATION_SEEDS),
                    help="--compare-margin / --compare-takeover: GBM+jumps evaluation seeds")
    ap.add_argument("--compare-crashes", default=",".join(CRASHES),
                    help="--compare-margin / --compare-takeover: crash days to replay")
    return ap.parse_args(argv)


def specs_of(args: argparse.Namespace) -> list[RunSpec]:
    common = dict(n_traders=args.traders, keeper=args.keeper,
                  adversaries=tuple(a for a in args.adversaries.split(",") if a))
    specs = grid(args.gaps, args.latencies, args.seeds, margin_models=args.margin_models, drift=args.drift, **common)
    for name in (c for c in args.paths.split(",") if c):
        specs += [RunSpec(path=make_path(name, seed=seed), latency=lat, seed=seed, **common)
                  for lat in args.latencies for seed in args.seeds]
    return specs


def summary(results: list[Result], decimals: int = 6) -> Table:
    table = Table(title="Stress runs")
    for column in ("run", "s", "drawdown", "bad debt", "backstop", "ADL", "socialized", "keeper", "winners unpaid",
                   "invariants"):
        table.add_column(column, justify="right")
    unit = 10**decimals
    for r in results:
        table.add_row(r.label, f"{r.seconds:.1f}", f"{r.pool_drawdown:.1%}", f"{r.bad_debt / unit:,.0f}",
                      f"{r.backstop_draws / unit:,.0f}", str(r.adl_events), f"{r.adl_socialized / unit:,.0f}",
                      f"{r.keeper_profit / unit:,.2f}",
                      f"{r.winners_unpaid / unit:,.0f}", r.failed[:40] or ("ok" if r.invariant_errors == 0 else r.first_error[:40]))
    return table


def compare_table(comparison: mc.Comparison) -> Table:
    table = Table(title=f"Margin models at equal average margin (target {comparison.target:.2%} on the calibration "
                        f"paths)" if comparison.target else "Margin models (scales from a calibration file)")
    for column in ("model", "scale", "avg IM calib.", "avg IM GBM", "avg IM crash", "avg IM all", "bad debt",
                   "vs static", "max drawdown", "mean drawdown", "liquidations", "vs static", "ADL", "forecasts"):
        table.add_column(column, justify="right")
    for r in comparison.rows:
        table.add_row(r.model, f"{r.scale:.3f}", f"{r.calibration_margin:.2%}" if r.calibration_margin else "-",
                      f"{r.avg_margin_gbm:.2%}", f"{r.avg_margin_crash:.2%}", f"{r.avg_margin:.2%}",
                      f"{r.bad_debt:,.0f}", f"{r.bad_debt_vs_static:+.0%}", f"{r.max_drawdown:.2%}",
                      f"{r.mean_drawdown:.2%}", str(r.liquidations), f"{r.liquidations_vs_static:+.0%}",
                      str(r.adl_events), str(r.forecasts))
    return table


def main_compare(args: argparse.Namespace, console: Console) -> int:
    evaluation = mc.evaluation_paths(args.compare_seeds, [c for c in args.compare_crashes.split(",") if c])
    scales = mc.read_calibration(args.calibration)[1] if args.calibration else None
    if scales is not None:
        scales = {m: scales.get(m, 1.0) for m in mc.MODELS}
    console.print(f"{len(mc.MODELS)} margin models x {len(evaluation)} evaluation paths"
                  + ("" if scales else f", calibrated on {len(mc.calibration_paths())} GBM paths first")
                  + f", on {args.scheduler or f'a LocalCluster of {args.workers} workers'}")
    started = time.perf_counter()
    with dask_client(args.scheduler, args.workers) as client:
        comparison = mc.compare(lambda specs: sweep(specs, client=client), out_dir=args.out, evaluation=evaluation,
                                scales=scales)
    wall = time.perf_counter() - started
    console.print(compare_table(comparison))
    console.print(f"comparison wall time {wall:.0f} s ({len(comparison.results)} evaluation runs); wrote "
                  + ", ".join(str(p) for p in comparison.files.values()))
    broken = [r for r in comparison.results if r.failed or r.invariant_errors]
    for r in broken:
        console.print(f"[red]{r.label}: failed {r.failed!r}, invariants {r.invariant_errors} ({r.first_error})")
    return 1 if broken else 0


def takeover_table(rows: list[tc.ArmSummary]) -> Table:
    table = Table(title="Liquidator of last resort vs ADL-only (quote units, summed over the runs)")
    for column in ("arm", "runs", "ADL events", "vs ADL-only", "winners hit", "ADL notional", "haircut",
                   "takeovers", "taken notional", "refused", "takeover P&L", "backstop dd max", "dd mean",
                   "unwind mean", "unwind max", "not unwound", "bad debt", "invariants"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(r.arm, str(r.runs), str(r.adl_events), f"{r.adl_events_vs_adl_only:+.0%}", str(r.winners_hit),
                      f"{r.adl_notional:,.0f}", f"{r.adl_socialized:,.0f}", str(r.takeovers),
                      f"{r.takeover_notional:,.0f}", str(r.takeover_refused), f"{r.takeover_pnl:+,.0f}",
                      f"{r.backstop_drawdown_max:.2%}", f"{r.backstop_drawdown_mean:.2%}",
                      f"{r.unwind_mean_seconds / 60:,.0f} min" if r.unwind_mean_seconds else "-",
                      f"{r.unwind_max_seconds / 60:,.0f} min" if r.unwind_max_seconds else "-", str(r.not_unwound),
                      f"{r.bad_debt:,.0f}", str(r.invariant_errors))
    return table


def takeover_paths_table(comparison: tc.TakeoverComparison, decimals: int = 6) -> Table:
    unit = 10**decimals
    table = Table(title="Per path (takeover | ADL-only)")
    for column in ("path", "seed", "ADL events", "winners hit", "ADL notional", "haircut", "takeovers",
                   "taken notional", "refused", "takeover P&L", "backstop dd", "time to unwind", "bad debt"):
        table.add_column(column, justify="right")
    for t, a in comparison.pairs:
        unwind = "-" if not t.takeovers else (f"{t.unwind_seconds / 60:,.0f} min" if t.unwound else
                                              f"not unwound (> {t.unwind_seconds / 60:,.0f} min)")
        table.add_row(t.path, str(t.seed), f"{t.adl_events} | {a.adl_events}", f"{t.winners_hit} | {a.winners_hit}",
                      f"{t.adl_notional / unit:,.0f} | {a.adl_notional / unit:,.0f}",
                      f"{t.adl_socialized / unit:,.0f} | {a.adl_socialized / unit:,.0f}", str(t.takeovers),
                      f"{t.takeover_notional / unit:,.0f}", str(t.takeover_refused), f"{t.takeover_pnl / unit:+,.0f}",
                      f"{t.backstop_drawdown:.2%} | {a.backstop_drawdown:.2%}", unwind,
                      f"{t.bad_debt / unit:,.0f} | {a.bad_debt / unit:,.0f}")
    return table


def main_takeover(args: argparse.Namespace, console: Console) -> int:
    paths = tc.default_paths(args.compare_seeds, [c for c in args.compare_crashes.split(",") if c])
    console.print(f"{len(tc.ARMS)} arms x {len(paths)} paths on "
                  f"{args.scheduler or f'a LocalCluster of {args.workers} workers'}")
    started = time.perf_counter()
    with dask_client(args.scheduler, args.workers) as client:
        comparison = tc.compare(lambda specs: sweep(specs, client=client), out_dir=args.out, paths=paths)
    wall = time.perf_counter() - started
    console.print(takeover_table(comparison.rows))
    console.print(takeover_paths_table(comparison))
    per_run = sum(r.seconds for r in comparison.results) / max(len(comparison.results), 1)
    console.print(f"comparison wall time {wall:.0f} s ({len(comparison.results)} runs, {per_run:.1f} s per run); "
                  "wrote " + ", ".join(str(p) for p in comparison.files.values()))
    broken = [r for r in comparison.results
              if r.failed or r.invariant_errors or (r.pools_could_pay and r.winners_unpaid)]
    for r in broken:
        console.print(f"[red]{r.label}: failed {r.failed!r}, invariants {r.invariant_errors} ({r.first_error}), "
                      f"winners unpaid {r.winners_unpaid}")
    return 1 if broken else 0


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.compare_margin:
        return main_compare(args, Console(width=max(Console().width, 160)))
    if args.compare_takeover:
        return main_takeover(args, Console(width=max(Console().width, 200)))
    specs = specs_of(args)
    console = Console(width=max(Console().width, 140))
    console.print(f"{len(specs)} runs on {args.scheduler or f'a LocalCluster of {args.workers} workers'}")
    started = time.perf_counter()
    results = sweep(specs, scheduler=args.scheduler, n_workers=args.workers)
    wall = time.perf_counter() - started
    paths = write_reports(results, args.out)
    console.print(summary(results))
    per_run = sum(r.seconds for r in results) / max(len(results), 1)
    console.print(f"sweep wall time {wall:.0f} s, {per_run:.1f} s per run; wrote "
                  + ", ".join(str(p) for p in paths.values()))
    broken = [r for r in results if r.failed or r.invariant_errors or (r.pools_could_pay and r.winners_unpaid)]
    for r in broken:
        console.print(f"[red]{r.label}: failed {r.failed!r}, invariants {r.invariant_errors} ({r.first_error}), "
                      f"winners unpaid {r.winners_unpaid}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
